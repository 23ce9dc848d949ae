/* owh_handler.c — routes of the octo/webhooks API relative to the handler's
 * <Location>. Each request: route -> method -> auth -> body -> store ->
 * JSON or OCTO error. All memory in r->pool; the pooled database connection
 * goes back to the pool by an r->pool cleanup. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_log.h>
#include <http_core.h>
#include <util_script.h>

#include "owh_handler.h"
#include "owh_config.h"
#include "owh_auth.h"
#include "owh_store.h"
#include "owh_webhook.h"
#include "owh_json.h"
#include "owh_trigger.h"
#include "owh_netguard.h"
#include "owh_sign.h"
#include "owh_log.h"
#include "owh_openapi.h"
#include "owh_request.h"

APLOG_USE_MODULE(octo_webhooks);

#define MSG_UNAUTHORIZED "You didn't send the API Key in the Authorization header to an endpoint that requires authentication"
#define MSG_FORBIDDEN "You sent an API Key that was invalid or has been revoked by the backend system. Or you're trying to access an endpoint/resource that you do not have access to"
#define MSG_INTERNAL "There was an un-recoverable error, please try again"
#define MSG_UNAVAILABLE "The webhook store is temporarily unavailable, please try again shortly"

/* One request's state, passed to the route functions. */
typedef struct owh_req_t {
    request_rec *r;
    owh_srv_conf_t *sc;
    owh_dir_conf_t *dc;
    owh_db_t *db;
    owh_caller_t caller;
    const char *id;                 /* {id} of the route, if any */
    const char *sub;                /* {sub}: a second id (a delivery's) */
    const char *body;               /* the request body, read before any database work */
    apr_size_t body_len;
} owh_req_t;

/* ---- answers ------------------------------------------------------------- */
/* An answer already rendered as JSON text (by jansson or by PostgreSQL). */
static int send_json_text(request_rec *r, int status, const char *body, apr_size_t len)
{
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, len);
    if (!r->header_only) ap_rwrite(body, (int)len, r);
    return OK;
}

static int send_json(request_rec *r, int status, const json_t *j)
{
    apr_size_t len = 0;
    const char *body = owh_json_dump(j, &len, r->pool);
    return send_json_text(r, status, body, len);
}

static int send_error(request_rec *r, int status, const char *code, const char *msg)
{
    json_t *j = owh_json_pool_own(json_pack("{s:s, s:s}", "error", code, "errorMessage", msg), r->pool);
    if (status == HTTP_SERVICE_UNAVAILABLE) apr_table_setn(r->headers_out, "Retry-After", "2");
    return send_json(r, status, j);
}

static int bad_request(request_rec *r, const char *msg)
{
    return send_error(r, HTTP_BAD_REQUEST, "BAD_REQUEST", msg);
}

static int not_found(request_rec *r)
{
    return send_error(r, HTTP_NOT_FOUND, "NOT_FOUND", "The requested resource was not found");
}

/* Maps a store failure to 503 (unreachable) or 500 (anything else). */
static int store_failed(owh_req_t *q, apr_status_t rv, const char *what)
{
    request_rec *r = q->r;
    if (rv == OWH_STORE_EUNAVAIL) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, OWHLOGNO(00401)
                      "%s: database unavailable: %s", what,
                      q->db && q->db->errmsg ? q->db->errmsg : "no connection");
        return send_error(r, HTTP_SERVICE_UNAVAILABLE, "INTERNAL_SERVER_ERROR", MSG_UNAVAILABLE);
    }
    /* A data exception (say February 31st) is the client's value, not our fault. */
    if (owh_store_failed_on_input(q->db))
        return bad_request(r, "A value in the request is out of range");
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, OWHLOGNO(00402) "%s failed: [%s] %s", what,
                  q->db && q->db->sqlstate ? q->db->sqlstate : "-",
                  q->db && q->db->errmsg ? q->db->errmsg : "-");
    return send_error(r, HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", MSG_INTERNAL);
}

static json_t *list_to_json(const apr_array_header_t *list, apr_pool_t *p)
{
    json_t *arr = owh_json_pool_own(json_array(), p);
    int i;
    for (i = 0; i < list->nelts; ++i)
        json_array_append(arr, owh_webhook_to_api_json(APR_ARRAY_IDX(list, i, owh_webhook_t *), p));
    return arr;
}

