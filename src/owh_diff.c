/* owh_diff.c — diff[] of two JSON states, and cardPayment stripping. See
 * owh_diff.h. Recursion depth is bounded by jansson's parser depth limit. */
#include <apr_strings.h>

#include "owh_diff.h"
#include "owh_json.h"

const char *owh_diff_escape(const char *token, apr_pool_t *p)
{
    const char *s;
    char *out, *o;
    apr_size_t extra = 0;
    for (s = token; *s; ++s) extra += (*s == '~' || *s == '/');
    if (!extra) return token;
    o = out = apr_palloc(p, strlen(token) + extra + 1);
    for (s = token; *s; ++s) {
        if (*s == '~') { *o++ = '~'; *o++ = '0'; }
        else if (*s == '/') { *o++ = '~'; *o++ = '1'; }
        else *o++ = *s;
    }
    *o = '\0';
    return out;
}

static void push_op(json_t *ops, const char *op, const char *path, const json_t *was, const json_t *now)
{
    json_t *o = json_object();
    json_object_set_new(o, "op", json_string(op));
    json_object_set_new(o, "path", json_string(path));
    if (was) json_object_set_new(o, "was", json_deep_copy(was));
    if (now) json_object_set_new(o, "value", json_deep_copy(now));
    json_array_append_new(ops, o);
}

static void diff_value(json_t *ops, const char *path, const json_t *was, const json_t *now, apr_pool_t *p);

static void diff_object(json_t *ops, const char *path, const json_t *was, const json_t *now, apr_pool_t *p)
{
    const char *key;
    json_t *v;
    /* Changes and removals in the previous state's key order, then additions
     * in the current one's. */
    json_object_foreach((json_t *)was, key, v) {
        const char *sub = apr_pstrcat(p, path, "/", owh_diff_escape(key, p), NULL);
        const json_t *nv = json_object_get(now, key);
        if (!nv) push_op(ops, "remove", sub, v, NULL);
        else diff_value(ops, sub, v, nv, p);
    }
    json_object_foreach((json_t *)now, key, v)
        if (!json_object_get(was, key))
            push_op(ops, "add", apr_pstrcat(p, path, "/", owh_diff_escape(key, p), NULL), NULL, v);
}

static void diff_array(json_t *ops, const char *path, const json_t *was, const json_t *now, apr_pool_t *p)
{
    size_t nw = json_array_size(was), nn = json_array_size(now), i, common = nw < nn ? nw : nn;
    for (i = 0; i < common; ++i)
        diff_value(ops, apr_psprintf(p, "%s/%" APR_SIZE_T_FMT, path, i), json_array_get(was, i),
                   json_array_get(now, i), p);
    for (i = common; i < nn; ++i)
        push_op(ops, "add", apr_psprintf(p, "%s/%" APR_SIZE_T_FMT, path, i), NULL, json_array_get(now, i));
    /* highest index first, so each removal leaves the next one's index valid */
    for (i = nw; i > common; --i)
        push_op(ops, "remove", apr_psprintf(p, "%s/%" APR_SIZE_T_FMT, path, i - 1), json_array_get(was, i - 1),
                NULL);
}

static void diff_value(json_t *ops, const char *path, const json_t *was, const json_t *now, apr_pool_t *p)
{
    if (json_is_object(was) && json_is_object(now)) diff_object(ops, path, was, now, p);
    else if (json_is_array(was) && json_is_array(now)) diff_array(ops, path, was, now, p);
    else if (!json_equal((json_t *)was, (json_t *)now)) push_op(ops, "replace", path, was, now);
}

json_t *owh_diff(const json_t *was, const json_t *now, apr_pool_t *p)
{
    json_t *ops = owh_json_pool_own(json_array(), p);
    apr_pool_t *scratch;
    if (!was || !now) return ops;
    if (apr_pool_create(&scratch, p) != APR_SUCCESS) return NULL;
    apr_pool_tag(scratch, "owh_diff_scratch");  /* the paths of unchanged members */
    diff_value(ops, "", was, now, scratch);
    apr_pool_destroy(scratch);
    return ops;
}

int owh_diff_strip_card_payments(json_t *j)
{
    int n = 0;
    size_t i;
    const char *key;
    json_t *v;
    if (json_is_object(j)) {
        if (json_object_get(j, "cardPayment")) {
            json_object_del(j, "cardPayment");
            ++n;
        }
        json_object_foreach(j, key, v) n += owh_diff_strip_card_payments(v);
    }
    else if (json_is_array(j))
        json_array_foreach(j, i, v) n += owh_diff_strip_card_payments(v);
    return n;
}
