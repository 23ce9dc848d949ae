/* Unit tests of diff[] (src/owh_diff.c), TAP output. Each case compares the
 * operations with the expected list, and checks that applying them to the
 * previous state (a small RFC 6902 applier below) gives the current one. */
#include <apr_general.h>
#include <apr_strings.h>

#include "tap.h"
#include "owh_diff.h"
#include "owh_json.h"

/* RFC 6901 token decoding and RFC 6902 add/remove/replace, enough to replay. */
static char *unescape(const char *s, apr_size_t n, apr_pool_t *p)
{
    char *out = apr_palloc(p, n + 1), *o = out;
    apr_size_t i;
    for (i = 0; i < n; ++i) {
        if (s[i] == '~' && i + 1 < n) { *o++ = s[i + 1] == '1' ? '/' : '~'; ++i; }
        else *o++ = s[i];
    }
    *o = '\0';
    return out;
}

static int apply_op(json_t **doc, const json_t *op, apr_pool_t *p)
{
    const char *kind = json_string_value(json_object_get(op, "op"));
    const char *path = json_string_value(json_object_get(op, "path"));
    json_t *value = json_object_get(op, "value"), *parent = *doc;
    const char *slash, *tok;
    if (!*path) {
        if (strcmp(kind, "replace")) return 0;
        json_decref(*doc);
        *doc = json_deep_copy(value);
        return 1;
    }
    for (;;) {
        slash = strchr(path + 1, '/');
        tok = unescape(path + 1, slash ? (apr_size_t)(slash - path - 1) : strlen(path + 1), p);
        if (!slash) break;
        parent = json_is_array(parent) ? json_array_get(parent, atoi(tok)) : json_object_get(parent, tok);
        if (!parent) return 0;
        path = slash;
    }
    if (json_is_array(parent)) {
        size_t i = (size_t)atoi(tok);
        if (!strcmp(kind, "add")) return json_array_insert_new(parent, i, json_deep_copy(value)) == 0;
        if (!strcmp(kind, "remove")) return json_array_remove(parent, i) == 0;
        return json_array_set_new(parent, i, json_deep_copy(value)) == 0;
    }
    if (!strcmp(kind, "remove")) return json_object_del(parent, tok) == 0;
    if (!strcmp(kind, "add") && json_object_get(parent, tok)) return 0;
    return json_object_set_new(parent, tok, json_deep_copy(value)) == 0;
}

static void check(const char *was, const char *now, const char *want, const char *name, apr_pool_t *p)
{
    json_error_t e;
    json_t *jw = was ? json_loads(was, 0, &e) : NULL, *jn = json_loads(now, 0, &e);
    json_t *ops = owh_diff(jw, jn, p), *doc, *op;
    const char *got = json_dumps(ops, JSON_COMPACT | JSON_ENSURE_ASCII);
    size_t i;
    int applied = 1;
    tap_is_str(got, want, name);
    free((void *)got);
    if (jw) {
        doc = json_deep_copy(jw);
        json_array_foreach(ops, i, op) applied = applied && apply_op(&doc, op, p);
        tap_ok(applied && json_equal(doc, jn), apr_pstrcat(p, name, ": replaying the diff gives the new state", NULL));
        json_decref(doc);
    }
    json_decref(jw);
    json_decref(jn);
}