/* ---- request body -------------------------------------------------------- */
/* Reads the whole body up to the configured cap. Returns OK, or an HTTP
 * status the caller answers with (413 over the cap). */
static int read_body(request_rec *r, apr_off_t cap, const char **pdata, apr_size_t *plen)
{
    apr_size_t len = 0, room = (apr_size_t)cap + 1;
    char *buf;
    int rc;

    *pdata = "";
    *plen = 0;
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) return rc;
    if (!ap_should_client_block(r)) return OK;
    if (r->remaining > cap) goto too_large;      /* Content-Length says so: don't read */
    buf = apr_palloc(r->pool, room + 1);
    for (;;) {
        long n = ap_get_client_block(r, buf + len, room - len);
        if (n == 0) break;
        if (n < 0) return HTTP_BAD_REQUEST;
        len += (apr_size_t)n;
        if (len > (apr_size_t)cap) goto too_large;
    }
    buf[len] = '\0';
    *pdata = buf;
    *plen = len;
    return OK;
too_large:
    /* Don't drain a body we refuse: close the connection after answering. */
    r->connection->keepalive = AP_CONN_CLOSE;
    return HTTP_REQUEST_ENTITY_TOO_LARGE;
}

/* Reads the body into q before the request takes a pooled database
 * connection: a client trickling its body holds a worker (bounded by
 * mod_reqtimeout), never a connection others need. Returns 0, or 1 when it
 * already answered with an error. */
static int take_body(owh_req_t *q)
{
    request_rec *r = q->r;
    int rc = read_body(r, owh_config_max_body(q->dc), &q->body, &q->body_len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        send_error(r, rc, "BAD_REQUEST", apr_psprintf(r->pool,
                   "The request body is larger than %" APR_OFF_T_FMT " bytes",
                   owh_config_max_body(q->dc)));
        return 1;
    }
    if (rc != OK) {
        r->connection->keepalive = AP_CONN_CLOSE;
        bad_request(r, "The request body could not be read");
        return 1;
    }
    return 0;
}

/* Parses the JSON object body into *pj (NULL when the body is empty and not
 * required). Returns 0, or 1 when it already answered with an error. */
static int read_json_object(owh_req_t *q, int required, json_t **pj)
{
    request_rec *r = q->r;
    const char *data = q->body, *err = NULL;
    apr_size_t len = q->body_len;
    json_t *j;

    *pj = NULL;
    if (len == 0 && !required) return 0;
    if (!(j = owh_json_parse(data, len, &err, r->pool))) { bad_request(r, err); return 1; }
    if (!json_is_object(j)) { bad_request(r, "The request body must be a JSON object"); return 1; }
    *pj = j;
    return 0;
}

static const char *request_caps(request_rec *r)
{
    return apr_table_get(r->headers_in, "Octo-Capabilities");
}

/* ---- routes -------------------------------------------------------------- */
/* The stored objects of both dialects: list, get and delete differ only in
 * the dialect and in what a delete answers. */
static int list_stored(owh_req_t *q, owh_dialect_e dialect)
{
    apr_array_header_t *list;
    apr_status_t rv = owh_store_webhook_list(q->db, q->caller.connection, dialect, &list, q->r->pool);
    if (rv != APR_SUCCESS) return store_failed(q, rv, "list");
    return send_json(q->r, HTTP_OK, list_to_json(list, q->r->pool));
}

static int get_stored(owh_req_t *q, owh_dialect_e dialect)
{
    owh_webhook_t *wh;
    apr_status_t rv = owh_store_webhook_get(q->db, q->caller.connection, dialect, q->id, &wh, 0, q->r->pool);
    if (rv == APR_NOTFOUND) return not_found(q->r);
    if (rv != APR_SUCCESS) return store_failed(q, rv, "get");
    return send_json(q->r, HTTP_OK, owh_webhook_to_api_json(wh, q->r->pool));
}

/* DELETE by id: a webhook answers with the deleted object (Peek), a
 * subscription with 204 (seed 003). */
