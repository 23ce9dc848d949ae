/* owh_store_array.c — PostgreSQL text[] literals ({"octo/pricing","octo/cart"})
 * to and from APR arrays of strings. Part of the store (the core knows no
 * PostgreSQL), but APR-only so it is unit-tested without a server
 * (t/unit/test_store_array.c). */
#include <apr_strings.h>

#include "owh_store_array.h"

const char *owh_store_array_format(const apr_array_header_t *items, apr_pool_t *p)
{
    char *out, *o;
    apr_size_t need = 3;
    int i;
    for (i = 0; items && i < items->nelts; ++i) need += 2 * strlen(APR_ARRAY_IDX(items, i, const char *)) + 3;
    out = o = apr_palloc(p, need);
    *o++ = '{';
    for (i = 0; items && i < items->nelts; ++i) {
        const char *c = APR_ARRAY_IDX(items, i, const char *);
        if (i) *o++ = ',';
        *o++ = '"';
        for (; *c; ++c) {
            if (*c == '"' || *c == '\\') *o++ = '\\';
            *o++ = *c;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

apr_status_t owh_store_array_parse(apr_array_header_t **pitems, const char *lit, apr_pool_t *p)
{
    apr_array_header_t *items = apr_array_make(p, 4, sizeof(const char *));
    const char *c = lit;
    if (!c || *c++ != '{') return APR_EINVAL;
    while (*c && *c != '}') {
        char *buf = apr_palloc(p, strlen(c) + 1), *b = buf;
        if (*c == '"') {
            for (++c; *c && *c != '"'; ++c) {
                if (*c == '\\' && c[1]) ++c;
                *b++ = *c;
            }
            if (*c++ != '"') return APR_EINVAL;
            *b = '\0';
            APR_ARRAY_PUSH(items, const char *) = buf;
        }
        else {
            while (*c && *c != ',' && *c != '}') *b++ = *c++;
            *b = '\0';
            if (strcmp(buf, "NULL")) APR_ARRAY_PUSH(items, const char *) = buf;
        }
        if (*c == ',') ++c;
        else if (*c != '}') return APR_EINVAL;
    }
    if (*c != '}') return APR_EINVAL;
    *pitems = items;
    return APR_SUCCESS;
}

