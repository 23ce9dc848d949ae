/* libFuzzer target: the request path without httpd — which base a URI's
 * routes resolve against and which route it is (owh_request), the
 * Authorization header's bearer token, the query string and the attempt
 * log's parameters, the Octo-Capabilities header, and the bodies of every
 * route that takes one (webhook and subscription create/PATCH, trigger,
 * recover's "since"). Input: uri, query, Authorization, Octo-Capabilities and
 * body, split at NUL bytes. Build and run: fuzz/run. */
#include <apr_general.h>
#include <apr_strings.h>
#include <stdint.h>
#include <string.h>

#include "owh_json.h"
#include "owh_request.h"
#include "owh_trigger.h"
#include "owh_webhook.h"

static apr_pool_t *root;

static const char *const patterns[] = {
    "webhooks", "webhooks/{id}", "webhooks/{id}/trigger", "webhooks/{id}/secret",
    "webhooks/{id}/deliveries", "webhooks/{id}/deliveries/{sub}/retry", "webhooks/{id}/recover",
    "v1/notifications/subscriptions", "v1/notifications/subscriptions/{id}", NULL
};

/* The next NUL-separated part of the input (the rest, at the end). */
static const char *part(const uint8_t **data, size_t *size, apr_pool_t *p)
{
    const uint8_t *nul = memchr(*data, 0, *size);
    size_t n = nul ? (size_t)(nul - *data) : *size;
    const char *s = apr_pstrmemdup(p, (const char *)*data, n);
    *data += nul ? n + 1 : n;
    *size -= nul ? n + 1 : n;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    apr_array_header_t *bases, *caps;
    const char *uri, *query, *auth, *caph, *body, *ids[2] = { NULL, NULL }, *base, *err = NULL;
    const char *status, *cursor, *tok;
    apr_table_t *args;
    owh_webhook_t *wh;
    json_t *j;
    int route, limit, e;

    if (!root) { apr_initialize(); apr_pool_create(&root, NULL); }
    apr_pool_create(&p, root);
    uri = part(&data, &size, p);
    query = part(&data, &size, p);
    auth = part(&data, &size, p);
    caph = part(&data, &size, p);
    body = apr_pstrmemdup(p, (const char *)data, size);

    bases = apr_array_make(p, 4, sizeof(const char *));
    APR_ARRAY_PUSH(bases, const char *) = "/octo";
    APR_ARRAY_PUSH(bases, const char *) = "/octo/v2";
    APR_ARRAY_PUSH(bases, const char *) = "";
    base = owh_request_base(uri, bases, "/inner/x");
    route = owh_request_route(uri, base, patterns, ids, p);
    if (route >= 0 && (route == 0 || route == 7) && (ids[0] || ids[1])) __builtin_trap();
    owh_request_route(uri, owh_request_base(uri, NULL, uri), patterns, ids, p);
    owh_request_route(uri, owh_request_base(uri, NULL, NULL), patterns, ids, p);
    if (ids[0]) owh_uuid_valid(ids[0]);

    args = owh_request_args(query, p);
    owh_request_list_params(args, &status, &limit, &cursor);
    apr_table_get(args, "url");
    if ((tok = owh_request_bearer(auth)) && !*tok) __builtin_trap();
    owh_request_trim(caph, p);

    /* bodies: each route's parser, with the capability header */
    if ((j = owh_json_parse(body, size, &err, p)) && json_is_object(j)) {
        for (e = OWH_EVENT_BOOKING; e <= OWH_EVENT_PRODUCT; ++e) {
            wh = owh_webhook_make(p);
            if (owh_webhook_apply_json(wh, j, 1, &err, p) == APR_SUCCESS) {
                owh_capabilities_parse(&caps, caph, wh->event_type, &err, p);
                owh_json_dump(owh_webhook_to_api_json(wh, p), NULL, p);
            }
            owh_trigger_objects((owh_event_e)e, j, &err, p);
        }
        wh = owh_subscription_make(p);
        if (owh_subscription_apply_json(wh, j, 1, &err, p) == APR_SUCCESS)
            owh_json_dump(owh_webhook_to_api_json(wh, p), NULL, p);
        if (json_is_string(json_object_get(j, "since")))
            owh_iso8601_valid(json_string_value(json_object_get(j, "since")));
    }
    apr_pool_destroy(p);
    return 0;
}
