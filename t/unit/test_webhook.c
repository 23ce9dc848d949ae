/* Unit tests of the core: the Webhook model (src/owh_webhook.c), JSON
 * helpers (src/owh_json.c), SHA-256 (src/owh_crypto.c), payloads
 * (src/owh_payload.c) and trigger objects (src/owh_trigger.c). TAP. */
#include <apr_general.h>
#include <apr_strings.h>

#include "tap.h"
#include "owh_webhook.h"
#include "owh_store_array.h"
#include "owh_json.h"
#include "owh_crypto.h"
#include "owh_payload.h"
#include "owh_trigger.h"

static apr_pool_t *pool;

/* apply a JSON text (create or patch) to a fresh webhook; returns the error or NULL */
static const char *apply(owh_webhook_t **pwh, const char *json, int create)
{
    const char *err = NULL;
    json_t *j = owh_json_parse(json, strlen(json), &err, pool);
    owh_webhook_t *wh = owh_webhook_make(pool);
    if (!j) return err;
    if (owh_webhook_apply_json(wh, j, create, &err, pool) != APR_SUCCESS) return err ? err : "?";
    if (pwh) *pwh = wh;
    return NULL;
}

static void refused(const char *json, const char *why)
{
    const char *err = apply(NULL, json, 1);
    tap_ok(err != NULL && *err, why);
}

static void accepted(const char *json, const char *why)
{
    const char *err = apply(NULL, json, 1);
    tap_ok(err == NULL, why);
    if (err) printf("#   error: %s\n", err);
}

static const char *caps(const char *hdr, owh_event_e ev)
{
    apr_array_header_t *a;
    const char *err = NULL;
    if (owh_capabilities_parse(&a, hdr, ev, &err, pool) != APR_SUCCESS) return "ERROR";
    return owh_store_array_format(a, pool);
}

