/* owh_store_tokens.c — token lookup by SHA-256, through the per-child cache:
 * a token seen in the last second answers without a round trip, so a
 * revocation takes effect within TOKEN_TTL. The cache's memory is bounded
 * (it starts over after TOKEN_CACHE_MAX allocations). */
#include <apr_strings.h>

#include "owh_store_int.h"
#include "owh_store_array.h"

#define TOKEN_TTL      apr_time_from_sec(1)
#define TOKEN_CACHE_MAX 4096            /* entries made; the cache starts over beyond */

typedef struct token_entry_t {
    apr_time_t at;
    const char *connection;             /* NULL: no such token (cached too) */
    const char *abilities;              /* text[] literal */
} token_entry_t;

/* ---- auth ---------------------------------------------------------------- */
/* A fresh cached answer for hash_hex (1: found in the cache). */
static int token_cached(owh_store_t *st, const char *hash_hex, const char **pconnection,
                        const char **pabilities, apr_pool_t *p)
{
    token_entry_t *e;
    int hit = 0;
    if (!st || apr_thread_mutex_lock(st->tokens_lock) != APR_SUCCESS) return 0;
    e = apr_hash_get(st->tokens, hash_hex, APR_HASH_KEY_STRING);
    if (e && apr_time_now() - e->at < TOKEN_TTL) {
        *pconnection = e->connection ? apr_pstrdup(p, e->connection) : NULL;
        *pabilities = e->abilities ? apr_pstrdup(p, e->abilities) : NULL;
        hit = 1;
    }
    apr_thread_mutex_unlock(st->tokens_lock);
    return hit;
}

static int same_text(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static void token_remember(owh_store_t *st, const char *hash_hex, const char *connection,
                           const char *abilities)
{
    token_entry_t *e;
    if (!st || apr_thread_mutex_lock(st->tokens_lock) != APR_SUCCESS) return;
    e = apr_hash_get(st->tokens, hash_hex, APR_HASH_KEY_STRING);
    if (e && same_text(e->connection, connection) && same_text(e->abilities, abilities)) {
        e->at = apr_time_now();         /* the usual refresh: nothing allocated */
        apr_thread_mutex_unlock(st->tokens_lock);
        return;
    }
    /* Every allocation counts, replacements too: the pool starts over after
     * TOKEN_CACHE_MAX of them, so a busy child's cache memory stays bounded. */
    if (++st->tokens_made > TOKEN_CACHE_MAX) {
        apr_pool_clear(st->tokens_pool);
        st->tokens = apr_hash_make(st->tokens_pool);
        st->tokens_made = 1;
    }
    e = apr_pcalloc(st->tokens_pool, sizeof(*e));
    e->at = apr_time_now();
    e->connection = connection ? apr_pstrdup(st->tokens_pool, connection) : NULL;
    e->abilities = abilities ? apr_pstrdup(st->tokens_pool, abilities) : NULL;
    apr_hash_set(st->tokens, apr_pstrdup(st->tokens_pool, hash_hex), APR_HASH_KEY_STRING, e);
    apr_thread_mutex_unlock(st->tokens_lock);
}

apr_status_t owh_store_token_lookup(owh_db_t *db, const char *hash_hex, const char **pconnection,
                                    apr_array_header_t **pabilities, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { hash_hex };
    const char *connection = NULL, *abilities = NULL;
    apr_status_t rv;

    if (!token_cached(db->store, hash_hex, &connection, &abilities, p)) {
        rv = owh_store_query_prepared(&res, db, p,
            "SELECT connection_id, abilities FROM octo_webhooks.tokens"
            " WHERE token_hash = decode($1, 'hex') AND revoked_at IS NULL", 1, args);
        if (rv != APR_SUCCESS) return rv;
        if (PQntuples(res) == 1) {
            connection = apr_pstrdup(p, owh_store_value(res, 0, "connection_id"));
            abilities = apr_pstrdup(p, owh_store_value(res, 0, "abilities"));
        }
        owh_store_clear(res, p);
        token_remember(db->store, hash_hex, connection, abilities);
    }
    if (!connection || !abilities) return APR_NOTFOUND;
    *pconnection = connection;
    return owh_store_array_parse(pabilities, abilities, p);
}