static int delete_stored(owh_req_t *q, owh_dialect_e dialect)
{
    owh_webhook_t *wh;
    apr_status_t rv = owh_store_webhook_delete(q->db, q->caller.connection, dialect, q->id, &wh, q->r->pool);
    if (rv == APR_NOTFOUND) return not_found(q->r);
    if (rv != APR_SUCCESS) return store_failed(q, rv, "delete");
    if (dialect == OWH_DIALECT_NOTIFICATIONS) {
        q->r->status = HTTP_NO_CONTENT;
        return OK;
    }
    return send_json(q->r, HTTP_OK, owh_webhook_to_api_json(wh, q->r->pool));
}

static int webhooks_list(owh_req_t *q) { return list_stored(q, OWH_DIALECT_OCTO); }

/* Applies a request body to a webhook or subscription: the dialect's parser
 * (and, for webhooks, the capabilities of the Octo-Capabilities header). */
typedef apr_status_t owh_apply_fn(request_rec *r, owh_webhook_t *wh, const json_t *body, int create,
                                  const char **perr);

static apr_status_t apply_webhook(request_rec *r, owh_webhook_t *wh, const json_t *body, int create,
                                  const char **perr)
{
    if (owh_webhook_apply_json(wh, body, create, perr, r->pool) != APR_SUCCESS) return APR_EINVAL;
    return owh_capabilities_parse(&wh->capabilities, request_caps(r), wh->event_type, perr, r->pool);
}

static apr_status_t apply_subscription(request_rec *r, owh_webhook_t *wh, const json_t *body, int create,
                                       const char **perr)
{
    return owh_subscription_apply_json(wh, body, create, perr, r->pool);
}

/* POST: parse, check the URL against the SSRF rule, store; the answer shows
 * a signing secret the one time it exists. */
static int create_stored(owh_req_t *q, owh_webhook_t *wh, owh_apply_fn *apply, int status)
{
    request_rec *r = q->r;
    const char *err = NULL;
    apr_status_t rv;
    json_t *body, *answer;

    if (read_json_object(q, 1, &body)) return OK;
    if (apply(r, wh, body, 1, &err) != APR_SUCCESS) return bad_request(r, err);
    if ((err = owh_netguard_check_url(q->sc->allow_networks, wh->url, r->pool)))
        return bad_request(r, apr_psprintf(r->pool, "url points to a forbidden address (%s)", err));
    rv = owh_store_webhook_insert(q->db, q->caller.connection, wh, q->sc->max_webhooks, r->pool);
    if (rv == APR_ENOSPC)
        return send_error(r, HTTP_CONFLICT, "BAD_REQUEST", apr_psprintf(r->pool,
                          "This connection already has %d webhooks and subscriptions, the most "
                          "OctoWebhooksMaxWebhooks allows; delete one first", q->sc->max_webhooks));
    if (rv != APR_SUCCESS) return store_failed(q, rv, "create");
    answer = owh_webhook_to_api_json(wh, r->pool);
    if (wh->secret) json_object_set_new(answer, "secret", json_string(wh->secret));
    if (status == HTTP_CREATED) {
        /* r->uri is decoded: escape it again, so nothing the client put in
         * the path (CR, LF, ...) reaches a header */
        const char *path = ap_escape_uri(r->pool, r->uri);
        apr_table_setn(r->headers_out, "Location", ap_construct_url(r->pool,
            apr_pstrcat(r->pool, path, path[strlen(path) - 1] == '/' ? "" : "/", wh->id, NULL), r));
    }
    return send_json(r, status, answer);
}

/* PATCH, in one transaction (owh_store_tx): read and lock the stored object,
 * apply the body over it, store. A body that cannot apply leaves err. */
typedef struct update_tx_t {
    owh_req_t *q;
    owh_dialect_e dialect;
    owh_apply_fn *apply;
    json_t *body;
    owh_webhook_t *wh;
    const char *err;                /* a 400's message */
} update_tx_t;