int main(void)
{
    owh_webhook_t *wh;
    const char *err, *s;
    json_t *j;
    apr_array_header_t *a;
    apr_size_t len;
    char big[3000];

    apr_app_initialize(NULL, NULL, NULL);
    pool = tap_pool(NULL, "test_webhook");

    /* events */
    tap_ok(owh_event_parse("booking_update") == OWH_EVENT_BOOKING, "booking_update");
    tap_ok(owh_event_parse("booking.updated") == OWH_EVENT_BOOKING, "booking.updated alias");
    tap_ok(owh_event_parse("order.updated") == OWH_EVENT_ORDER, "order.updated alias");
    tap_ok(owh_event_parse("availability.updated") == OWH_EVENT_AVAILABILITY, "availability alias");
    tap_ok(owh_event_parse("product_update") == OWH_EVENT_PRODUCT, "product_update");
    tap_ok(owh_event_parse("Booking_Update") == OWH_EVENT_NONE, "events are case-sensitive");
    tap_ok(owh_event_parse(NULL) == OWH_EVENT_NONE, "NULL event");
    tap_is_str(owh_event_name(OWH_EVENT_ORDER), "order_update", "canonical name");

    /* create: defaults */
    err = apply(&wh, "{\"event\":\"booking.updated\",\"url\":\"https://example.com/h\"}", 1);
    tap_ok(!err, "minimal create accepted (Peek's shape)");
    tap_is_str(wh->event, "booking.updated", "event echoed as given");
    tap_ok(wh->active && wh->retry_on_error && wh->use_contact_language, "booleans default true");
    tap_ok(wh->headers->nelts == 0, "headers default empty");
    err = apply(&wh, "{\"event\":\"order_update\",\"url\":\"http://h/x\",\"retryOnError\":false,"
                     "\"useContactLanguage\":false,\"active\":false,\"headers\":{\"X-A\":\"1\",\"x-b\":\"\"},"
                     "\"capabilities\":[\"x\"],\"id\":\"nope\",\"whatever\":1}", 1);
    tap_ok(!err, "full create accepted, unknown fields ignored");
    tap_ok(!wh->active && !wh->retry_on_error && !wh->use_contact_language, "booleans set false");
    tap_ok(wh->headers->nelts == 2, "two headers");
    tap_ok(wh->id == NULL, "body id ignored");

    /* create: refusals */
    refused("{\"url\":\"https://e.com\"}", "missing event");
    refused("{\"event\":\"booking\",\"url\":\"https://e.com\"}", "unknown event");
    refused("{\"event\":1,\"url\":\"https://e.com\"}", "event not a string");
    refused("{\"event\":null,\"url\":\"https://e.com\"}", "event null");
    refused("{\"event\":\"booking_update\"}", "missing url");
    refused("{\"event\":\"booking_update\",\"url\":\"/relative\"}", "relative url");
    refused("{\"event\":\"booking_update\",\"url\":\"example.com/x\"}", "url without scheme");
    refused("{\"event\":\"booking_update\",\"url\":\"ftp://e.com/x\"}", "ftp url");
    refused("{\"event\":\"booking_update\",\"url\":\"//e.com/x\"}", "scheme-relative url");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com/a b\"}", "url with a space");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com/a\\tb\"}", "url with a tab");
    refused("{\"event\":\"booking_update\",\"url\":\"http:///x\"}", "url without host");
    refused("{\"event\":\"booking_update\",\"url\":\"http://:80/\"}", "url with only a port");
    refused("{\"event\":\"booking_update\",\"url\":\"http://e.com:99999/\"}", "port out of range");
    refused("{\"event\":\"booking_update\",\"url\":\"http://e.com:0/\"}", "port zero");
    refused("{\"event\":\"booking_update\",\"url\":\"http://e.com:8x/\"}", "port not numeric");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com/\\u00e9\"}", "non-ASCII url");
    refused("{\"event\":\"booking_update\",\"url\":5}", "url not a string");
    memset(big, 'a', sizeof(big));
    memcpy(big, "{\"event\":\"booking_update\",\"url\":\"https://e.com/", 46);
    memcpy(big + 2100, "\"}", 3);
    refused(big, "url over 2048 characters");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":[]}", "headers an array");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":\"x\"}", "headers a string");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":null}", "headers null");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"X\":1}}", "header value a number");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"X\":null}}", "header value null");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"Bad Name\":\"v\"}}", "header name with space");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"X:Y\":\"v\"}}", "header name with colon");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"\":\"v\"}}", "empty header name");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"X\":\"a\\r\\nX-Injected: 1\"}}", "CRLF injection");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"X\":\"a\\nb\"}}", "LF in value");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"host\":\"v\"}}", "Host forbidden");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"CONTENT-LENGTH\":\"1\"}}", "Content-Length forbidden");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"Content-Type\":\"x\"}}", "Content-Type forbidden");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"transfer-encoding\":\"x\"}}", "Transfer-Encoding forbidden");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"Connection\":\"x\"}}", "Connection forbidden");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"webhook-signature\":\"x\"}}", "webhook-signature reserved");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"X-A\":\"1\",\"x-a\":\"2\"}}", "duplicate header names");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"retryOnError\":\"true\"}", "retryOnError a string");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"useContactLanguage\":1}", "useContactLanguage a number");
    refused("{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"active\":null}", "active null");
    accepted("{\"event\":\"booking_update\",\"url\":\"https://user:p%40ss@e.com:8443/x?y=1#f\"}", "url with credentials, port, query, fragment");
    accepted("{\"event\":\"booking_update\",\"url\":\"HTTPS://E.COM/\"}", "upper-case scheme");
    accepted("{\"event\":\"booking_update\",\"url\":\"http://[::1]:8080/\"}", "IPv6 literal");

    /* error messages never echo the URL or header values */
    err = apply(NULL, "{\"event\":\"booking_update\",\"url\":\"ftp://u:topsecret@e.com\"}", 1);
    tap_ok(err && !strstr(err, "topsecret"), "url error does not echo credentials");
    err = apply(NULL, "{\"event\":\"booking_update\",\"url\":\"https://e.com\",\"headers\":{\"X-K\":\"s3cr3t\\n\"}}", 1);
    tap_ok(err && !strstr(err, "s3cr3t") && strstr(err, "X-K"), "header error names the header, not the value");

    /* strict JSON */
    tap_ok(owh_json_parse("{\"a\":1,\"a\":2}", 13, &err, pool) == NULL, "duplicate keys refused");
    tap_ok(owh_json_parse("{} x", 4, &err, pool) == NULL, "trailing data refused");
    tap_ok(owh_json_parse("", 0, &err, pool) == NULL, "empty body refused");
    tap_ok(owh_json_parse("{\"a\":\"\\u0000\"}", 13, &err, pool) == NULL, "NUL in strings refused");
    j = owh_json_parse("[1]", 3, &err, pool);
    tap_ok(j && json_is_array(j), "arrays parse (the handler refuses non-objects)");
    refused("[1]", "non-object body refused by the model");

    /* PATCH keeps what is absent */
    err = apply(&wh, "{\"event\":\"product_update\",\"url\":\"https://e.com/1\",\"headers\":{\"X\":\"1\"}}", 1);
    j = owh_json_parse("{\"active\":false}", 16, &err, pool);
    tap_ok(owh_webhook_apply_json(wh, j, 0, &err, pool) == APR_SUCCESS, "patch accepted");
    tap_ok(!wh->active && wh->retry_on_error, "patch changes only active");
    tap_is_str(wh->url, "https://e.com/1", "patch keeps url");
    tap_ok(wh->headers->nelts == 1, "patch keeps headers");
    j = owh_json_parse("{}", 2, &err, pool);
    tap_ok(owh_webhook_apply_json(wh, j, 0, &err, pool) == APR_SUCCESS, "empty patch accepted");
    j = owh_json_parse("{\"headers\":{}}", 14, &err, pool);
    owh_webhook_apply_json(wh, j, 0, &err, pool);
    tap_ok(wh->headers->nelts == 0, "patch headers replaces the set");
    j = owh_json_parse("{\"event\":\"nope\"}", 16, &err, pool);
    tap_ok(owh_webhook_apply_json(wh, j, 0, &err, pool) != APR_SUCCESS, "patch validates event");

    /* display form */
    tap_is_str(owh_url_display("https://user:secret@h.com/p", pool), "https://user:****@h.com/p", "password masked");
    tap_is_str(owh_url_display("https://user@h.com/p", pool), "https://****@h.com/p", "user-only masked");
    tap_is_str(owh_url_display("https://h.com/p@x", pool), "https://h.com/p@x", "@ in the path is not userinfo");
    tap_is_str(owh_url_display("https://h.com/p?q=a:b@c", pool), "https://h.com/p?q=a:b@c", "@ in the query is not userinfo");
    tap_is_str(owh_url_display("https://a:b@c@h.com/", pool), "https://a:****@h.com/", "last @ ends the userinfo");
    tap_is_str(owh_url_display("http://h.com", pool), "http://h.com", "no userinfo unchanged");

    /* capabilities */
    tap_is_str(caps(NULL, OWH_EVENT_BOOKING), "{}", "no header: none");
    tap_is_str(caps("", OWH_EVENT_BOOKING), "{}", "empty header: none");
    tap_is_str(caps("octo/webhooks, octo/pricing", OWH_EVENT_BOOKING), "{\"octo/pricing\"}", "webhooks dropped, trimmed");
    tap_is_str(caps("pricing,offers , octo/pricing", OWH_EVENT_BOOKING), "{\"octo/pricing\",\"octo/offers\"}", "short names prefixed, de-duplicated");
    tap_is_str(caps(" , ,webhooks", OWH_EVENT_BOOKING), "{}", "empty items skipped, short webhooks dropped");
    tap_is_str(caps("octo/pricing", OWH_EVENT_ORDER), "{\"octo/pricing\",\"octo/cart\"}", "order gets octo/cart");
    tap_is_str(caps("cart,pricing", OWH_EVENT_ORDER), "{\"octo/cart\",\"octo/pricing\"}", "octo/cart not doubled");
    tap_is_str(caps(NULL, OWH_EVENT_ORDER), "{\"octo/cart\"}", "order without header still gets octo/cart");
    tap_is_str(caps("vendor/thing", OWH_EVENT_PRODUCT), "{\"vendor/thing\"}", "other prefixes kept");
    tap_is_str(caps("octo/pri\"cing", OWH_EVENT_BOOKING), "ERROR", "quote in a capability refused");
    tap_is_str(caps("a b", OWH_EVENT_BOOKING), "ERROR", "space inside a capability refused");

    /* storage encodings */
    tap_ok(owh_store_array_parse(&a, "{octo/pricing,\"octo/cart\"}", pool) == APR_SUCCESS && a->nelts == 2
           && !strcmp(APR_ARRAY_IDX(a, 1, const char *), "octo/cart"), "text[] with mixed quoting");
    tap_ok(owh_store_array_parse(&a, "{}", pool) == APR_SUCCESS && a->nelts == 0, "empty text[]");
    tap_ok(owh_store_array_parse(&a, "{\"a\\\"b\"}", pool) == APR_SUCCESS
           && !strcmp(APR_ARRAY_IDX(a, 0, const char *), "a\"b"), "escaped quote in text[]");
    tap_ok(owh_store_array_parse(&a, "{a", pool) != APR_SUCCESS, "unterminated text[] refused");
    tap_ok(owh_headers_from_json_text(&a, "{\"X-A\": \"1\", \"B\": \"\"}", pool) == APR_SUCCESS && a->nelts == 2,
           "headers from jsonb text");
    tap_ok(owh_headers_from_json_text(&a, "{\"X\": 1}", pool) != APR_SUCCESS, "non-string header in storage refused");
    s = owh_headers_to_json_text(a, pool);
    tap_ok(s != NULL, "headers to json text");

    /* the Webhook object */
    err = apply(&wh, "{\"event\":\"order.updated\",\"url\":\"https://u:pw@e.com/x\",\"headers\":{\"X\":\"v\"}}", 1);
    wh->id = "0f0e8e1c-4b36-4b3e-9b8f-1234567890ab";
    owh_capabilities_parse(&wh->capabilities, "pricing", wh->event_type, &err, pool);
    s = owh_json_dump(owh_webhook_to_json(wh, pool), &len, pool);
    tap_is_str(s, "{\"id\":\"0f0e8e1c-4b36-4b3e-9b8f-1234567890ab\",\"event\":\"order.updated\","
                  "\"url\":\"https://u:****@e.com/x\",\"active\":true,\"retryOnError\":true,"
                  "\"useContactLanguage\":true,\"headers\":{\"X\":\"v\"},"
                  "\"capabilities\":[\"octo/pricing\",\"octo/cart\"]}", "Webhook object, keys in order, url masked");

    /* uuids and hashes */
    tap_ok(owh_uuid_valid("0f0e8e1c-4b36-4b3e-9b8f-1234567890AB"), "uuid");
    tap_ok(!owh_uuid_valid("0f0e8e1c-4b36-4b3e-9b8f-1234567890a"), "short uuid");
    tap_ok(!owh_uuid_valid("0f0e8e1c-4b36-4b3e-9b8f_1234567890ab"), "uuid with _");
    tap_ok(!owh_uuid_valid("' OR 1=1 --"), "injection is not a uuid");
    tap_is_str(owh_crypto_sha256_hex("abc", 3, pool),
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256(abc)");

    /* payloads; each octo body also built from its parts as the dispatcher
     * does (a webhook's head, the supplier's text, the event's tail): the
     * same bytes, so signatures and receivers cannot tell */
#define SAME_FROM(desc, sup) do { const char *fb_; apr_size_t fl_ = 0; \
        tap_ok(owh_payload_build_from(&fb_, &fl_, owh_payload_head(pw, pool), owh_payload_supplier_text(sup, pool), \
                                      view, pool) == APR_SUCCESS && fl_ == len && !strcmp(fb_, body), desc); } while (0)
    {
        owh_webhook_t *pw;
        owh_event_view_t *view;
        const char *body;
        json_t *sup = owh_json_pool_own(json_pack("{s:s}", "name", "S"), pool), *pj;
        tap_ok(owh_payload_webhook_parse(&pw, "{\"id\":\"x\",\"event\":\"booking.updated\",\"url\":\"https://u:p@h/\","
               "\"url_display\":\"https://u:****@h/\",\"active\":true,\"retryOnError\":false,\"useContactLanguage\":true,"
               "\"headers\":{\"A\":\"1\"},\"capabilities\":[\"octo/pricing\"]}", pool) == APR_SUCCESS, "snapshot parsed");
        tap_ok(!pw->retry_on_error && pw->headers->nelts == 1 && pw->capabilities->nelts == 1, "snapshot fields");
        tap_is_str(pw->url, "https://u:p@h/", "snapshot keeps credentials for sending");
        tap_ok(owh_payload_view_make(&view, "booking_update", "7", "2026-01-01T00:00:00Z",
                                     "{\"uuid\":\"b1\",\"status\":\"CONFIRMED\",\"cardPayment\":{\"s\":1},"
                                     "\"contact\":{\"locales\":[\"de-AT\",\"en\"]}}",
                                     "{\"uuid\":\"b1\",\"status\":\"ON_HOLD\",\"contact\":{\"locales\":[\"de-AT\",\"en\"]}}",
                                     NULL, pool) == APR_SUCCESS, "booking view made");
        tap_ok(owh_payload_build(&body, &len, pw, view, sup, pool) == APR_SUCCESS, "booking payload built");
        SAME_FROM("booking: the body from its parts is byte for byte the same", sup);
        pj = owh_json_pool_own(json_loads(body, 0, NULL), pool);
        tap_is_str(json_string_value(json_object_get(pj, "event")), "booking.updated", "payload event is the webhook's spelling");
        tap_is_str(json_string_value(json_object_get(json_object_get(pj, "webhook"), "url")), "https://u:****@h/", "payload webhook url masked");
        tap_is_str(json_string_value(json_object_get(json_object_get(pj, "booking"), "uuid")), "b1", "payload booking");
        tap_ok(!json_object_get(json_object_get(pj, "booking"), "cardPayment"), "cardPayment stripped");
        tap_is_str(owh_json_dump(json_object_get(pj, "diff"), &len, pool),
                   "[{\"op\":\"replace\",\"path\":\"/status\",\"was\":\"ON_HOLD\",\"value\":\"CONFIRMED\"}]",
                   "diff from the previous state");
        tap_is_str(view->language, "de-AT", "language: the contact's first locale");
        tap_is_str(json_string_value(json_object_get(json_object_get(pj, "supplier"), "name")), "S", "supplier");
        owh_payload_view_make(&view, "booking_update", "8", "t", "{\"uuid\":\"b2\"}", NULL, "fr", pool);
        owh_payload_build(&body, &len, pw, view, sup, pool);
        SAME_FROM("a first event (diff []): the same from its parts", sup);
        owh_payload_build(&body, &len, pw, view, NULL, pool);
        SAME_FROM("no supplier ({}): the same from its parts", NULL);
        pj = owh_json_pool_own(json_loads(body, 0, NULL), pool);
        tap_ok(json_is_array(json_object_get(pj, "diff")) && json_array_size(json_object_get(pj, "diff")) == 0,
               "first event: diff []");
        tap_is_str(view->language, "fr", "language: the event's own first");
        owh_payload_view_make(&view, "booking_update", "9", "t", "{\"uuid\":\"b2\"}", NULL, "fr\r\nX: y", pool);
        tap_ok(view->language == NULL, "a language that is not a tag is dropped");
        owh_payload_view_make(&view, "order_update", "10", "t",
                              "{\"id\":\"o\",\"bookings\":[{\"contact\":{\"locales\":[\"es\"]}}]}", NULL, NULL, pool);
        tap_is_str(view->language, "es", "order: the first booking's contact locale");
        owh_payload_view_make(&view, "availability_update", "11", "t",
                              "{\"id\":\"a1\",\"productId\":\"p\",\"optionId\":\"o\","
                              "\"localDateTimeStart\":\"2026-03-01T09:00:00-08:00\"}", "{\"id\":\"a1\"}", NULL, pool);
        owh_payload_build(&body, &len, pw, view, NULL, pool);
        SAME_FROM("availability (productId, optionId on top, no diff): the same from its parts", NULL);
        pj = owh_json_pool_own(json_loads(body, 0, NULL), pool);
        tap_ok(!json_object_get(pj, "diff"), "availability has no diff");
        tap_is_str(json_string_value(json_object_get(pj, "productId")), "p", "availability productId on top");
        tap_is_str(json_string_value(json_object_get(pj, "optionId")), "o", "availability optionId on top");
        tap_ok(json_is_object(json_object_get(pj, "supplier")), "supplier {} by default");
        owh_payload_view_make(&view, "product_update", "14", "t",
                              "{\"id\":\"p\\\"q\",\"name\":\"Caf\u00e9 \\u2028 <b>\",\"n\":[1,2.5,null,true]}",
                              "{\"id\":\"p\\\"q\",\"name\":\"old\"}", NULL, pool);
        owh_payload_build(&body, &len, pw, view, sup, pool);
        SAME_FROM("a product with quotes, non-ASCII and numbers: the same from its parts", sup);
        tap_ok(owh_payload_view_make(&view, "booking_update", "1", "t", "[1]", NULL, NULL, pool) != APR_SUCCESS,
               "non-object refused");
        /* the notifications dialect */
        tap_ok(owh_payload_webhook_parse(&pw, "{\"id\":\"s1\",\"event\":\"notifications\",\"url\":\"https://h/\","
               "\"dialect\":\"notifications\",\"notificationTypes\":[\"AVAILABILITY_UPDATE\"]}", pool) == APR_SUCCESS
               && pw->dialect == OWH_DIALECT_NOTIFICATIONS, "subscription snapshot parsed");
        owh_payload_view_make(&view, "availability_update", "11", "2026-01-01T00:00:00Z",
                              "{\"id\":\"a1\",\"productId\":\"42\",\"localDateTimeStart\":\"2025-01-15T09:00:00+01:00\","
                              "\"localDateTimeEnd\":\"2025-01-20T10:00:00+01:00\"}", NULL, NULL, pool);
        owh_payload_build(&body, &len, pw, view, sup, pool);
        tap_is_str(body, "{\"type\":\"AVAILABILITY_UPDATE\",\"subscriptionId\":\"s1\",\"eventId\":\"11\","
                   "\"createdAt\":\"2026-01-01T00:00:00Z\",\"payload\":{\"productId\":\"42\","
                   "\"localDateStart\":\"2025-01-15\",\"localDateEnd\":\"2025-01-20\"}}", "AVAILABILITY_UPDATE envelope");
        owh_payload_view_make(&view, "booking_update", "12", "T", "{\"uuid\":\"b9\",\"status\":\"X\"}", NULL, NULL, pool);
        owh_payload_build(&body, &len, pw, view, sup, pool);
        tap_is_str(body, "{\"type\":\"BOOKING_UPDATE\",\"subscriptionId\":\"s1\",\"eventId\":\"12\",\"createdAt\":\"T\","
                   "\"payload\":{\"uuid\":\"b9\"}}", "BOOKING_UPDATE is thin");
        owh_payload_view_make(&view, "product_update", "13", "T", "{\"id\":\"42\",\"name\":\"n\"}", NULL, NULL, pool);
        owh_payload_build(&body, &len, pw, view, sup, pool);
        tap_is_str(body, "{\"type\":\"PRODUCT_UPDATE\",\"subscriptionId\":\"s1\",\"eventId\":\"13\",\"createdAt\":\"T\","
                   "\"payload\":{\"productId\":\"42\"}}", "PRODUCT_UPDATE is thin");
    }

    /* subscriptions (seed 003) */
    {
        owh_webhook_t *sw = owh_subscription_make(pool);
        json_t *b = owh_json_pool_own(json_loads("{\"url\":\"https://e/x\",\"notificationTypes\":"
                                                 "[\"booking_update\",\"Product_Update\",\"BOOKING_UPDATE\"]}", 0, NULL), pool);
        tap_ok(owh_subscription_apply_json(sw, b, 1, &err, pool) == APR_SUCCESS, "subscription parsed");
        tap_is_str(owh_json_dump(owh_json_pool_own(owh_subscription_types_json(sw), pool), &len, pool),
                   "[\"BOOKING_UPDATE\",\"PRODUCT_UPDATE\"]", "types: any case in, uppercase out, de-duplicated");
        b = owh_json_pool_own(json_loads("{\"url\":\"https://e/x\",\"notificationTypes\":[\"ORDER_UPDATE\"]}", 0, NULL), pool);
        tap_ok(owh_subscription_apply_json(owh_subscription_make(pool), b, 1, &err, pool) == APR_EINVAL
               && strstr(err, "notificationTypes[0]"), "ORDER_UPDATE is not a notification type");
        b = owh_json_pool_own(json_loads("{\"url\":\"https://e/x\",\"notificationTypes\":[]}", 0, NULL), pool);
        tap_ok(owh_subscription_apply_json(owh_subscription_make(pool), b, 1, &err, pool) == APR_EINVAL, "empty types refused");
        b = owh_json_pool_own(json_loads("{\"url\":\"https://e/x\"}", 0, NULL), pool);
        tap_ok(owh_subscription_apply_json(owh_subscription_make(pool), b, 1, &err, pool) == APR_EINVAL
               && strstr(err, "notificationTypes is required"), "types required on create");
        tap_ok(owh_subscription_apply_json(sw, b, 0, &err, pool) == APR_SUCCESS && sw->types->nelts == 2,
               "PATCH without types keeps them");
    }

    /* trigger objects */
    {
        json_t *body = owh_json_pool_own(json_pack("{s:s, s:s, s:[s,s], s:s}", "productId", "p1", "reference", "R1",
                                                   "availabilityIds", "2026-05-14T09:00:00-04:00", "2026-05-15T09:00:00-04:00",
                                                   "mobile", "+1202"), pool);
        json_t *objs = owh_trigger_objects(OWH_EVENT_BOOKING, body, &err, pool);
        tap_ok(objs && json_array_size(objs) == 1, "booking trigger: one object");
        tap_is_str(json_string_value(json_object_get(json_array_get(objs, 0), "supplierReference")), "R1", "reference used");
        tap_ok(owh_uuid_valid(json_string_value(json_object_get(json_array_get(objs, 0), "uuid"))), "booking uuid made");
        objs = owh_trigger_objects(OWH_EVENT_AVAILABILITY, body, &err, pool);
        tap_ok(objs && json_array_size(objs) == 2, "availability trigger: one per id");
        objs = owh_trigger_objects(OWH_EVENT_ORDER, body, &err, pool);
        tap_ok(objs && json_is_array(json_object_get(json_array_get(objs, 0), "bookings")), "order with bookings");
        tap_ok(owh_trigger_objects(OWH_EVENT_PRODUCT, NULL, &err, pool) == NULL, "product trigger needs productId");
        tap_ok(owh_trigger_objects(OWH_EVENT_AVAILABILITY, NULL, &err, pool) == NULL, "availability trigger needs ids");
        body = owh_json_pool_own(json_pack("{s:i}", "productId", 5), pool);
        tap_ok(owh_trigger_objects(OWH_EVENT_PRODUCT, body, &err, pool) == NULL, "productId must be a string");
    }

    apr_pool_destroy(pool);
    apr_terminate();
    return tap_done();
}
