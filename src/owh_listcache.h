/* owh_listcache.h — owns the API's cache of rendered webhook lists: per
 * httpd child and database, the JSON answer of GET list by connection and
 * dialect, so a repeated list costs no database round trip (on two cores the
 * round trip's wake-ups of PostgreSQL cost more than the list itself).
 *
 * An entry is valid while both hold:
 *   - the host's list generation is the one read before its query: every
 *     write request of this host's API bumps it after its statements, before
 *     it answers (so a client reads its own writes on any child), and so does
 *     the dispatcher on each notice that a webhook changed elsewhere (another
 *     host, a dispatcher disabling a webhook, the CLI, plain SQL);
 *   - it is younger than OctoWebhooksListCacheTTL, the bound on what a lost
 *     notice can cost (as the token cache's second bounds a revocation).
 * The generation is one word of anonymous shared memory made by the httpd
 * parent before it forks (kept across graceful restarts); the entries are
 * malloc'd blocks under a mutex, freed when replaced, their sum bounded by
 * OctoWebhooksListCacheSize: past it the cache starts over. APR only. */
#ifndef OWH_LISTCACHE_H
#define OWH_LISTCACHE_H

#include <apr_pools.h>
#include <apr_time.h>

/* Parent, post_config: the host's generation (once per parent). Without it
 * (or before it) nothing is cached and a bump does nothing. */
apr_status_t owh_listcache_init(apr_pool_t *process_pool);
/* Any process of this host: what changes a list, once committed. */
void owh_listcache_bump(void);
apr_uint64_t owh_listcache_generation(void);

typedef struct owh_listcache_t owh_listcache_t;

/* A child's cache for one database: at most max_bytes of entries, each kept
 * ttl at most (0: nothing is cached). */
apr_status_t owh_listcache_create(owh_listcache_t **pc, apr_size_t max_bytes, apr_interval_time_t ttl,
                                  apr_pool_t *p);

/* 1 and a copy of key's body in p when a valid entry holds it; else 0. */
int owh_listcache_get(owh_listcache_t *c, const char *key, const char **pbody, apr_size_t *plen,
                      apr_pool_t *p);
/* Keeps body under key, read at time at under generation (both taken before
 * the query that produced it). A body over an eighth of the cache is not
 * kept: one tenant's huge list cannot evict everyone else's. */
void owh_listcache_put(owh_listcache_t *c, const char *key, apr_uint64_t generation, apr_time_t at,
                       const char *body, apr_size_t len);

/* Entries kept and bytes in use, for tests. */
void owh_listcache_usage(owh_listcache_t *c, int *pentries, apr_size_t *pbytes);

#endif
