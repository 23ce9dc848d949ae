/* libFuzzer target: what the dispatcher does with objects it did not write —
 * the event object and the previous state (inline: the supplier's JSON;
 * resolve mode: the supplier API's answer) through owh_diff, cardPayment
 * stripping, the event view and both dialects' bodies (the octo body also
 * from its parts, compared byte for byte) — and the request-body
 * parsers of webhooks and subscriptions. Input: two documents split at the
 * first NUL byte. Build and run: fuzz/run. */
#include <apr_general.h>
#include <apr_strings.h>
#include <stdint.h>
#include <string.h>

#include "owh_diff.h"
#include "owh_json.h"
#include "owh_payload.h"
#include "owh_webhook.h"

static apr_pool_t *root;

/* Differential: the dispatcher's body from its parts (a webhook's head, the
 * supplier's text, the view's tail) must be owh_payload_build's bytes. */
static void same_from(const owh_webhook_t *wh, const owh_event_view_t *v, const json_t *supplier,
                      const char *body, apr_size_t len, apr_pool_t *p)
{
    const char *fb;
    apr_size_t fl = 0;
    if (owh_payload_build_from(&fb, &fl, owh_payload_head(wh, p), owh_payload_supplier_text(supplier, p), v, p)
            != APR_SUCCESS || fl != len || memcmp(fb, body, len))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *types[] = { "booking_update", "order_update", "product_update", "availability_update" };
    apr_pool_t *p;
    const uint8_t *nul = memchr(data, 0, size);
    const char *a, *b, *body, *err = NULL;
    owh_webhook_t *wh, *sub;
    owh_event_view_t *v;
    apr_size_t len;
    json_error_t jerr;
    json_t *ja, *jb;
    int i;

    if (!root) { apr_initialize(); apr_pool_create(&root, NULL); }
    apr_pool_create(&p, root);
    a = apr_pstrmemdup(p, (const char *)data, nul ? (apr_size_t)(nul - data) : size);
    b = nul ? apr_pstrmemdup(p, (const char *)nul + 1, size - (nul - data) - 1) : "{}";

    /* diff of two arbitrary documents, both directions */
    ja = owh_json_pool_own(json_loads(a, JSON_DECODE_ANY, &jerr), p);
    jb = owh_json_pool_own(json_loads(b, JSON_DECODE_ANY, &jerr), p);
    owh_json_dump(owh_diff(ja, jb, p), &len, p);
    owh_json_dump(owh_diff(jb, ja, p), &len, p);

    /* views and bodies */
    wh = owh_webhook_make(p);
    wh->id = "w";
    wh->event = "booking_update";
    wh->url = "https://u:p@h/";
    sub = owh_subscription_make(p);
    sub->id = "s";
    sub->url = "https://h/";
    for (i = 0; i < 4; ++i) {
        if (owh_payload_view_make(&v, types[i], "1", "t", a, b, "es", p) == APR_SUCCESS) {
            if (owh_payload_build(&body, &len, wh, v, NULL, p) == APR_SUCCESS)
                same_from(wh, v, NULL, body, len, p);
            if (owh_payload_build(&body, &len, owh_webhook_copy(wh, p), v, jb, p) == APR_SUCCESS)
                same_from(wh, v, jb, body, len, p);
            owh_payload_build(&body, &len, sub, v, NULL, p);
        }
        if (owh_payload_view_make(&v, types[i], "1", "t", b, a, NULL, p) == APR_SUCCESS)
            owh_payload_build(&body, &len, sub, v, jb, p);
    }

    /* request bodies */
    if ((ja = owh_json_parse(a, strlen(a), &err, p))) {
        owh_webhook_apply_json(owh_webhook_make(p), ja, 1, &err, p);
        owh_webhook_apply_json(wh, ja, 0, &err, p);
        owh_subscription_apply_json(owh_subscription_make(p), ja, 1, &err, p);
        owh_subscription_apply_json(sub, ja, 0, &err, p);
        owh_json_dump(owh_webhook_to_api_json(sub, p), &len, p);
    }
    apr_pool_destroy(p);
    return 0;
}