static apr_status_t update_in_tx(owh_db_t *db, void *baton, apr_pool_t *p)
{
    update_tx_t *u = baton;
    owh_req_t *q = u->q;
    const char *stored_url, *why;
    json_t *url;
    apr_status_t rv;

    if ((rv = owh_store_webhook_get(db, q->caller.connection, u->dialect, q->id, &u->wh, 1, p)) != APR_SUCCESS)
        return rv;
    stored_url = u->wh->url;
    if (u->apply(q->r, u->wh, u->body, 0, &u->err) != APR_SUCCESS) return APR_EINVAL;
    /* A client that read the object back and sends the masked URL unchanged
     * keeps the stored credentials. */
    url = json_object_get(u->body, "url");
    if (url && json_is_string(url) && strcmp(stored_url, owh_url_display(stored_url, p)) != 0
        && !strcmp(json_string_value(url), owh_url_display(stored_url, p)))
        u->wh->url = stored_url;
    if ((why = owh_netguard_check_url(q->sc->allow_networks, u->wh->url, p))) {
        u->err = apr_psprintf(p, "url points to a forbidden address (%s)", why);
        return APR_EINVAL;
    }
    return owh_store_webhook_update(db, q->caller.connection, u->wh, p);
}

static int update_stored(owh_req_t *q, owh_dialect_e dialect, owh_apply_fn *apply)
{
    request_rec *r = q->r;
    update_tx_t u;
    apr_status_t rv;

    memset(&u, 0, sizeof(u));
    if (read_json_object(q, 1, &u.body)) return OK;
    if (!owh_uuid_valid(q->id)) return not_found(r);
    u.q = q;
    u.dialect = dialect;
    u.apply = apply;
    rv = owh_store_tx(q->db, update_in_tx, &u, r->pool);
    if (rv == APR_NOTFOUND) return not_found(r);
    if (rv == APR_EINVAL && u.err) return bad_request(r, u.err);
    if (rv != APR_SUCCESS) return store_failed(q, rv, "update");
    if (u.wh->active) u.wh->disabled_reason = u.wh->disabled_at = NULL;   /* cleared by the update */
    return send_json(r, HTTP_OK, owh_webhook_to_api_json(u.wh, r->pool));
}

static int webhooks_create(owh_req_t *q)
{
    return create_stored(q, owh_webhook_make(q->r->pool), apply_webhook, HTTP_OK);
}

static int webhooks_delete_by_url(owh_req_t *q)
{
    request_rec *r = q->r;
    apr_table_t *args;
    apr_array_header_t *list;
    const char *url = NULL;
    apr_status_t rv;
    json_t *body;

    args = owh_request_args(r->args, r->pool);
    url = apr_table_get(args, "url");
    if (read_json_object(q, 0, &body)) return OK;
    if (!url && body && json_object_get(body, "url")) {
        json_t *u = json_object_get(body, "url");
        if (!json_is_string(u)) return bad_request(r, "url must be a string");
        url = json_string_value(u);
    }
    if (!url || !*url)
        return bad_request(r, "url is required, as a query parameter or a body field");
    if (strlen(url) > OWH_URL_MAX) return bad_request(r, "url is too long");
    if ((rv = owh_store_webhook_delete_by_url(q->db, q->caller.connection, url, &list, r->pool))
        != APR_SUCCESS)
        return store_failed(q, rv, "delete webhooks by url");
    return send_json(r, HTTP_OK, list_to_json(list, r->pool));
}

static int webhook_get(owh_req_t *q) { return get_stored(q, OWH_DIALECT_OCTO); }

static int webhook_update(owh_req_t *q)
{
    return update_stored(q, OWH_DIALECT_OCTO, apply_webhook);
}

static int webhook_delete(owh_req_t *q) { return delete_stored(q, OWH_DIALECT_OCTO); }

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

static int webhook_trigger(owh_req_t *q)
{
    request_rec *r = q->r;
    trigger_tx_t t;
    const char *err = NULL;
    json_t *body, *answer;
    apr_status_t rv;

    memset(&t, 0, sizeof(t));
    t.q = q;
    if (read_json_object(q, 0, &body)) return OK;
    rv = owh_store_webhook_get(q->db, q->caller.connection, OWH_DIALECT_OCTO, q->id, &t.wh, 0, r->pool);
    if (rv == APR_NOTFOUND) return not_found(r);
    if (rv != APR_SUCCESS) return store_failed(q, rv, "trigger webhook");
    if (!(t.objects = owh_trigger_objects(t.wh->event_type, body, &err, r->pool))) return bad_request(r, err);
    t.queued = owh_json_pool_own(json_array(), r->pool);
    rv = owh_store_tx(q->db, trigger_in_tx, &t, r->pool);
    if (rv == APR_NOTFOUND) return not_found(r);
    if (rv == APR_EAGAIN && t.retry_after) {
        apr_table_setn(r->headers_out, "Retry-After", apr_itoa(r->pool, t.retry_after));
        return send_error(r, HTTP_TOO_MANY_REQUESTS, "BAD_REQUEST", apr_psprintf(r->pool,
                          "This webhook was sent %d test notifications in the last minute, the most "
                          "OctoWebhooksTriggerRate allows; try again in %d s", q->sc->trigger_rate, t.retry_after));
    }
    if (rv != APR_SUCCESS) return store_failed(q, rv, "trigger webhook");
    answer = owh_json_pool_own(json_pack("{s:O, s:O}", "webhook", owh_webhook_to_api_json(t.wh, r->pool),
                                         "queued", t.queued), r->pool);
    return send_json(r, HTTP_OK, answer);
}

