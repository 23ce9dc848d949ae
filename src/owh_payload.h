/* owh_payload.h — the body of a delivery (seeds 000 and 002):
 *   {"event", "webhook": <Webhook object>, "supplier": {...},
 *    "<booking|order|product|availability>": {...}, "diff": [...]}
 * plus top-level productId/optionId for availability; and the thin envelope
 * of the notifications dialect. Core: APR + jansson. */
#ifndef OWH_PAYLOAD_H
#define OWH_PAYLOAD_H

#include <apr_pools.h>
#include <jansson.h>
#include "owh_webhook.h"
#include "owh_diff.h"

/* Parses the webhook snapshot stored with a delivery (webhook_snapshot() in
 * sql/002) into a model whose url keeps its credentials for sending. */
apr_status_t owh_payload_webhook_parse(owh_webhook_t **pwh, const char *snapshot, apr_pool_t *p);

/* The payload key of an event type: "booking", "order", "availability", "product". */
const char *owh_payload_object_key(const char *event_type);

/* One event as every webhook's payload starts from: built once per event
 * (or per resolved view), shared by its deliveries. */
typedef struct owh_event_view_t {
    owh_event_e type;
    const char *event_id;       /* events.id */
    const char *event_at;       /* ISO 8601, UTC */
    json_t *object;             /* cardPayment members stripped */
    json_t *diff;               /* from the previous state; NULL for availability */
    const char *language;       /* Content-Language: the event's, else the contact's first
                                 * locale; NULL when none or not a language tag */
    const char *tail;           /* the octo body after "supplier": the same for every webhook
                                 * (`,"booking":{...},"diff":[...]}`), made once per event */
} owh_event_view_t;

/* Parses the object (and the previous state, NULL for an object's first
 * event), strips cardPayment from both, computes the diff. Owned by p. */
apr_status_t owh_payload_view_make(owh_event_view_t **pv, const char *event_type, const char *event_id,
                                   const char *event_at, const char *object_json, const char *previous_json,
                                   const char *language, apr_pool_t *p);

/* s if it can be sent as a language tag (letters, digits, '-'; at most 35
 * characters), else NULL: nothing else reaches Content-/Accept-Language. */
const char *owh_payload_language_tag(const char *s);

/* The contact language of an object: contact.locales[0], or for an order its
 * first booking's; NULL if none. */
const char *owh_payload_contact_language(const json_t *object, apr_pool_t *p);

/* Builds the body for one webhook. The octo dialect: seed 000's
 * WebhookEventPayload. A notifications subscription (seed 003):
 *   {"type": "BOOKING_UPDATE", "subscriptionId", "eventId", "createdAt",
 *    "payload": {"uuid"} | {"productId"} | {"productId", "localDateStart", "localDateEnd"}}
 * supplier: the event's own, else the directives' (NULL: {}). */
apr_status_t owh_payload_build(const char **pbody, apr_size_t *plen, const owh_webhook_t *wh,
                               const owh_event_view_t *v, const json_t *supplier, apr_pool_t *p);

/* The same octo body from its parts, as the dispatcher builds it: a webhook's
 * head (`{"event":...,"webhook":{...},"supplier":`, once per webhook), the
 * supplier's JSON text and the view's tail (once per event); the bytes
 * owh_payload_build makes (t/unit/test_webhook.c compares them). */
const char *owh_payload_head(const owh_webhook_t *wh, apr_pool_t *p);
const char *owh_payload_supplier_text(const json_t *supplier, apr_pool_t *p);
apr_status_t owh_payload_build_from(const char **pbody, apr_size_t *plen, const char *head,
                                    const char *supplier_text, const owh_event_view_t *v, apr_pool_t *p);

#endif
