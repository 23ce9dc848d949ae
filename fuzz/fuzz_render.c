/* libFuzzer target, differential: the API's one-pass JSON writer
 * (owh_render_string) against jansson's json_dumps for every valid UTF-8
 * string (a webhook's URL, header names and values and a disabled reason are
 * a reseller's text), and owh_render_compact against jansson for the same
 * string stored as jsonb prints it (`"..."`). Any byte of difference traps.
 * Build and run: fuzz/run. */
#include <apr_general.h>
#include <apr_strings.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "owh_render.h"

typedef struct { char *buf; apr_size_t len, cap; } sink_t;

static void sink_write(void *ctx, const char *s, apr_size_t n)
{
    sink_t *k = ctx;
    if (k->len + n > k->cap) {
        k->cap = (k->len + n) * 2;
        k->buf = realloc(k->buf, k->cap);
        if (!k->buf) abort();
    }
    memcpy(k->buf + k->len, s, n);
    k->len += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_stringn((const char *)data, size);     /* NULL: not valid UTF-8 */
    sink_t k = { NULL, 0, 0 };
    owh_writer_t w = { sink_write, &k };
    char *want;
    if (!j) return 0;
    want = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    owh_render_string(&w, (const char *)data, size);
    if (!want || k.len != strlen(want) || memcmp(k.buf, want, k.len)) __builtin_trap();
    /* jsonb prints a string as JSON text too: compacting it changes nothing */
    if (!memchr(data, 0, size)) {
        sink_t c = { NULL, 0, 0 };
        owh_writer_t wc = { sink_write, &c };
        owh_render_compact(&wc, want);
        if (c.len != k.len || memcmp(c.buf, want, c.len)) __builtin_trap();
        free(c.buf);
    }
    free(want);
    free(k.buf);
    json_decref(j);
    return 0;
}
