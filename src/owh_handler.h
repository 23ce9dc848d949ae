/* owh_handler.h — the HTTP face: route table, methods, auth gate, capped body
 * reading, JSON answers and OCTO errors. Talks to the store, never to libcurl. */
#ifndef OWH_HANDLER_H
#define OWH_HANDLER_H

#include <httpd.h>

#define OWH_HANDLER_NAME "octo-webhooks"

/* The content handler: DECLINED unless r->handler is "octo-webhooks". */
int owh_handler_handle(request_rec *r);

/* map_to_storage: OK (no <Directory> or .htaccess walk, no stat of a file
 * that is not there) for a URI under a <Location> that sets the handler, as
 * mod_proxy does for its requests; else DECLINED. */
int owh_handler_map_to_storage(request_rec *r);

#endif
