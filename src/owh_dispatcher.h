/* owh_dispatcher.h — owns the delivery process: forked from the httpd parent
 * after configuration (one per database with OctoWebhooksDispatcher On),
 * supervised and respawned with backoff, replaced on graceful restart, and
 * its main loop: LISTEN/poll -> claim -> build payload -> libcurl multi ->
 * record outcomes. Never includes the handler: they meet only in PostgreSQL. */
#ifndef OWH_DISPATCHER_H
#define OWH_DISPATCHER_H

#include <httpd.h>

/* Called from post_config in the parent (not on the pre-config pass). */
apr_status_t owh_dispatcher_spawn_all(apr_pool_t *pconf, server_rec *s);

#endif
