/* owh_handler_deliveries.c — the routes under /webhooks/{id} beyond CRUD:
 * trigger (test notifications through the real queue), secret rotation,
 * the attempt log, retry and recover. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_log.h>
#include <http_core.h>
#include <util_script.h>

#include "owh_handler_int.h"
#include "owh_store.h"
#include "owh_webhook.h"
#include "owh_json.h"
#include "owh_trigger.h"
#include "owh_sign.h"
#include "owh_request.h"

APLOG_USE_MODULE(octo_webhooks);

/* POST /webhooks/{id}/trigger: test notifications through the real queue. */
/* The trigger's queueing, in one transaction: admitted by the rate bound,
 * then one event per sample object. */
typedef struct trigger_tx_t {
    owh_req_t *q;
    owh_webhook_t *wh;
    json_t *objects, *queued;
    int retry_after;                /* over OctoWebhooksTriggerRate: seconds to wait */
} trigger_tx_t;

static apr_status_t trigger_in_tx(owh_db_t *db, void *baton, apr_pool_t *p)
{
    trigger_tx_t *t = baton;
    owh_req_t *q = t->q;
    json_t *obj;
    size_t i;
    apr_status_t rv;

    if ((rv = owh_store_webhook_trigger_admit(db, q->caller.connection, t->wh->id,
                                              (int)json_array_size(t->objects), q->sc->trigger_rate,
                                              &t->retry_after, p)) != APR_SUCCESS)
        return rv;
    if (t->retry_after) return APR_EAGAIN;
    json_array_foreach(t->objects, i, obj) {
        const char *event_id = NULL, *delivery_id = NULL;
        apr_size_t len;
        if ((rv = owh_store_webhook_trigger(db, q->caller.connection, t->wh->id, owh_json_dump(obj, &len, p),
                                            &event_id, &delivery_id, p)) != APR_SUCCESS)
            return rv;
        json_array_append_new(t->queued, json_pack("{s:s, s:s, s:O}", "eventId", event_id,
                                                   "deliveryId", delivery_id, "object", obj));
    }
    return APR_SUCCESS;
}

int owh_route_webhook_trigger(owh_req_t *q)
{
    request_rec *r = q->r;
    trigger_tx_t t;
    const char *err = NULL;
    json_t *body, *answer;
    apr_status_t rv;

    memset(&t, 0, sizeof(t));
    t.q = q;
    if (owh_read_json_object(q, 0, &body)) return OK;
    rv = owh_store_webhook_get(q->db, q->caller.connection, OWH_DIALECT_OCTO, q->id, &t.wh, r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(r);
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "trigger webhook");
    if (!(t.objects = owh_trigger_objects(t.wh->event_type, body, &err, r->pool))) return owh_bad_request(r, err);
    t.queued = owh_json_pool_own(json_array(), r->pool);
    rv = owh_store_tx(q->db, trigger_in_tx, &t, r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(r);
    if (rv == APR_EAGAIN && t.retry_after) {
        apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, t.retry_after));
        return owh_send_error(r, HTTP_TOO_MANY_REQUESTS, "BAD_REQUEST", apr_psprintf(r->pool,
                          "This webhook was sent %d test notifications in the last minute, the most "
                          "OctoWebhooksTriggerRate allows; try again in %d s", q->sc->trigger_rate, t.retry_after));
    }
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "trigger webhook");
    answer = owh_json_pool_own(json_pack("{s:O, s:O}", "webhook", owh_webhook_to_api_json(t.wh, r->pool),
                                         "queued", t.queued), r->pool);
    return owh_send_json(r, HTTP_OK, answer);
}

/* POST /webhooks/{id}/secret: a new signing secret (generated, or the body's
 * "secret"), shown once; the one it replaces signs too for the grace period. */
int owh_route_webhook_secret(owh_req_t *q)
{
    request_rec *r = q->r;
    const char *secret = NULL, *err = NULL, *previous_until = NULL;
    json_t *body, *v;
    apr_status_t rv;

    if (owh_read_json_object(q, 0, &body)) return OK;
    if (body && (v = json_object_get(body, "secret")) && !json_is_null(v)) {
        if (!json_is_string(v)) return owh_bad_request(r, "secret must be a \"whsec_...\" string");
        if (owh_sign_secret_check(json_string_value(v), &err) != APR_SUCCESS) return owh_bad_request(r, err);
        secret = json_string_value(v);
    }
    else if (owh_sign_secret_generate(&secret, r->pool) != APR_SUCCESS)
        return owh_send_error(r, HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", MSG_INTERNAL);
    rv = owh_store_webhook_set_secret(q->db, q->caller.connection, q->id, secret, q->sc->secret_grace,
                                      &previous_until, r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(r);
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "set secret");
    return owh_send_json(r, HTTP_OK, owh_json_pool_own(json_pack("{s:s, s:o}", "secret", secret,
        "previousSecretValidUntil", previous_until ? json_string(previous_until) : json_null()), r->pool));
}

/* GET /webhooks/{id}/deliveries?status=&limit=&cursor= */
int owh_route_webhook_deliveries(owh_req_t *q)
{
    request_rec *r = q->r;
    const char *status = NULL, *cursor = NULL, *json = NULL, *err;
    int limit = 20;
    apr_status_t rv;

    if ((err = owh_request_list_params(owh_request_args(r->args, r->pool), &status, &limit, &cursor)))
        return owh_bad_request(r, err);
    rv = owh_store_deliveries_list(q->db, q->caller.connection, q->id, status, cursor, limit, &json, r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(r);
    if (rv == APR_EINVAL) return owh_bad_request(r, "cursor is not one this API gave");
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "list deliveries");
    return owh_send_json_text(r, HTTP_OK, json, strlen(json));
}

/* POST /webhooks/{id}/deliveries/{deliveryId}/retry */
int owh_route_delivery_retry(owh_req_t *q)
{
    request_rec *r = q->r;
    const char *json = NULL;
    apr_status_t rv = owh_store_delivery_retry(q->db, q->caller.connection, q->id, q->sub, &json, r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(r);
    if (rv == APR_EBUSY)
        return owh_send_error(r, HTTP_CONFLICT, "BAD_REQUEST", "The delivery is being attempted right now");
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "retry delivery");
    return owh_send_json_text(r, HTTP_OK, json, strlen(json));
}

/* POST /webhooks/{id}/recover {"since": "<ISO 8601>"}: requeues the failed
 * deliveries created since then. */
int owh_route_webhook_recover(owh_req_t *q)
{
    request_rec *r = q->r;
    json_t *body, *since;
    int count = 0;
    apr_status_t rv;

    if (owh_read_json_object(q, 1, &body)) return OK;
    since = json_object_get(body, "since");
    if (!since || !json_is_string(since) || !owh_iso8601_valid(json_string_value(since)))
        return owh_bad_request(r, "since is required: an ISO 8601 date-time such as 2026-11-20T08:00:00Z");
    rv = owh_store_webhook_recover(q->db, q->caller.connection, q->id, json_string_value(since), &count,
                                   r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(r);
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "recover deliveries");
    return owh_send_json(r, HTTP_OK, owh_json_pool_own(json_pack("{s:i}", "requeued", count), r->pool));
}
