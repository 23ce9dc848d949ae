/* owh_listcache.c — the cache of rendered lists and the host's generation
 * (see owh_listcache.h). */
#include <apr_shm.h>
#include <apr_atomic.h>
#include <apr_allocator.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <stdlib.h>
#include <string.h>

#include "owh_listcache.h"

typedef struct shared_t {
    volatile apr_uint64_t generation;
} shared_t;

static shared_t *shared;
static const char *const USERDATA_KEY = "owh_listcache_shm";

apr_status_t owh_listcache_init(apr_pool_t *process_pool)
{
    apr_shm_t *shm = NULL;
    void *kept = NULL;
    apr_status_t rv;

    apr_pool_userdata_get(&kept, USERDATA_KEY, process_pool);
    if (kept) {                                 /* graceful restart: same segment */
        shared = apr_shm_baseaddr_get(kept);
        apr_atomic_inc64(&shared->generation);  /* the new children start afresh anyway */
        return APR_SUCCESS;
    }
    if ((rv = apr_shm_create(&shm, sizeof(shared_t), NULL, process_pool)) != APR_SUCCESS) return rv;
    shared = apr_shm_baseaddr_get(shm);
    apr_atomic_set64(&shared->generation, 1);
    apr_pool_userdata_set(shm, USERDATA_KEY, apr_pool_cleanup_null, process_pool);
    return APR_SUCCESS;
}

void owh_listcache_bump(void)
{
    if (shared) apr_atomic_inc64(&shared->generation);
}

apr_uint64_t owh_listcache_generation(void)
{
    return shared ? apr_atomic_read64(&shared->generation) : 0;
}

/* One list: the struct, its key and its body in one malloc'd block, freed
 * when replaced or when the cache starts over, so the cache holds what its
 * live entries take, not every list it ever kept. */
#define ENTRY_OVERHEAD 64          /* the hash's share of an entry, counted against the bound */

typedef struct entry_t {
    apr_uint64_t generation;
    apr_time_t at;
    apr_size_t len, size;
    const char *body;
} entry_t;

struct owh_listcache_t {
    apr_thread_mutex_t *lock;
    apr_pool_t *pool;               /* the hash; private allocator, touched under lock only */
    apr_hash_t *entries;            /* key -> entry_t * (malloc'd) */
    apr_size_t used, max;           /* bytes of the live entries */
    apr_interval_time_t ttl;
};

/* Frees every entry and starts the hash afresh (under the lock). */
static void cache_empty(owh_listcache_t *c)
{
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(NULL, c->entries); hi; hi = apr_hash_next(hi)) {
        void *e;
        apr_hash_this(hi, NULL, NULL, &e);
        free(e);
    }
    apr_pool_clear(c->pool);
    c->entries = apr_hash_make(c->pool);
    c->used = 0;
}

static apr_status_t cache_destroy(void *data)
{
    owh_listcache_t *c = data;
    if (!c->pool) return APR_SUCCESS;
    cache_empty(c);
    apr_pool_destroy(c->pool);      /* its allocator with it */
    c->pool = NULL;
    return APR_SUCCESS;
}

apr_status_t owh_listcache_create(owh_listcache_t **pc, apr_size_t max_bytes, apr_interval_time_t ttl,
                                  apr_pool_t *p)
{
    owh_listcache_t *c = apr_pcalloc(p, sizeof(*c));
    apr_allocator_t *alloc = NULL;
    apr_status_t rv;

    *pc = NULL;
    c->max = max_bytes;
    c->ttl = ttl;
    /* A pool of its own allocator for the hash: request threads allocate
     * from the child's other pools meanwhile. */
    if ((rv = apr_thread_mutex_create(&c->lock, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS
        || (rv = apr_allocator_create(&alloc)) != APR_SUCCESS)
        return rv;
    if ((rv = apr_pool_create_ex(&c->pool, NULL, NULL, alloc)) != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return rv;
    }
    apr_allocator_owner_set(alloc, c->pool);
    apr_pool_tag(c->pool, "owh_listcache");
    c->entries = apr_hash_make(c->pool);
    apr_pool_cleanup_register(p, c, cache_destroy, apr_pool_cleanup_null);
    *pc = c;
    return APR_SUCCESS;
}

static int enabled(const owh_listcache_t *c)
{
    return c && shared && c->ttl > 0 && c->max > 0;
}

int owh_listcache_get(owh_listcache_t *c, const char *key, const char **pbody, apr_size_t *plen,
                      apr_pool_t *p)
{
    entry_t *e;
    int hit = 0;
    if (!enabled(c) || apr_thread_mutex_lock(c->lock) != APR_SUCCESS) return 0;
    e = apr_hash_get(c->entries, key, APR_HASH_KEY_STRING);
    if (e && e->generation == owh_listcache_generation() && apr_time_now() - e->at < c->ttl) {
        /* a copy: the entry may be replaced as soon as the lock goes */
        *pbody = apr_pmemdup(p, e->body, e->len);
        *plen = e->len;
        hit = 1;
    }
    apr_thread_mutex_unlock(c->lock);
    return hit;
}

void owh_listcache_put(owh_listcache_t *c, const char *key, apr_uint64_t generation, apr_time_t at,
                       const char *body, apr_size_t len)
{
    apr_size_t klen, size;
    entry_t *e, *old;
    char *k;
    if (!enabled(c) || len > c->max / 8) return;
    klen = strlen(key) + 1;
    size = sizeof(*e) + klen + len;
    if (!(e = malloc(size))) return;
    e->generation = generation;
    e->at = at;
    e->len = len;
    e->size = size + ENTRY_OVERHEAD;
    k = (char *)(e + 1);
    memcpy(k, key, klen);
    e->body = memcpy(k + klen, body, len);
    if (apr_thread_mutex_lock(c->lock) != APR_SUCCESS) { free(e); return; }
    if ((old = apr_hash_get(c->entries, key, APR_HASH_KEY_STRING)) != NULL) {
        if (old->generation > generation) {     /* a fill that read before a later one's */
            apr_thread_mutex_unlock(c->lock);
            free(e);
            return;
        }
        apr_hash_set(c->entries, key, APR_HASH_KEY_STRING, NULL);
        c->used -= old->size;
        free(old);
    }
    if (c->used + e->size > c->max) cache_empty(c);   /* full: start over */
    apr_hash_set(c->entries, k, APR_HASH_KEY_STRING, e);
    c->used += e->size;
    apr_thread_mutex_unlock(c->lock);
}

void owh_listcache_usage(owh_listcache_t *c, int *pentries, apr_size_t *pbytes)
{
    *pentries = 0;
    *pbytes = 0;
    if (!c || apr_thread_mutex_lock(c->lock) != APR_SUCCESS) return;
    *pentries = (int)apr_hash_count(c->entries);
    *pbytes = c->used;
    apr_thread_mutex_unlock(c->lock);
}
