/* owh_registry.c — one entry per database. See owh_registry.h. */
#include <apr_strings.h>
#include <stddef.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "owh_registry.h"
#include "owh_log.h"

APLOG_USE_MODULE(octo_webhooks);

static apr_array_header_t *entries;

typedef enum { K_INT, K_TIME, K_SIZE, K_STR } kind_e;

/* The settings every server naming a database must agree on. */
static const struct { const char *directive; size_t off; kind_e kind; } shared[] = {
#define F(d, m, k) { d, offsetof(owh_srv_conf_t, m), k }
    F("OctoWebhooksPoolMax", pool_max, K_INT),
    F("OctoWebhooksPoolKeep", pool_keep, K_INT),
    F("OctoWebhooksPoolTTL", pool_ttl, K_TIME),
    F("OctoWebhooksPoolWait", pool_wait, K_TIME),
    F("OctoWebhooksListCacheTTL", list_cache_ttl, K_TIME),
    F("OctoWebhooksListCacheSize", list_cache_size, K_SIZE),
    F("OctoWebhooksConnectTimeout", connect_timeout, K_INT),
    F("OctoWebhooksMigrate", migrate, K_INT),
    F("OctoWebhooksDispatcher", dispatcher, K_INT),
    F("OctoWebhooksDispatchers", dispatchers, K_INT),
    F("OctoWebhooksRetrySchedule", retry_schedule, K_STR),
    F("OctoWebhooksDeliveryConnectTimeout", deliver_connect_timeout, K_TIME),
    F("OctoWebhooksDeliveryTimeout", deliver_timeout, K_TIME),
    F("OctoWebhooksMaxConcurrency", max_concurrency, K_INT),
    F("OctoWebhooksMaxPerHost", max_per_host, K_INT),
    F("OctoWebhooksBatchSize", batch_size, K_INT),
    F("OctoWebhooksLease", lease, K_TIME),
    F("OctoWebhooksPollInterval", poll_interval, K_TIME),
    F("OctoWebhooksResponseCap", response_cap, K_SIZE),
    F("OctoWebhooksSupplierId", supplier_id, K_STR),
    F("OctoWebhooksSupplierName", supplier_name, K_STR),
    F("OctoWebhooksSupplierReference", supplier_reference, K_STR),
    F("OctoWebhooksSupplierWebsite", supplier_website, K_STR),
    F("OctoWebhooksAllowNetworks", allow_networks_text, K_STR),
    F("OctoWebhooksWebhookConcurrency", webhook_concurrency, K_INT),
    F("OctoWebhooksWebhookRate", webhook_rate, K_INT),
    F("OctoWebhooksMaxRetryAfter", max_retry_after, K_TIME),
    F("OctoWebhooksDisableAfter", disable_after, K_TIME),
    F("OctoWebhooksSecretGrace", secret_grace, K_TIME),
    F("OctoWebhooksMaxPayloadSize", max_payload, K_SIZE),
    F("OctoWebhooksResolve", resolve, K_INT),
    F("OctoWebhooksSupplierApi", supplier_api, K_STR),
    F("OctoWebhooksSupplierApiToken", supplier_api_token, K_STR),
    F("OctoWebhooksRetention", retention, K_TIME),
    F("OctoWebhooksOperatorWebhook", operator_url, K_STR),
    F("OctoWebhooksOperatorSecret", operator_secret, K_STR),
#undef F
};

static int differs(const owh_srv_conf_t *a, const owh_srv_conf_t *b, size_t off, kind_e kind)
{
    const char *pa = (const char *)a + off, *pb = (const char *)b + off;
    switch (kind) {
    case K_INT: return *(const int *)pa != *(const int *)pb;
    case K_TIME: return *(const apr_interval_time_t *)pa != *(const apr_interval_time_t *)pb;
    case K_SIZE: return *(const apr_size_t *)pa != *(const apr_size_t *)pb;
    case K_STR: {
        const char *sa = *(const char *const *)pa, *sb = *(const char *const *)pb;
        return (sa || sb) && (!sa || !sb || strcmp(sa, sb));
    }
    }
    return 0;
}

static const char *where(server_rec *s, apr_pool_t *p)
{
    return s->defn_name ? apr_psprintf(p, "%s (%s:%d)", s->server_hostname ? s->server_hostname : "?",
                                       s->defn_name, s->defn_line_number)
                        : "the main server";
}

apr_status_t owh_registry_build(server_rec *s, apr_pool_t *pconf)
{
    server_rec *x;
    apr_status_t rv = APR_SUCCESS;
    entries = apr_array_make(pconf, 4, sizeof(owh_registry_entry_t *));
    for (x = s; x; x = x->next) {
        owh_srv_conf_t *sc = owh_config_srv_get(x);
        owh_registry_entry_t *e = NULL;
        int i;
        for (i = 0; i < entries->nelts && !e; ++i)
            if (!strcmp(APR_ARRAY_IDX(entries, i, owh_registry_entry_t *)->conninfo, sc->conninfo))
                e = APR_ARRAY_IDX(entries, i, owh_registry_entry_t *);
        if (!e) {
            e = apr_pcalloc(pconf, sizeof(*e));
            e->conninfo = sc->conninfo;
            e->s = x;
            e->sc = sc;
            APR_ARRAY_PUSH(entries, owh_registry_entry_t *) = e;
            continue;
        }
        for (i = 0; i < (int)(sizeof(shared) / sizeof(shared[0])); ++i) {
            if (!differs(e->sc, sc, shared[i].off, shared[i].kind)) continue;
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, x, OWHLOGNO(00105)
                         "%s and %s name the same OctoWebhooksDatabase but differ in %s: one database "
                         "has one delivery configuration (set it once, e.g. in the main server)",
                         where(e->s, pconf), where(x, pconf), shared[i].directive);
            rv = APR_EINVAL;
        }
    }
    return rv;
}

const apr_array_header_t *owh_registry_entries(void)
{
    return entries;
}

owh_registry_entry_t *owh_registry_get(const owh_srv_conf_t *sc)
{
    int i;
    for (i = 0; entries && i < entries->nelts; ++i) {
        owh_registry_entry_t *e = APR_ARRAY_IDX(entries, i, owh_registry_entry_t *);
        if (!strcmp(e->conninfo, sc->conninfo)) return e;
    }
    return NULL;
}