int main(void)
{
    apr_pool_t *p;
    json_error_t e;
    json_t *j;
    const char *s;

    apr_initialize();
    p = tap_pool(NULL, "test_diff");

    check(NULL, "{\"uuid\":\"b1\",\"status\":\"ON_HOLD\"}", "[]", "first event: []", p);
    check("{\"a\":1}", "{\"a\":1}", "[]", "no change: []", p);
    check("{\"uuid\":\"b1\",\"status\":\"ON_HOLD\"}", "{\"uuid\":\"b1\",\"status\":\"CONFIRMED\"}",
          "[{\"op\":\"replace\",\"path\":\"/status\",\"was\":\"ON_HOLD\",\"value\":\"CONFIRMED\"}]",
          "scalar replaced", p);
    check("{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":3}",
          "[{\"op\":\"remove\",\"path\":\"/b\",\"was\":2},{\"op\":\"add\",\"path\":\"/c\",\"value\":3}]",
          "key removed, key added", p);
    check("{\"contact\":{\"fullName\":null,\"locales\":[]}}",
          "{\"contact\":{\"fullName\":\"Ana\",\"locales\":[\"es\"]}}",
          "[{\"op\":\"replace\",\"path\":\"/contact/fullName\",\"was\":null,\"value\":\"Ana\"},"
          "{\"op\":\"add\",\"path\":\"/contact/locales/0\",\"value\":\"es\"}]",
          "nested objects, null to string, array grows", p);
    check("{\"u\":[1,2,3,4]}", "{\"u\":[1,9]}",
          "[{\"op\":\"replace\",\"path\":\"/u/1\",\"was\":2,\"value\":9},"
          "{\"op\":\"remove\",\"path\":\"/u/3\",\"was\":4},{\"op\":\"remove\",\"path\":\"/u/2\",\"was\":3}]",
          "array shrinks: removals highest index first", p);
    check("{\"bookings\":[{\"uuid\":\"x\"},{\"uuid\":\"y\",\"status\":\"ON_HOLD\"}]}",
          "{\"bookings\":[{\"uuid\":\"x\"}]}",
          "[{\"op\":\"remove\",\"path\":\"/bookings/1\",\"was\":{\"uuid\":\"y\",\"status\":\"ON_HOLD\"}}]",
          "a removed booking is an object in was", p);
    check("{\"a\":{\"b\":1}}", "{\"a\":[1]}",
          "[{\"op\":\"replace\",\"path\":\"/a\",\"was\":{\"b\":1},\"value\":[1]}]", "object to array: replace", p);
    check("{\"a\":1}", "{\"a\":\"1\"}",
          "[{\"op\":\"replace\",\"path\":\"/a\",\"was\":1,\"value\":\"1\"}]", "number to string: replace", p);
    check("{\"a\":true}", "{\"a\":false}",
          "[{\"op\":\"replace\",\"path\":\"/a\",\"was\":true,\"value\":false}]", "boolean flip", p);
    check("{\"a/b\":1,\"m~n\":1}", "{\"a/b\":2,\"m~n\":2}",
          "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"was\":1,\"value\":2},"
          "{\"op\":\"replace\",\"path\":\"/m~0n\",\"was\":1,\"value\":2}]", "~0 and ~1 escaping", p);
    check("{\"~/\":1}", "{}", "[{\"op\":\"remove\",\"path\":\"/~0~1\",\"was\":1}]", "escaping order: ~ before /", p);
    check("{\"notes\":\"caf\\u00e9\"}", "{\"notes\":\"\\u65e5\\u672c\",\"\\u00fcber\":1}",
          "[{\"op\":\"replace\",\"path\":\"/notes\",\"was\":\"caf\\u00E9\",\"value\":\"\\u65E5\\u672C\"},"
          "{\"op\":\"add\",\"path\":\"/\\u00FCber\",\"value\":1}]", "unicode values and keys", p);
    check("{\"a\":null}", "{}", "[{\"op\":\"remove\",\"path\":\"/a\",\"was\":null}]", "removing a null keeps was: null", p);
    check("{\"\":1}", "{\"\":2}", "[{\"op\":\"replace\",\"path\":\"/\",\"was\":1,\"value\":2}]", "the empty key", p);
    check("[1]", "{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"was\":[1],\"value\":{\"a\":1}}]",
          "whole document replaced", p);
    check("{\"a\":[[1,2],[3]]}", "{\"a\":[[1],[3,4]]}",
          "[{\"op\":\"remove\",\"path\":\"/a/0/1\",\"was\":2},{\"op\":\"add\",\"path\":\"/a/1/1\",\"value\":4}]",
          "nested arrays", p);
    check("{\"n\":1}", "{\"n\":1.0}", "[{\"op\":\"replace\",\"path\":\"/n\",\"was\":1,\"value\":1.0}]",
          "integer and real differ", p);

    tap_is_str(owh_diff_escape("plain", p), "plain", "escape: plain token unchanged");
    tap_is_str(owh_diff_escape("a~b/c", p), "a~0b~1c", "escape: both");

    j = json_loads("{\"uuid\":\"b\",\"cardPayment\":{\"gateway\":\"x\"},\"bookings\":[{\"cardPayment\":{}}],"
                   "\"pricing\":{\"cardPayment\":1,\"total\":5}}", 0, &e);
    tap_ok(owh_diff_strip_card_payments(j) == 3, "three cardPayment members stripped");
    s = json_dumps(j, JSON_COMPACT);
    tap_is_str(s, "{\"uuid\":\"b\",\"bookings\":[{}],\"pricing\":{\"total\":5}}", "the rest is intact");
    free((void *)s);
    json_decref(j);

    apr_pool_destroy(p);
    apr_terminate();
    return tap_done();
}
