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
#include "owh_handler_int.h"
#include "owh_config.h"
#include "owh_auth.h"
#include "owh_store.h"
#include "owh_webhook.h"
#include "owh_json.h"
#include "owh_netguard.h"
#include "owh_openapi.h"
#include "owh_request.h"

APLOG_USE_MODULE(octo_webhooks);

static const char *request_caps(request_rec *r)
{
    return apr_table_get(r->headers_in, "Octo-Capabilities");
}

/* ---- routes -------------------------------------------------------------- */
/* The stored objects of both dialects: list, get and delete differ only in
 * the dialect and in what a delete answers. */
static int list_stored(owh_req_t *q, owh_dialect_e dialect)
{
    return owh_send_webhook_list(q, dialect);
}

static int get_stored(owh_req_t *q, owh_dialect_e dialect)
{
    owh_webhook_t *wh;
    apr_status_t rv = owh_store_webhook_get(q->db, q->caller.connection, dialect, q->id, &wh, q->r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(q->r);
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "get");
    return owh_send_webhook(q->r, HTTP_OK, wh, NULL);
}

/* DELETE by id: a webhook answers with the deleted object (Peek), a
 * subscription with 204 (seed 003). */
static int delete_stored(owh_req_t *q, owh_dialect_e dialect)
{
    owh_webhook_t *wh;
    apr_status_t rv = owh_store_webhook_delete(q->db, q->caller.connection, dialect, q->id, &wh, q->r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(q->r);
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "delete");
    if (dialect == OWH_DIALECT_NOTIFICATIONS) {
        q->r->status = HTTP_NO_CONTENT;
        return OK;
    }
    return owh_send_webhook(q->r, HTTP_OK, wh, NULL);
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
    json_t *body;

    if (owh_read_json_object(q, 1, &body)) return OK;
    if (apply(r, wh, body, 1, &err) != APR_SUCCESS) return owh_bad_request(r, err);
    if ((err = owh_netguard_check_url(q->sc->allow_networks, wh->url, r->pool)))
        return owh_bad_request(r, apr_psprintf(r->pool, "url points to a forbidden address (%s)", err));
    rv = owh_store_webhook_insert(q->db, q->caller.connection, wh, q->sc->max_webhooks, r->pool);
    if (rv == APR_ENOSPC)
        return owh_send_error(r, HTTP_CONFLICT, "BAD_REQUEST", apr_psprintf(r->pool,
                          "This connection already has %d webhooks and subscriptions, the most "
                          "OctoWebhooksMaxWebhooks allows; delete one first", q->sc->max_webhooks));
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "create");
    if (status == HTTP_CREATED) {
        /* r->uri is decoded: escape it again, so nothing the client put in
         * the path (CR, LF, ...) reaches a header */
        const char *path = ap_escape_uri(r->pool, r->uri);
        apr_table_setn(r->headers_out, "Location", ap_construct_url(r->pool,
            apr_pstrcat(r->pool, path, path[strlen(path) - 1] == '/' ? "" : "/", wh->id, NULL), r));
    }
    return owh_send_webhook(r, status, wh, wh->secret);
}

/* A PATCH body that cannot apply is a 400 only for a webhook that exists
 * (the connection's own): else 404, as when the body is fine. */
static int update_refused(owh_req_t *q, owh_dialect_e dialect, const char *err)
{
    owh_webhook_t *wh;
    apr_status_t rv = owh_store_webhook_get(q->db, q->caller.connection, dialect, q->id, &wh, q->r->pool);
    if (rv == APR_NOTFOUND) return owh_not_found(q->r);
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "update");
    return owh_bad_request(q->r, err);
}

static const char *forbidden_url(owh_req_t *q, const char *url)
{
    const char *why = owh_netguard_check_url(q->sc->allow_networks, url, q->r->pool);
    return why ? apr_psprintf(q->r->pool, "url points to a forbidden address (%s)", why) : NULL;
}

/* PATCH in one round trip: the body is parsed and checked here (its URL
 * against the SSRF rule: a masked URL sent back unchanged has the stored
 * host), then update_webhook() reads, locks, applies and writes the row in
 * one statement. Only a stored URL the body left alone and whose host may
 * be an IP literal costs a second one: checked here first. */
