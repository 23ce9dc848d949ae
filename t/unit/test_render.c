/* Unit test of src/owh_render.c: the one-pass JSON of the API's objects must
 * be what jansson makes of the same object, byte for byte — every string
 * escaped as json_dumps escapes it (all bytes below 0x80, random UTF-8), and
 * whole Webhook and Subscription objects against owh_webhook_to_api_json.
 * TAP. */
#include <stdlib.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "tap.h"
#include "owh_render.h"
#include "owh_webhook.h"
#include "owh_json.h"

static apr_pool_t *pool;

typedef struct { char *s; apr_size_t len, cap; } buf_t;

static void buf_write(void *ctx, const char *s, apr_size_t n)
{
    buf_t *b = ctx;
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static const char *rendered_string(const char *s, apr_size_t n)
{
    buf_t b = { NULL, 0, 0 };
    owh_writer_t w = { buf_write, &b };
    const char *out;
    owh_render_string(&w, s, n);
    out = apr_pstrdup(pool, b.s);
    free(b.s);
    return out;
}

static const char *jansson_string(const char *s, apr_size_t n)
{
    apr_size_t len;
    json_t *j = owh_json_pool_own(json_stringn(s, n), pool);
    return j ? owh_json_dump(j, &len, pool) : "(invalid)";
}

static const char *rendered_webhook(const owh_webhook_t *wh, const char *secret)
{
    buf_t b = { NULL, 0, 0 };
    owh_writer_t w = { buf_write, &b };
    const char *out;
    owh_render_webhook(&w, wh, secret, pool);
    out = apr_pstrdup(pool, b.s);
    free(b.s);
    return out;
}

static const char *jansson_webhook(const owh_webhook_t *wh, const char *secret)
{
    apr_size_t len;
    json_t *o = owh_webhook_to_api_json(wh, pool);
    if (secret) json_object_set_new(o, "secret", json_string(secret));
    return owh_json_dump(o, &len, pool);
}

/* n random bytes of valid UTF-8 (1- to 4-byte sequences, controls included) */
static apr_size_t random_utf8(char *out, int chars)
{
    apr_size_t n = 0;
    int i;
    for (i = 0; i < chars; ++i) {
        unsigned cp;
        switch (rand() % 4) {
        case 0: cp = (unsigned)(rand() % 0x80); if (!cp) cp = 1; break;
        case 1: cp = 0x80 + (unsigned)(rand() % (0x800 - 0x80)); break;
        case 2: do cp = 0x800 + (unsigned)(rand() % (0x10000 - 0x800)); while (cp >= 0xD800 && cp <= 0xDFFF); break;
        default: cp = 0x10000 + (unsigned)(rand() % (0x110000 - 0x10000)); break;
        }
        if (cp < 0x80) out[n++] = (char)cp;
        else if (cp < 0x800) { out[n++] = (char)(0xC0 | cp >> 6); out[n++] = (char)(0x80 | (cp & 63)); }
        else if (cp < 0x10000) {
            out[n++] = (char)(0xE0 | cp >> 12); out[n++] = (char)(0x80 | (cp >> 6 & 63));
            out[n++] = (char)(0x80 | (cp & 63));
        }
        else {
            out[n++] = (char)(0xF0 | cp >> 18); out[n++] = (char)(0x80 | (cp >> 12 & 63));
            out[n++] = (char)(0x80 | (cp >> 6 & 63)); out[n++] = (char)(0x80 | (cp & 63));
        }
    }
    return n;
}

static owh_webhook_t *sample(const char *url)
{
    owh_webhook_t *wh = owh_webhook_make(pool);
    owh_header_t *h;
    wh->id = "0b7e1c52-4f0e-4a57-9d0e-6f5a1c3e2d10";
    wh->event = "booking.updated";
    wh->event_type = OWH_EVENT_BOOKING;
    wh->url = url;
    wh->retry_on_error = 0;
    h = &APR_ARRAY_PUSH(wh->headers, owh_header_t);
    h->name = "X-Api-Key";
    h->value = "a \"quoted\" \\ value\twith\x01 control";
    h = &APR_ARRAY_PUSH(wh->headers, owh_header_t);
    h->name = "X-Second";
    h->value = "\xc3\xa9t\xc3\xa9 \xe2\x80\xa8";
    APR_ARRAY_PUSH(wh->capabilities, const char *) = "octo/pricing";
    APR_ARRAY_PUSH(wh->capabilities, const char *) = "octo/cart";
    return wh;
}

int main(void)
{
    char raw[512];
    int i, same = 1;
    owh_webhook_t *wh;

    apr_app_initialize(NULL, NULL, NULL);
    pool = tap_pool(NULL, "test_render");
    srand(20261126);

    /* every byte below 0x80 alone, and inside text */
    for (i = 1; i < 0x80 && same; ++i) {
        char c[4] = { 'a', (char)i, 'b', 0 };
        if (strcmp(rendered_string(c, 3), jansson_string(c, 3))) {
            same = 0;
            printf("# byte 0x%02x: rendered %s, jansson %s\n", i, rendered_string(c, 3), jansson_string(c, 3));
        }
    }
    tap_ok(same, "every byte below 0x80 is escaped as jansson escapes it");
    tap_is_str(rendered_string("", 0), "\"\"", "the empty string");
    for (i = 0, same = 1; i < 2000 && same; ++i) {
        apr_size_t n = random_utf8(raw, 1 + rand() % 100);
        if (strcmp(rendered_string(raw, n), jansson_string(raw, n))) {
            same = 0;
            printf("# rendered %s\n# jansson  %s\n", rendered_string(raw, n), jansson_string(raw, n));
        }
    }
    tap_ok(same, "2,000 random UTF-8 strings (controls included) render as jansson's");

    wh = sample("https://user:secret@hooks.example.com/path?q=1");
    tap_is_str(rendered_webhook(wh, NULL), jansson_webhook(wh, NULL),
               "a webhook with headers, capabilities, credentials in its url: as owh_webhook_to_api_json");
    tap_ok(!strstr(rendered_webhook(wh, NULL), "secret@"), "the url's password is masked");
    wh->disabled_reason = "410 Gone";
    wh->disabled_at = "2026-11-26T01:02:03Z";
    wh->has_secret = 1;
    wh->active = 0;
    tap_is_str(rendered_webhook(wh, "whsec_abc"), jansson_webhook(wh, "whsec_abc"),
               "disabled, signed, with the create's secret");
    wh = owh_webhook_make(pool);
    wh->event = "order_update";
    tap_is_str(rendered_webhook(wh, NULL), jansson_webhook(wh, NULL), "a webhook not stored yet (id null, no url)");

    wh = owh_subscription_make(pool);
    wh->id = "0b7e1c52-4f0e-4a57-9d0e-6f5a1c3e2d11";
    wh->url = "https://only-user@hooks.example.com/";
    wh->types = apr_array_make(pool, 2, sizeof(owh_event_e));
    APR_ARRAY_PUSH(wh->types, owh_event_e) = OWH_EVENT_PRODUCT;
    APR_ARRAY_PUSH(wh->types, owh_event_e) = OWH_EVENT_BOOKING;
    tap_is_str(rendered_webhook(wh, NULL), jansson_webhook(wh, NULL), "a subscription");

    /* headers as PostgreSQL's jsonb text gives them back: spaces dropped, strings untouched */
    wh = sample("https://hooks.example.com/");
    {
        const char *want = jansson_webhook(wh, NULL);
        wh->headers_text = "{\"X-Second\": \"\xc3\xa9t\xc3\xa9 \xe2\x80\xa8\", "
                           "\"X-Api-Key\": \"a \\\"quoted\\\" \\\\ value\\twith\\u0001 control\"}";
        wh->headers = NULL;
        tap_ok(strstr(rendered_webhook(wh, NULL), "\"headers\":{\"X-Second\":\"\xc3\xa9t\xc3\xa9 \xe2\x80\xa8\","
                      "\"X-Api-Key\":\"a \\\"quoted\\\" \\\\ value\\twith\\u0001 control\"}") != NULL,
               "stored headers text: compact, spaces inside strings kept");
        (void)want;
        wh->headers_text = "{}";
        tap_ok(strstr(rendered_webhook(wh, NULL), "\"headers\":{},") != NULL, "no headers");
    }
    apr_pool_destroy(pool);     /* the pool-owned json_t go with it (LeakSanitizer checks) */
    apr_terminate();
    return tap_done();
}
