/* owh_request.c — pure parsing of the HTTP surface. See owh_request.h. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <string.h>

#include "owh_request.h"
#include "owh_webhook.h"

#define TOKEN_MAX 512

const char *owh_request_base(const char *uri, const apr_array_header_t *bases, const char *fallback)
{
    const char *best = NULL;
    apr_size_t best_len = 0;
    int i;
    for (i = 0; bases && i < bases->nelts; ++i) {
        const char *b = APR_ARRAY_IDX(bases, i, const char *);
        apr_size_t n = strlen(b);
        if (!strncmp(uri, b, n) && (uri[n] == '\0' || uri[n] == '/') && (!best || n > best_len)) {
            best = b;
            best_len = n;
        }
    }
    if (best) return best;
    if (fallback && fallback[0] && fallback[1] && !strncmp(uri, fallback, strlen(fallback))) return fallback;
    return "";
}

/* Matches path ("webhooks/123") against a pattern such as "webhooks/{id}". */
static int route_match(const char *pattern, const char *path, const char **ids, apr_pool_t *p)
{
    while (*pattern) {
        int which = !strncmp(pattern, "{id}", 4) ? 0 : !strncmp(pattern, "{sub}", 5) ? 1 : -1;
        if (which >= 0) {
            const char *end = strchr(path, '/');
            apr_size_t n = end ? (apr_size_t)(end - path) : strlen(path);
            if (n == 0 || n > 64) return 0;
            ids[which] = apr_pstrndup(p, path, n);
            path += n;
            pattern += which ? 5 : 4;
            continue;
        }
        if (*pattern != *path) return 0;
        ++pattern;
        ++path;
    }
    return *path == '\0';
}

int owh_request_route(const char *uri, const char *base, const char *const *patterns, const char **ids,
                      apr_pool_t *p)
{
    apr_size_t n = strlen(base);
    char *rel;
    int i;
    if (strncmp(uri, base, n) || (uri[n] && uri[n] != '/')) return -1;
    uri += n;
    while (*uri == '/') ++uri;
    rel = apr_pstrdup(p, uri);
    n = strlen(rel);
    if (n && rel[n - 1] == '/') rel[n - 1] = '\0';
    for (i = 0; patterns[i]; ++i)
        if (route_match(patterns[i], rel, ids, p)) return i;
    return -1;
}

const char *owh_request_bearer(const char *h)
{
    const char *t;
    apr_size_t n;
    if (!h || strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\t')) return NULL;
    for (t = h + 6; *t == ' ' || *t == '\t'; ++t) ;
    /* RFC 6750 b64token characters only; anything else cannot be ours. */
    for (n = 0; t[n]; ++n) {
        unsigned char c = (unsigned char)t[n];
        if (!(apr_isalnum(c) || strchr("-._~+/=", c))) return NULL;
        if (n >= TOKEN_MAX) return NULL;
    }
    return n ? t : NULL;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void unescape(char *s)
{
    char *out = s;
    for (; *s; ++s) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *out++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        }
        else *out++ = *s;
    }
    *out = '\0';
}

apr_table_t *owh_request_args(const char *query, apr_pool_t *p)
{
    apr_table_t *t = apr_table_make(p, 4);
    char *copy, *pair, *state;
    if (!query) return t;
    copy = apr_pstrdup(p, query);
    for (pair = apr_strtok(copy, "&", &state); pair; pair = apr_strtok(NULL, "&", &state)) {
        char *value = strchr(pair, '=');
        if (value) *value++ = '\0';
        else value = apr_pstrdup(p, "1");
        unescape(pair);
        unescape(value);
        apr_table_set(t, pair, value);
    }
    return t;
}

const char *owh_request_list_params(const apr_table_t *args, const char **pstatus, int *plimit,
                                    const char **pcursor)
{
    const char *status = apr_table_get(args, "status"), *cursor = apr_table_get(args, "cursor");
    const char *limit_s = apr_table_get(args, "limit");
    *plimit = 20;
    if (status && strcmp(status, "pending") && strcmp(status, "succeeded") && strcmp(status, "failed"))
        return "status must be pending, succeeded or failed";
    if (limit_s) {
        char *end;
        apr_int64_t n = apr_strtoi64(limit_s, &end, 10);
        if (!*limit_s || *end || n < 1 || n > 100) return "limit must be a whole number from 1 to 100";
        *plimit = (int)n;
    }
    if (cursor && !owh_uuid_valid(cursor)) return "cursor is not one this API gave";
    *pstatus = status;
    *pcursor = cursor;
    return NULL;
}

const char *owh_request_trim(const char *value, apr_pool_t *p)
{
    apr_size_t n;
    while (apr_isspace(*value)) ++value;
    for (n = strlen(value); n && apr_isspace(value[n - 1]); --n) ;
    return apr_pstrndup(p, value, n);
}
