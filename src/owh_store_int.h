/* owh_store_int.h — the store's own state, shared by owh_store.c (the pool,
 * queries) and owh_store_tokens.c (the per-child token cache). Private to
 * owh_store*.c. */
#ifndef OWH_STORE_INT_H
#define OWH_STORE_INT_H

#include <apr_reslist.h>
#include <apr_thread_mutex.h>
#include <apr_hash.h>

#include "owh_store.h"

struct owh_store_t {
    apr_pool_t *pool;
    owh_store_params_t params;
    apr_reslist_t *reslist;
    volatile int migrated;          /* this process saw the schema current */
    int closing;                    /* the child is exiting: its connections all go */
    /* Tokens looked up in the last second, by SHA-256 (never the token):
     * one round trip less per request; a revocation takes effect within
     * TOKEN_TTL. Shared by the child's threads. */
    apr_thread_mutex_t *tokens_lock;
    apr_pool_t *tokens_pool;
    apr_hash_t *tokens;
    int tokens_made;                /* entries allocated since tokens_pool was cleared */
};

#endif
