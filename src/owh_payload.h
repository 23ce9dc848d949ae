/* owh_payload.h — the body of a delivery (seeds 000 and 002):
 *   {"event", "webhook": <Webhook object>, "supplier": {...},
 *    "<booking|order|product|availability>": {...}, "diff": [...]}
 * plus top-level productId/optionId for availability. Core: APR + jansson. */
#ifndef OWH_PAYLOAD_H
#define OWH_PAYLOAD_H

#include <apr_pools.h>
#include <jansson.h>
#include "owh_webhook.h"

/* Parses the webhook snapshot stored with a delivery (webhook_snapshot() in
 * sql/002) into a model whose url keeps its credentials for sending. */
apr_status_t owh_payload_webhook_parse(owh_webhook_t **pwh, const char *snapshot, apr_pool_t *p);

/* The payload key of an event type: "booking", "order", "availability", "product". */
const char *owh_payload_object_key(const char *event_type);

/* Builds the body. supplier: the event's own, else the directives' (may be
 * NULL: an empty object is sent). diff: NULL means [] (availability has none). */
apr_status_t owh_payload_build(const char **pbody, apr_size_t *plen, const owh_webhook_t *wh,
                               const char *event_type, const char *object_json,
                               const json_t *supplier, const json_t *diff, apr_pool_t *p);

#endif
