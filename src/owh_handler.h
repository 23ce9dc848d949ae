/* owh_handler.h — the HTTP face: route table, methods, auth gate, capped body
 * reading, JSON answers and OCTO errors. Talks to the store, never to libcurl. */
#ifndef OWH_HANDLER_H
#define OWH_HANDLER_H

#include <httpd.h>

#define OWH_HANDLER_NAME "octo-webhooks"

/* The content handler: DECLINED unless r->handler is "octo-webhooks". */
int owh_handler_handle(request_rec *r);

#endif