/* POST /webhooks/{id}/secret: a new signing secret (generated, or the body's
 * "secret"), shown once; the one it replaces signs too for the grace period. */
static int webhook_secret(owh_req_t *q)
{
    request_rec *r = q->r;
    const char *secret = NULL, *err = NULL, *previous_until = NULL;
    json_t *body, *v;
    apr_status_t rv;

    if (read_json_object(q, 0, &body)) return OK;
    if (body && (v = json_object_get(body, "secret")) && !json_is_null(v)) {
        if (!json_is_string(v)) return bad_request(r, "secret must be a \"whsec_...\" string");
        if (owh_sign_secret_check(json_string_value(v), &err) != APR_SUCCESS) return bad_request(r, err);
        secret = json_string_value(v);
    }
    else if (owh_sign_secret_generate(&secret, r->pool) != APR_SUCCESS)
        return send_error(r, HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", MSG_INTERNAL);
    rv = owh_store_webhook_set_secret(q->db, q->caller.connection, q->id, secret, q->sc->secret_grace,
                                      &previous_until, r->pool);
    if (rv == APR_NOTFOUND) return not_found(r);
    if (rv != APR_SUCCESS) return store_failed(q, rv, "set secret");
    return send_json(r, HTTP_OK, owh_json_pool_own(json_pack("{s:s, s:o}", "secret", secret,
        "previousSecretValidUntil", previous_until ? json_string(previous_until) : json_null()), r->pool));
}

/* GET /webhooks/{id}/deliveries?status=&limit=&cursor= */
static int webhook_deliveries(owh_req_t *q)
{
    request_rec *r = q->r;
    const char *status = NULL, *cursor = NULL, *json = NULL, *err;
    int limit = 20;
    apr_status_t rv;

    if ((err = owh_request_list_params(owh_request_args(r->args, r->pool), &status, &limit, &cursor)))
        return bad_request(r, err);
    rv = owh_store_deliveries_list(q->db, q->caller.connection, q->id, status, cursor, limit, &json, r->pool);
    if (rv == APR_NOTFOUND) return not_found(r);
    if (rv == APR_EINVAL) return bad_request(r, "cursor is not one this API gave");
    if (rv != APR_SUCCESS) return store_failed(q, rv, "list deliveries");
    return send_json_text(r, HTTP_OK, json, strlen(json));
}

/* POST /webhooks/{id}/deliveries/{deliveryId}/retry */
static int delivery_retry(owh_req_t *q)
{
    request_rec *r = q->r;
    const char *json = NULL;
    apr_status_t rv = owh_store_delivery_retry(q->db, q->caller.connection, q->id, q->sub, &json, r->pool);
    if (rv == APR_NOTFOUND) return not_found(r);
    if (rv == APR_EBUSY)
        return send_error(r, HTTP_CONFLICT, "BAD_REQUEST", "The delivery is being attempted right now");
    if (rv != APR_SUCCESS) return store_failed(q, rv, "retry delivery");
    return send_json_text(r, HTTP_OK, json, strlen(json));
}

/* POST /webhooks/{id}/recover {"since": "<ISO 8601>"}: requeues the failed
 * deliveries created since then. */
static int webhook_recover(owh_req_t *q)
{
    request_rec *r = q->r;
    json_t *body, *since;
    int count = 0;
    apr_status_t rv;

    if (read_json_object(q, 1, &body)) return OK;
    since = json_object_get(body, "since");
    if (!since || !json_is_string(since) || !owh_iso8601_valid(json_string_value(since)))
        return bad_request(r, "since is required: an ISO 8601 date-time such as 2026-11-20T08:00:00Z");
    rv = owh_store_webhook_recover(q->db, q->caller.connection, q->id, json_string_value(since), &count,
                                   r->pool);
    if (rv == APR_NOTFOUND) return not_found(r);
    if (rv != APR_SUCCESS) return store_failed(q, rv, "recover deliveries");
    return send_json(r, HTTP_OK, owh_json_pool_own(json_pack("{s:i}", "requeued", count), r->pool));
}

/* ---- the notifications dialect (seed 003) --------------------------------
 * Subscriptions are rows of the same table, fanned out by the same emit() and
 * delivered by the same dispatcher; only the API shape and payload differ. */
static int subscriptions_list(owh_req_t *q) { return list_stored(q, OWH_DIALECT_NOTIFICATIONS); }

static int subscriptions_create(owh_req_t *q)
{
    return create_stored(q, owh_subscription_make(q->r->pool), apply_subscription, HTTP_CREATED);
}

static int subscription_get(owh_req_t *q) { return get_stored(q, OWH_DIALECT_NOTIFICATIONS); }

static int subscription_update(owh_req_t *q)
{
    return update_stored(q, OWH_DIALECT_NOTIFICATIONS, apply_subscription);
}

static int subscription_delete(owh_req_t *q) { return delete_stored(q, OWH_DIALECT_NOTIFICATIONS); }

/* ---- the route table ----------------------------------------------------- */
typedef int owh_route_fn(owh_req_t *q);

typedef struct {
    int method;                 /* M_GET, M_POST, ... */
    owh_route_fn *fn;
    owh_ability_e need;
} owh_method_t;

typedef struct {
    const char *pattern;        /* literal segments; "{id}" matches one segment */
    const char *allow;          /* the Allow header for 405 */
    owh_method_t methods[4];
    const char *family;         /* abilities that grant it: NULL = either family */
} owh_route_t;

static const owh_route_t routes[] = {
    { "webhooks", "GET, POST, DELETE", {
        { M_GET, webhooks_list, OWH_ABILITY_READ },
        { M_POST, webhooks_create, OWH_ABILITY_WRITE },
        { M_DELETE, webhooks_delete_by_url, OWH_ABILITY_WRITE } } },
    { "webhooks/{id}", "GET, PATCH, DELETE", {
        { M_GET, webhook_get, OWH_ABILITY_READ },
        { M_PATCH, webhook_update, OWH_ABILITY_WRITE },
        { M_DELETE, webhook_delete, OWH_ABILITY_WRITE } } },
    { "webhooks/{id}/trigger", "POST", {
        { M_POST, webhook_trigger, OWH_ABILITY_WRITE } } },
    { "webhooks/{id}/secret", "POST", {
        { M_POST, webhook_secret, OWH_ABILITY_WRITE } } },
    { "webhooks/{id}/deliveries", "GET", {
        { M_GET, webhook_deliveries, OWH_ABILITY_READ } } },
    { "webhooks/{id}/deliveries/{sub}/retry", "POST", {
        { M_POST, delivery_retry, OWH_ABILITY_WRITE } } },
    { "webhooks/{id}/recover", "POST", {
        { M_POST, webhook_recover, OWH_ABILITY_WRITE } } },
    { "v1/notifications/subscriptions", "GET, POST", {
        { M_GET, subscriptions_list, OWH_ABILITY_READ },
        { M_POST, subscriptions_create, OWH_ABILITY_WRITE } }, "notifications" },
    { "v1/notifications/subscriptions/{id}", "GET, PATCH, DELETE", {
        { M_GET, subscription_get, OWH_ABILITY_READ },
        { M_PATCH, subscription_update, OWH_ABILITY_WRITE },
        { M_DELETE, subscription_delete, OWH_ABILITY_WRITE } }, "notifications" },
    { NULL }
};

/* Routes are relative to one base: the <Location> whose section sets the
 * handler (the longest, when several nest), found in the configuration tree
 * at startup; without one (the handler set elsewhere) the innermost
 * <Location>, else the root. Nothing else: /octo/anything/webhooks is 404,
 * so rules on inner <Location>s cannot be stepped around. */
static const owh_route_t *resolve_route(request_rec *r, const owh_srv_conf_t *sc, const owh_dir_conf_t *dc,
                                        const char **ids)
{
    const char *patterns[sizeof(routes) / sizeof(routes[0])];
    int i;
    for (i = 0; routes[i].pattern; ++i) patterns[i] = routes[i].pattern;
    patterns[i] = NULL;
    i = owh_request_route(r->uri, owh_request_base(r->uri, sc->handler_locations, dc->location),
                          patterns, ids, r->pool);
    return i < 0 ? NULL : &routes[i];
}

/* GET {Location}/openapi.json: the API's OpenAPI document, compiled in, to
 * anyone (it holds no data), at the routes' base only. */
static int is_openapi(request_rec *r, const owh_srv_conf_t *sc, const owh_dir_conf_t *dc)
{
    const char *base = owh_request_base(r->uri, sc->handler_locations, dc->location);
    apr_size_t n = strlen(base);
    return !strncmp(r->uri, base, n) && !strcmp(r->uri + n, "/openapi.json");
}

static int send_openapi(request_rec *r)
{
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET");
        return send_error(r, HTTP_METHOD_NOT_ALLOWED, "BAD_REQUEST",
                          apr_psprintf(r->pool, "Method %s is not allowed here; use GET", r->method));
    }
    return send_json_text(r, HTTP_OK, owh_openapi_json, owh_openapi_json_len);
}

