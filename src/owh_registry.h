/* owh_registry.h — owns the module-wide registry of databases (as mod_md's
 * md_mod_conf_t): one entry per OctoWebhooksDatabase, whatever the number of
 * virtual hosts naming it. The schema is migrated, the per-child pool made
 * and the dispatchers spawned once per entry, with the entry's settings;
 * virtual hosts that name one database with different database-wide
 * settings (pools, delivery, resolve, SSRF allow-list, supplier) are refused
 * at configuration time, naming both. */
#ifndef OWH_REGISTRY_H
#define OWH_REGISTRY_H

#include <httpd.h>
#include "owh_config.h"

typedef struct owh_registry_entry_t {
    const char *conninfo;
    server_rec *s;              /* the first server naming it */
    owh_srv_conf_t *sc;         /* its settings: the database's */
    owh_store_t *store;         /* this child's pool (child_init) */
    struct owh_listcache_t *lists; /* this child's cached lists (child_init) */
} owh_registry_entry_t;

/* Builds the registry from every server's (finalized) config; APR_EINVAL,
 * logged, when two servers conflict. check_config, after owh_config_finalize. */
apr_status_t owh_registry_build(server_rec *s, apr_pool_t *pconf);

/* The entries (owh_registry_entry_t *), in the order the servers name them. */
const apr_array_header_t *owh_registry_entries(void);

/* The entry of a server's database. */
owh_registry_entry_t *owh_registry_get(const owh_srv_conf_t *sc);

#endif