static int update_stored(owh_req_t *q, owh_dialect_e dialect, owh_apply_fn *apply)
{
    request_rec *r = q->r;
    owh_webhook_patch_t patch;
    owh_webhook_t *wh, *stored;
    const char *err = NULL, *checked = NULL;
    apr_status_t rv;
    json_t *body;
    int tries;

    if (owh_read_json_object(q, 1, &body)) return OK;
    if (!owh_uuid_valid(q->id)) return owh_not_found(r);
    wh = dialect == OWH_DIALECT_NOTIFICATIONS ? owh_subscription_make(r->pool) : owh_webhook_make(r->pool);
    if (apply(r, wh, body, 0, &err) != APR_SUCCESS) return update_refused(q, dialect, err);
    memset(&patch, 0, sizeof(patch));
    patch.wh = wh;
    patch.event = json_object_get(body, dialect == OWH_DIALECT_NOTIFICATIONS ? "notificationTypes" : "event") != NULL;
    patch.url = json_object_get(body, "url") != NULL;
    patch.active = dialect == OWH_DIALECT_OCTO && json_object_get(body, "active") != NULL;
    patch.retry_on_error = dialect == OWH_DIALECT_OCTO && json_object_get(body, "retryOnError") != NULL;
    patch.use_contact_language = dialect == OWH_DIALECT_OCTO && json_object_get(body, "useContactLanguage") != NULL;
    patch.headers = json_object_get(body, "headers") != NULL;
    patch.capabilities = dialect == OWH_DIALECT_OCTO;
    if (patch.url && (err = forbidden_url(q, wh->url))) return update_refused(q, dialect, err);
    for (tries = 0; ; ++tries) {
        rv = owh_store_webhook_patch(q->db, q->caller.connection, q->id, &patch, checked, &stored, r->pool);
        if (rv != APR_EAGAIN || tries == 3) break;
        if ((err = forbidden_url(q, stored->url))) return owh_bad_request(r, err);
        checked = stored->url;
    }
    if (rv == APR_NOTFOUND) return owh_not_found(r);
    if (rv != APR_SUCCESS) return owh_store_failed(q, rv, "update");
    if (patch.headers) {            /* shown in the body's order, as sent */
        stored->headers = wh->headers;
        stored->headers_text = NULL;
    }
    return owh_send_webhook(r, HTTP_OK, stored, NULL);
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
    if (owh_read_json_object(q, 0, &body)) return OK;
    if (!url && body && json_object_get(body, "url")) {
        json_t *u = json_object_get(body, "url");
        if (!json_is_string(u)) return owh_bad_request(r, "url must be a string");
        url = json_string_value(u);
    }
    if (!url || !*url)
        return owh_bad_request(r, "url is required, as a query parameter or a body field");
    if (strlen(url) > OWH_URL_MAX) return owh_bad_request(r, "url is too long");
    if ((rv = owh_store_webhook_delete_by_url(q->db, q->caller.connection, url, &list, r->pool))
        != APR_SUCCESS)
        return owh_store_failed(q, rv, "delete webhooks by url");
    return owh_send_webhook_array(r, list);
}

static int webhook_get(owh_req_t *q) { return get_stored(q, OWH_DIALECT_OCTO); }

static int webhook_update(owh_req_t *q)
{
    return update_stored(q, OWH_DIALECT_OCTO, apply_webhook);
}

static int webhook_delete(owh_req_t *q) { return delete_stored(q, OWH_DIALECT_OCTO); }

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
        { M_POST, owh_route_webhook_trigger, OWH_ABILITY_WRITE } } },
    { "webhooks/{id}/secret", "POST", {
        { M_POST, owh_route_webhook_secret, OWH_ABILITY_WRITE } } },
    { "webhooks/{id}/deliveries", "GET", {
        { M_GET, owh_route_webhook_deliveries, OWH_ABILITY_READ } } },
    { "webhooks/{id}/deliveries/{sub}/retry", "POST", {
        { M_POST, owh_route_delivery_retry, OWH_ABILITY_WRITE } } },
    { "webhooks/{id}/recover", "POST", {
        { M_POST, owh_route_webhook_recover, OWH_ABILITY_WRITE } } },
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
        return owh_send_error(r, HTTP_METHOD_NOT_ALLOWED, "BAD_REQUEST",
                          apr_psprintf(r->pool, "Method %s is not allowed here; use GET", r->method));
    }
    return owh_send_json_text(r, HTTP_OK, owh_openapi_json, owh_openapi_json_len);
}

int owh_handler_map_to_storage(request_rec *r)
{
    const owh_srv_conf_t *sc = owh_config_srv_get(r->server);
    /* the routes are no files: the file system has nothing to say about them
     * (a walk cost ~11 system calls a request, more than the query) */
    if (!r->uri || r->uri[0] != '/' || !sc->handler_locations || !sc->handler_locations->nelts
        || !*owh_request_base(r->uri, sc->handler_locations, NULL))
        return DECLINED;
    return OK;
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
        return is_openapi(r, q.sc, q.dc) ? send_openapi(r) : owh_not_found(r);
    q.id = ids[0];
    q.sub = ids[1];
    for (i = 0; i < 4 && route->methods[i].fn; ++i)
        if (route->methods[i].method == r->method_number) { m = &route->methods[i]; break; }
    if (!m) {
        apr_table_setn(r->headers_out, "Allow", route->allow);
        return owh_send_error(r, HTTP_METHOD_NOT_ALLOWED, "BAD_REQUEST", apr_psprintf(r->pool,
                          "Method %s is not allowed here; use %s", r->method, route->allow));
    }

    remote_user = owh_config_auth(q.dc) == OWH_AUTH_REMOTE_USER;
    if (!owh_auth_present(r, remote_user)) {
        if (!remote_user)
            apr_table_setn(r->headers_out, "WWW-Authenticate", "Bearer realm=\"octo\"");
        return owh_send_error(r, HTTP_UNAUTHORIZED, "UNAUTHORIZED", MSG_UNAUTHORIZED);
    }

    q.body = "";
    if (owh_take_body(&q)) return OK;

    if (!q.sc->store) return owh_store_failed(&q, OWH_STORE_EUNAVAIL, "request");
    if ((rv = owh_store_acquire(&q.db, q.sc->store, r->pool)) != APR_SUCCESS)
        return owh_store_failed(&q, rv, "acquire connection");
    /* a write's statements end cached lists (before this request answers) */
    q.db->bumps_lists = m->need == OWH_ABILITY_WRITE;

    switch (owh_auth_check(r, remote_user, q.db, m->need, route->family, &q.caller)) {
    case OWH_AUTH_OK: break;
    case OWH_AUTH_MISSING:
        return owh_send_error(r, HTTP_UNAUTHORIZED, "UNAUTHORIZED", MSG_UNAUTHORIZED);
    case OWH_AUTH_UNAVAILABLE:
        return owh_store_failed(&q, OWH_STORE_EUNAVAIL, "authenticate");
    default:
        return owh_send_error(r, HTTP_FORBIDDEN, "FORBIDDEN", MSG_FORBIDDEN);
    }
    return m->fn(&q);
}