int owh_handler_handle(request_rec *r)
{
    owh_req_t q;
    const owh_route_t *route;
    const owh_method_t *m = NULL;
    const char *caps, *ids[2] = { NULL, NULL };
    int remote_user, i;
    apr_status_t rv;

    if (!r->handler || strcmp(r->handler, OWH_HANDLER_NAME)) return DECLINED;

    memset(&q, 0, sizeof(q));
    q.r = r;
    q.sc = owh_config_srv_get(r->server);
    q.dc = owh_config_dir_get(r);

    /* Every answer echoes the capabilities the client asked for. */
    if ((caps = request_caps(r)) != NULL)
        apr_table_setn(r->headers_out, "Octo-Capabilities", owh_request_trim(caps, r->pool));

    if (!(route = resolve_route(r, q.sc, q.dc, ids)))
        return is_openapi(r, q.sc, q.dc) ? send_openapi(r) : not_found(r);
    q.id = ids[0];
    q.sub = ids[1];
    for (i = 0; i < 4 && route->methods[i].fn; ++i)
        if (route->methods[i].method == r->method_number) { m = &route->methods[i]; break; }
    if (!m) {
        apr_table_setn(r->headers_out, "Allow", route->allow);
        return send_error(r, HTTP_METHOD_NOT_ALLOWED, "BAD_REQUEST", apr_psprintf(r->pool,
                          "Method %s is not allowed here; use %s", r->method, route->allow));
    }

    remote_user = owh_config_auth(q.dc) == OWH_AUTH_REMOTE_USER;
    if (!owh_auth_present(r, remote_user)) {
        if (!remote_user)
            apr_table_setn(r->headers_out, "WWW-Authenticate", "Bearer realm=\"octo\"");
        return send_error(r, HTTP_UNAUTHORIZED, "UNAUTHORIZED", MSG_UNAUTHORIZED);
    }

    q.body = "";
    if (take_body(&q)) return OK;

    if (!q.sc->store) return store_failed(&q, OWH_STORE_EUNAVAIL, "request");
    if ((rv = owh_store_acquire(&q.db, q.sc->store, r->pool)) != APR_SUCCESS)
        return store_failed(&q, rv, "acquire connection");

    switch (owh_auth_check(r, remote_user, q.db, m->need, route->family, &q.caller)) {
    case OWH_AUTH_OK: break;
    case OWH_AUTH_MISSING:
        return send_error(r, HTTP_UNAUTHORIZED, "UNAUTHORIZED", MSG_UNAUTHORIZED);
    case OWH_AUTH_UNAVAILABLE:
        return store_failed(&q, OWH_STORE_EUNAVAIL, "authenticate");
    default:
        return send_error(r, HTTP_FORBIDDEN, "FORBIDDEN", MSG_FORBIDDEN);
    }
    return m->fn(&q);
}
