/* owh_trigger.h — the sample objects of POST /webhooks/{id}/trigger (seed
 * 001's WebhookTriggerRequest): productId, optionId, availabilityIds,
 * reference, mobile, orderRecordState, productRecordState, units[]. Core:
 * APR + jansson, no httpd. */
#ifndef OWH_TRIGGER_H
#define OWH_TRIGGER_H

#include <apr_pools.h>
#include <jansson.h>
#include "owh_webhook.h"

/* Builds the test objects for an event type from a trigger request body
 * (NULL = empty): one per availability id for availability_update, one
 * otherwise. Returns an array owned by p, or NULL with *perr set. */
json_t *owh_trigger_objects(owh_event_e ev, const json_t *body, const char **perr, apr_pool_t *p);

#endif
