/* mod_octo_webhooks — the OCTO octo/webhooks capability for Apache httpd 2.4.
 *
 * This file is the module record and hook registration only:
 *   check_config  applies defaults, validates (so `httpd -t` catches errors)
 *   post_config   migrates (or, with OctoWebhooksMigrate Off, checks) the schema
 *                 once per database from the parent, refusing to start on one
 *                 the module must not use, and spawns the dispatcher
 *                 process(es) (src/owh_dispatcher.c)
 *   child_init    makes each child's connection pools and list caches (one per database)
 *   handler       SetHandler octo-webhooks -> owh_handler_handle;
 *                 octo-webhooks-metrics, octo-webhooks-status -> owh_status_handle
 *   status_hook   a section in mod_status (ExtendedStatus On)
 * Everything else lives in src/. */
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_request.h>
#include <ap_mpm.h>

#include "owh_config.h"
#include "owh_store.h"
#include "owh_handler.h"
#include "owh_dispatcher.h"
#include "owh_log.h"
#include "owh_log_httpd.h"
#include "owh_registry.h"
#include "owh_metrics.h"
#include "owh_listcache.h"
#include "owh_status.h"
#include <mod_status.h>

module AP_MODULE_DECLARE_DATA octo_webhooks_module;


static int owh_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    if (owh_config_finalize(s, pconf, plog) != APR_SUCCESS) return !OK;
    owh_config_find_handler_locations(s, pconf);
    return owh_registry_build(s, pconf) == APR_SUCCESS ? OK : !OK;
}

/* libpq messages go to the error log of the server that owns the pool, at
 * most one failure a second so an outage does not flood the log. */
static void owh_store_log(void *baton, int is_error, apr_status_t rv, const char *msg)
{
    static apr_time_t last;     /* racy by design: only throttles logging */
    apr_time_t now = apr_time_now();
    if (is_error) {
        if (now - last < apr_time_from_sec(1)) return;
        last = now;
    }
    ap_log_error(APLOG_MARK, is_error ? APLOG_ERR : APLOG_INFO, rv, (server_rec *)baton,
                 OWHLOGNO(00001) "%s", msg);
}

static int owh_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    const apr_array_header_t *dbs = owh_registry_entries();
    int i;

    /* httpd runs the config twice at startup; connect only on the real pass. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    owh_log_httpd_install(s);
    /* before any fork: dispatchers and children inherit the counters */
    if (owh_metrics_init(s->process->pool) != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OWHLOGNO(00005)
                     "cannot create the shared counters; /metrics will lack the host's figures");
    if (owh_listcache_init(s->process->pool) != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OWHLOGNO(00007)
                     "cannot create the list generation; GET list answers are not cached");

    for (i = 0; dbs && i < dbs->nelts; ++i) {
        owh_registry_entry_t *e = APR_ARRAY_IDX(dbs, i, owh_registry_entry_t *);
        owh_db_t *db = NULL;
        /* A database that is down now is not fatal: children migrate (or
         * check) lazily on their first connection and the API answers 503
         * meanwhile. A schema the module must not use is: refuse to start. */
        apr_status_t rv = owh_store_connect_schema(&db, e->conninfo, e->sc->connect_timeout,
                                                   e->sc->migrate ? OWH_SCHEMA_MIGRATE : OWH_SCHEMA_CHECK,
                                                   ptemp);
        if (rv == APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, e->s, OWHLOGNO(00002)
                         "schema octo_webhooks is at version %d", owh_store_schema_version());
        else if (rv == OWH_STORE_ESCHEMA) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, e->s, OWHLOGNO(00006) "%s", db->errmsg);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        else
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, e->s, OWHLOGNO(00003)
                         "database not ready at startup (%s); will retry on demand",
                         db && db->errmsg ? db->errmsg : "connection failed");
    }
    owh_dispatcher_spawn_all(pconf, s);
    return OK;
}

/* One pool per database in each child, shared by the servers naming it. */
static void owh_child_init(apr_pool_t *pchild, server_rec *s)
{
    const apr_array_header_t *dbs = owh_registry_entries();
    server_rec *x;
    int i;
    owh_log_httpd_install(s);
    for (i = 0; dbs && i < dbs->nelts; ++i) {
        owh_registry_entry_t *e = APR_ARRAY_IDX(dbs, i, owh_registry_entry_t *);
        owh_store_params_t params;
        apr_status_t rv;
        memset(&params, 0, sizeof(params));
        params.conninfo = e->conninfo;
        params.connect_timeout = e->sc->connect_timeout;
        params.keep = e->sc->pool_keep;
        params.max = e->sc->pool_max;
        params.ttl = e->sc->pool_ttl;
        params.wait = e->sc->pool_wait;
        params.check_only = !e->sc->migrate;
        params.log = owh_store_log;
        params.log_baton = e->s;
        params.acquired = owh_metrics_pool;
        e->store = NULL;
        if ((rv = owh_store_create(&e->store, &params, pchild)) != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, e->s, OWHLOGNO(00004)
                         "cannot create the database connection pool");
        e->lists = NULL;
        if ((rv = owh_listcache_create(&e->lists, e->sc->list_cache_size, e->sc->list_cache_ttl, pchild))
            != APR_SUCCESS)
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, e->s, OWHLOGNO(00008)
                         "cannot create the list cache; lists are read from the database each time");
    }
    for (x = s; x; x = x->next) {
        owh_srv_conf_t *sc = owh_config_srv_get(x);
        owh_registry_entry_t *e = owh_registry_get(sc);
        sc->store = e ? e->store : NULL;
        sc->lists = e ? e->lists : NULL;
    }
}

static void owh_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(owh_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(owh_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(owh_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(owh_handler_map_to_storage, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(owh_handler_handle, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(owh_status_handle, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, owh_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(octo_webhooks) = {
    STANDARD20_MODULE_STUFF,
    owh_config_dir_create,
    owh_config_dir_merge,
    owh_config_srv_create,
    owh_config_srv_merge,
    owh_config_cmds,
    owh_register_hooks
};
