/* owh_config.c — the directive table (read it as the reference of every
 * setting), defaults, validation and merging. See owh_config.h.
 * Over 500 lines on purpose: one table and its setters, defaults and merge
 * rules side by side, so t/config.t (and a reader) can check every member
 * has all three in one place. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <libpq-fe.h>

#include "owh_config.h"
#include "owh_netguard.h"
#include "owh_webhook.h"
#include "owh_log.h"
#include "owh_sign.h"

APLOG_USE_MODULE(octo_webhooks);
extern module AP_MODULE_DECLARE_DATA octo_webhooks_module;

/* ---- defaults ------------------------------------------------------------ */
#define DEF_CONNINFO            ""
#define DEF_POOL_MAX            8
#define DEF_POOL_KEEP           2
#define DEF_POOL_TTL            apr_time_from_sec(60)
#define DEF_POOL_WAIT           apr_time_from_sec(3)
#define DEF_LIST_CACHE_TTL      apr_time_from_sec(1)
#define DEF_LIST_CACHE_SIZE     (1024 * 1024)
#define DEF_CONNECT_TIMEOUT     3
#define DEF_MAX_BODY            (64 * 1024)
#define DEF_DISPATCHER          1
#define DEF_MIGRATE             1
#define DEF_RETRY_SCHEDULE      "5s 5m 30m 2h 5h 10h 10h"
#define DEF_DELIVER_CONNECT     apr_time_from_sec(5)
#define DEF_DELIVER_TIMEOUT     apr_time_from_sec(15)
#define DEF_MAX_CONCURRENCY     256
#define DEF_MAX_PER_HOST        16
#define DEF_BATCH_SIZE          200
#define DEF_LEASE               apr_time_from_sec(60)
#define DEF_POLL_INTERVAL       apr_time_from_sec(2)
#define DEF_RESPONSE_CAP        1024
#define DEF_WEBHOOK_CONCURRENCY 16      /* see README: Caps */
#define DEF_WEBHOOK_RATE        0
#define DEF_MAX_RETRY_AFTER     apr_time_from_sec(3600)
#define DEF_DISABLE_AFTER       apr_time_from_sec(5 * 86400)
#define DEF_SECRET_GRACE        apr_time_from_sec(86400)
#define DEF_MAX_PAYLOAD         (256 * 1024)
#define DEF_RESOLVE             0               /* every event carries its object inline */
#define DEF_DISPATCHERS         1
#define DEF_MAX_WEBHOOKS        100
#define DEF_TRIGGER_RATE        10
#define DEF_RETENTION           apr_time_from_sec(30 * 86400)

#define UNSET_TIME ((apr_interval_time_t)-1)
#define UNSET_SIZE ((apr_size_t)-1)

owh_srv_conf_t *owh_config_srv_get(server_rec *s)
{
    return ap_get_module_config(s->module_config, &octo_webhooks_module);
}

owh_dir_conf_t *owh_config_dir_get(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &octo_webhooks_module);
}

/* ---- durations ----------------------------------------------------------- */
const char *owh_config_parse_duration(apr_interval_time_t *pout, const char *spec)
{
    char *end;
    apr_int64_t n;
    if (!spec || !*spec) return "empty duration";
    n = apr_strtoi64(spec, &end, 10);
    if (end == spec || n < 0) return "not a non-negative number";
    if (!*end || !strcmp(end, "s"))      *pout = apr_time_from_sec(n);
    else if (!strcmp(end, "ms"))         *pout = (apr_interval_time_t)n * 1000;
    else if (!strcmp(end, "m"))          *pout = apr_time_from_sec(n * 60);
    else if (!strcmp(end, "h"))          *pout = apr_time_from_sec(n * 3600);
    else if (!strcmp(end, "d"))          *pout = apr_time_from_sec(n * 86400);
    else return "unit must be ms, s, m, h or d";
    if (n > 366LL * 86400 * 1000) return "too large";
    return NULL;
}

const char *owh_config_parse_durations(apr_array_header_t **pout, const char *spec, apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 8, sizeof(apr_interval_time_t));
    char *copy = apr_pstrdup(p, spec), *tok, *last;
    for (tok = apr_strtok(copy, " \t,", &last); tok; tok = apr_strtok(NULL, " \t,", &last)) {
        const char *err = owh_config_parse_duration(&APR_ARRAY_PUSH(a, apr_interval_time_t), tok);
        if (err) return apr_psprintf(p, "'%s': %s", tok, err);
    }
    if (a->nelts > 50) return "at most 50 retries";
    *pout = a;
    return NULL;
}

/* ---- directive handlers -------------------------------------------------- */
static const char *int_in_range(cmd_parms *cmd, const char *arg, int lo, int hi, int *out)
{
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || n < lo || n > hi)
        return apr_psprintf(cmd->pool, "%s must be a whole number from %d to %d, not '%s'",
                            cmd->directive->directive, lo, hi, arg);
    *out = (int)n;
    return NULL;
}

static const char *time_arg(cmd_parms *cmd, const char *arg, apr_interval_time_t lo,
                            apr_interval_time_t hi, apr_interval_time_t *out)
{
    apr_interval_time_t t;
    const char *err = owh_config_parse_duration(&t, arg);
    if (err || t < lo || t > hi)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a duration from %" APR_TIME_T_FMT
                            "ms to %" APR_TIME_T_FMT "s (units ms, s, m, h, d)%s%s",
                            cmd->directive->directive, arg, lo / 1000, apr_time_sec(hi),
                            err ? ": " : "", err ? err : "");
    *out = t;
    return NULL;
}

#define SRV(cmd) ((owh_srv_conf_t *)ap_get_module_config((cmd)->server->module_config, &octo_webhooks_module))

static const char *set_database(cmd_parms *cmd, void *d, const char *arg)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(arg, &errmsg);
    if (!opts) {
        const char *msg = apr_psprintf(cmd->pool, "OctoWebhooksDatabase: not a libpq connection "
                                       "string: %s", errmsg ? errmsg : "out of memory");
        if (errmsg) PQfreemem(errmsg);
        return msg;
    }
    PQconninfoFree(opts);
    SRV(cmd)->conninfo = arg;
    return NULL;
}

static const char *set_pool_max(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 1, 1024, &SRV(cmd)->pool_max); }
static const char *set_pool_keep(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 0, 1024, &SRV(cmd)->pool_keep); }
static const char *set_pool_ttl(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, apr_time_from_sec(1), apr_time_from_sec(86400), &SRV(cmd)->pool_ttl); }
static const char *set_pool_wait(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, 0, apr_time_from_sec(60), &SRV(cmd)->pool_wait); }
static const char *set_list_cache_ttl(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, 0, apr_time_from_sec(3600), &SRV(cmd)->list_cache_ttl); }
static const char *set_list_cache_size(cmd_parms *cmd, void *d, const char *arg)
{
    int n = 0;
    const char *err = int_in_range(cmd, arg, 0, 256 * 1024 * 1024, &n);
    if (!err) SRV(cmd)->list_cache_size = (apr_size_t)n;
    return err;
}
static const char *set_connect_timeout(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 1, 300, &SRV(cmd)->connect_timeout); }

static const char *set_dispatcher(cmd_parms *cmd, void *d, int flag)
{ SRV(cmd)->dispatcher = flag; return NULL; }

static const char *set_migrate(cmd_parms *cmd, void *d, int flag)
{ SRV(cmd)->migrate = flag; return NULL; }

static const char *set_retry_schedule(cmd_parms *cmd, void *d, const char *args)
{
    owh_srv_conf_t *sc = SRV(cmd);
    const char *arg = "", *w, *err;
    /* quoted or not: "5s 5m" and 5s 5m are the same schedule */
    while (*(w = ap_getword_conf(cmd->pool, &args)))
        arg = apr_pstrcat(cmd->pool, arg, " ", w, NULL);
    err = owh_config_parse_durations(&sc->retry_delays, arg, cmd->pool);
    if (err) return apr_psprintf(cmd->pool, "OctoWebhooksRetrySchedule: %s", err);
    sc->retry_schedule = arg;
    return NULL;
}
static const char *set_deliver_connect(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, apr_time_from_msec(10), apr_time_from_sec(120), &SRV(cmd)->deliver_connect_timeout); }
static const char *set_deliver_timeout(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, apr_time_from_msec(10), apr_time_from_sec(600), &SRV(cmd)->deliver_timeout); }
static const char *set_max_concurrency(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 1, 10000, &SRV(cmd)->max_concurrency); }
static const char *set_max_per_host(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 1, 10000, &SRV(cmd)->max_per_host); }
static const char *set_batch_size(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 1, 10000, &SRV(cmd)->batch_size); }
static const char *set_lease(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, apr_time_from_sec(1), apr_time_from_sec(3600), &SRV(cmd)->lease); }
static const char *set_poll_interval(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, apr_time_from_msec(10), apr_time_from_sec(600), &SRV(cmd)->poll_interval); }
static const char *set_response_cap(cmd_parms *cmd, void *d, const char *arg)
{
    int n = 0;
    const char *err = int_in_range(cmd, arg, 0, 1024 * 1024, &n);
    if (!err) SRV(cmd)->response_cap = (apr_size_t)n;
    return err;
}
static const char *set_webhook_concurrency(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 1, 10000, &SRV(cmd)->webhook_concurrency); }
static const char *set_webhook_rate(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 0, 100000, &SRV(cmd)->webhook_rate); }
static const char *set_max_retry_after(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, 0, apr_time_from_sec(7 * 86400), &SRV(cmd)->max_retry_after); }
static const char *set_disable_after(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, apr_time_from_sec(1), apr_time_from_sec(365 * 86400), &SRV(cmd)->disable_after); }
static const char *set_secret_grace(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, 0, apr_time_from_sec(30 * 86400), &SRV(cmd)->secret_grace); }
static const char *set_max_payload(cmd_parms *cmd, void *d, const char *arg)
{
    int n = 0;
    const char *err = int_in_range(cmd, arg, 1024, 64 * 1024 * 1024, &n);
    if (!err) SRV(cmd)->max_payload = (apr_size_t)n;
    return err;
}
static const char *set_supplier(cmd_parms *cmd, void *d, const char *arg)
{
    owh_srv_conf_t *sc = SRV(cmd);
    const char *which = (const char *)cmd->info;
    if (strlen(arg) > 1024)
        return apr_psprintf(cmd->pool, "%s: at most 1024 characters", cmd->directive->directive);
    if (!strcmp(which, "id")) sc->supplier_id = arg;
    else if (!strcmp(which, "name")) sc->supplier_name = arg;
    else if (!strcmp(which, "reference")) sc->supplier_reference = arg;
    else sc->supplier_website = arg;
    return NULL;
}

static const char *set_dispatchers(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 1, 64, &SRV(cmd)->dispatchers); }

static const char *set_max_webhooks(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 0, 1000000, &SRV(cmd)->max_webhooks); }
static const char *set_trigger_rate(cmd_parms *cmd, void *d, const char *arg)
{ return int_in_range(cmd, arg, 0, 100000, &SRV(cmd)->trigger_rate); }

static const char *set_resolve(cmd_parms *cmd, void *d, const char *arg)
{
    owh_srv_conf_t *sc = SRV(cmd);
    owh_event_e ev;
    if (sc->resolve == OWH_UNSET_INT) sc->resolve = 0;
    if (!strcasecmp(arg, "none")) return NULL;
    if (!strcasecmp(arg, "all")) {
        sc->resolve = (1 << OWH_EVENT_BOOKING) | (1 << OWH_EVENT_ORDER) | (1 << OWH_EVENT_AVAILABILITY)
                    | (1 << OWH_EVENT_PRODUCT);
        return NULL;
    }
    if ((ev = owh_event_parse(arg)) == OWH_EVENT_NONE)
        return apr_psprintf(cmd->pool, "OctoWebhooksResolve: '%s' is not an event (booking_update, "
                            "order_update, availability_update, product_update, all, none)", arg);
    sc->resolve |= 1 << ev;
    return NULL;
}

static const char *set_supplier_api(cmd_parms *cmd, void *d, const char *arg)
{
    const char *err = NULL;
    apr_size_t n = strlen(arg);
    if (owh_url_check(arg, &err, cmd->pool) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "OctoWebhooksSupplierApi: %s", err);
    if (strchr(arg, '?') || strchr(arg, '#'))
        return "OctoWebhooksSupplierApi: the base URL takes no query or fragment";
    SRV(cmd)->supplier_api = n > 1 && arg[n - 1] == '/' ? apr_pstrndup(cmd->pool, arg, n - 1) : arg;
    return NULL;
}

static const char *set_supplier_api_token(cmd_parms *cmd, void *d, const char *arg)
{
    if (!*arg || strpbrk(arg, " \t\r\n") || strlen(arg) > 4096)
        return "OctoWebhooksSupplierApiToken: one token without whitespace, at most 4096 characters";
    SRV(cmd)->supplier_api_token = arg;
    return NULL;
}

static const char *set_retention(cmd_parms *cmd, void *d, const char *arg)
{ return time_arg(cmd, arg, apr_time_from_sec(1), apr_time_from_sec(3650 * 86400), &SRV(cmd)->retention); }

static const char *set_operator_webhook(cmd_parms *cmd, void *d, const char *arg)
{
    const char *err = NULL;
    if (owh_url_check(arg, &err, cmd->pool) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "OctoWebhooksOperatorWebhook: %s", err);
    SRV(cmd)->operator_url = arg;
    return NULL;
}

static const char *set_operator_secret(cmd_parms *cmd, void *d, const char *arg)
{
    const char *err = NULL;
    if (owh_sign_secret_check(arg, &err) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "OctoWebhooksOperatorSecret: %s", err);
    SRV(cmd)->operator_secret = arg;
    return NULL;
}

static const char *set_allow_network(cmd_parms *cmd, void *d, const char *arg)
{
    owh_srv_conf_t *sc = SRV(cmd);
    const char *err;
    if (!sc->allow_networks) sc->allow_networks = owh_netguard_make(cmd->pool);
    if ((err = owh_netguard_allow(sc->allow_networks, arg, cmd->pool)))
        return apr_psprintf(cmd->pool, "OctoWebhooksAllowNetworks: %s", err);
    sc->allow_networks_text = sc->allow_networks_text
        ? apr_pstrcat(cmd->pool, sc->allow_networks_text, " ", arg, NULL) : apr_pstrdup(cmd->pool, arg);
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *d, const char *arg)
{
    int n = 0;
    const char *err = int_in_range(cmd, arg, 256, 16 * 1024 * 1024, &n);
    if (!err) ((owh_dir_conf_t *)d)->max_body = n;
    return err;
}

static const char *set_auth(cmd_parms *cmd, void *d, const char *arg)
{
    owh_dir_conf_t *dc = d;
    if (!strcasecmp(arg, "bearer")) dc->auth = OWH_AUTH_BEARER;
    else if (!strcasecmp(arg, "remote-user")) dc->auth = OWH_AUTH_REMOTE_USER;
    else return apr_psprintf(cmd->pool, "OctoWebhooksAuth must be 'bearer' or 'remote-user', not '%s'", arg);
    return NULL;
}

/* The directive table: this is the reference for every setting. */
const command_rec owh_config_cmds[] = {
    /* --- where the state lives (server scope) --- */
    AP_INIT_TAKE1("OctoWebhooksDatabase", set_database, NULL, RSRC_CONF,
        "libpq connection string of the PostgreSQL database holding schema octo_webhooks "
        "(default: libpq's defaults and PG* environment variables)"),
    AP_INIT_TAKE1("OctoWebhooksPoolMax", set_pool_max, NULL, RSRC_CONF,
        "database connections per httpd child at most (1-1024, default 8)"),
    AP_INIT_TAKE1("OctoWebhooksPoolKeep", set_pool_keep, NULL, RSRC_CONF,
        "idle database connections kept open per child (0-PoolMax, default 2)"),
    AP_INIT_TAKE1("OctoWebhooksPoolTTL", set_pool_ttl, NULL, RSRC_CONF,
        "idle time after which connections beyond PoolKeep are closed (default 60s)"),
    AP_INIT_TAKE1("OctoWebhooksPoolWait", set_pool_wait, NULL, RSRC_CONF,
        "how long a request waits for a free connection before answering 503 (default 3s)"),
    AP_INIT_TAKE1("OctoWebhooksListCacheTTL", set_list_cache_ttl, NULL, RSRC_CONF,
        "longest life of a child's cached GET list answer (0-1h; default 1s, 0 with OctoWebhooksDispatcher "
        "Off; 0: no cache); this host's writes and the dispatcher's change notices end it sooner"),
    AP_INIT_TAKE1("OctoWebhooksListCacheSize", set_list_cache_size, NULL, RSRC_CONF,
        "bytes of cached list answers per child and database (0-268435456, default 1048576; 0: no cache)"),
    AP_INIT_TAKE1("OctoWebhooksConnectTimeout", set_connect_timeout, NULL, RSRC_CONF,
        "seconds to wait when opening a database connection (1-300, default 3)"),

    /* --- the API (directory scope: inside <Location>) --- */
    AP_INIT_TAKE1("OctoWebhooksMaxBodySize", set_max_body, NULL, RSRC_CONF | ACCESS_CONF,
        "largest request body accepted, bytes (256-16777216, default 65536); larger is 413"),
    AP_INIT_TAKE1("OctoWebhooksAuth", set_auth, NULL, RSRC_CONF | ACCESS_CONF,
        "'bearer' (tokens from octo-webhooks-token, default) or 'remote-user' "
        "(the connection is r->user, set by another Apache auth module)"),

    AP_INIT_FLAG("OctoWebhooksMigrate", set_migrate, NULL, RSRC_CONF,
        "On (default): the module migrates the schema at startup (its role owns it); Off: it only "
        "checks the schema and refuses one older or newer than it understands (`octo-webhooks migrate`)"),

    /* --- delivery (server scope) --- */
    AP_INIT_FLAG("OctoWebhooksDispatcher", set_dispatcher, NULL, RSRC_CONF,
        "On (default): this httpd runs a dispatcher delivering notifications; Off on API-only hosts"),
    AP_INIT_TAKE1("OctoWebhooksDispatchers", set_dispatchers, NULL, RSRC_CONF,
        "dispatcher processes per database on this httpd (1-64, default 1); they split the work "
        "like several hosts do"),
    AP_INIT_RAW_ARGS("OctoWebhooksRetrySchedule", set_retry_schedule, NULL, RSRC_CONF,
        "delays between attempts, e.g. '5s 5m 30m 2h 5h 10h 10h' (the default; +-20% jitter)"),
    AP_INIT_TAKE1("OctoWebhooksDeliveryConnectTimeout", set_deliver_connect, NULL, RSRC_CONF,
        "connect timeout of one delivery attempt (default 5s)"),
    AP_INIT_TAKE1("OctoWebhooksDeliveryTimeout", set_deliver_timeout, NULL, RSRC_CONF,
        "total timeout of one delivery attempt (default 15s)"),
    AP_INIT_TAKE1("OctoWebhooksMaxConcurrency", set_max_concurrency, NULL, RSRC_CONF,
        "deliveries in flight per dispatcher (default 256)"),
    AP_INIT_TAKE1("OctoWebhooksMaxPerHost", set_max_per_host, NULL, RSRC_CONF,
        "deliveries in flight to one host (default 16)"),
    AP_INIT_TAKE1("OctoWebhooksBatchSize", set_batch_size, NULL, RSRC_CONF,
        "deliveries claimed per database round trip (default 200)"),
    AP_INIT_TAKE1("OctoWebhooksLease", set_lease, NULL, RSRC_CONF,
        "how long a claim holds before another dispatcher may retake it (default 60s)"),
    AP_INIT_TAKE1("OctoWebhooksPollInterval", set_poll_interval, NULL, RSRC_CONF,
        "fallback poll when no NOTIFY arrives (default 2s)"),
    AP_INIT_TAKE1("OctoWebhooksResponseCap", set_response_cap, NULL, RSRC_CONF,
        "bytes of an endpoint's response body recorded per attempt (default 1024)"),
    AP_INIT_ITERATE("OctoWebhooksAllowNetworks", set_allow_network, NULL, RSRC_CONF,
        "networks deliveries may reach although private, loopback or reserved "
        "(e.g. 127.0.0.1/32 ::1; default: none — the SSRF guard refuses them all)"),
    AP_INIT_TAKE1("OctoWebhooksWebhookConcurrency", set_webhook_concurrency, NULL, RSRC_CONF,
        "deliveries in flight to one webhook, all hosts together (default 16; 1: strictly one "
        "at a time; deliveries of one object are in event order whatever the value)"),
    AP_INIT_TAKE1("OctoWebhooksWebhookRate", set_webhook_rate, NULL, RSRC_CONF,
        "deliveries per second to one webhook at most, all hosts together (default 0: no cap)"),
    AP_INIT_TAKE1("OctoWebhooksMaxRetryAfter", set_max_retry_after, NULL, RSRC_CONF,
        "longest delay an endpoint's Retry-After (on 429 or 503) may impose (default 1h)"),
    AP_INIT_TAKE1("OctoWebhooksDisableAfter", set_disable_after, NULL, RSRC_CONF,
        "a webhook whose every attempt failed for this long is deactivated (default 5d)"),
    AP_INIT_TAKE1("OctoWebhooksSecretGrace", set_secret_grace, NULL, RSRC_CONF,
        "after POST /webhooks/{id}/secret the old secret keeps signing this long (default 24h)"),
    AP_INIT_TAKE1("OctoWebhooksMaxPayloadSize", set_max_payload, NULL, RSRC_CONF,
        "notifications larger than this many bytes are not sent but recorded as failed "
        "(1024-67108864, default 262144)"),
    AP_INIT_ITERATE("OctoWebhooksResolve", set_resolve, NULL, RSRC_CONF,
        "events whose emit() carries only the identifier: at delivery the dispatcher fetches the "
        "object from OctoWebhooksSupplierApi with each webhook's capabilities and contact language "
        "(booking_update order_update availability_update product_update, all, or none: the default)"),
    AP_INIT_TAKE1("OctoWebhooksSupplierApi", set_supplier_api, NULL, RSRC_CONF,
        "base URL of the supplier's own OCTO API for OctoWebhooksResolve, e.g. https://api.example.com/octo "
        "(GET /bookings/{uuid}, /orders/{id}, /products/{id}, POST /availability)"),
    AP_INIT_TAKE1("OctoWebhooksSupplierApiToken", set_supplier_api_token, NULL, RSRC_CONF,
        "Bearer token the dispatcher presents to OctoWebhooksSupplierApi (default: none)"),
    /* --- bounds per tenant (server scope) --- */
    AP_INIT_TAKE1("OctoWebhooksMaxWebhooks", set_max_webhooks, NULL, RSRC_CONF,
        "webhooks and subscriptions one connection may have (0-1000000, default 100; 0: no bound); "
        "a create beyond it is 409"),
    AP_INIT_TAKE1("OctoWebhooksTriggerRate", set_trigger_rate, NULL, RSRC_CONF,
        "test notifications POST /webhooks/{id}/trigger may queue per webhook per minute, all hosts "
        "together (0-100000, default 10; 0: no cap); beyond it 429 with Retry-After"),
    AP_INIT_TAKE1("OctoWebhooksRetention", set_retention, NULL, RSRC_CONF,
                  "how long ended deliveries, their attempts and events are kept (default 30d)"),
    AP_INIT_TAKE1("OctoWebhooksOperatorWebhook", set_operator_webhook, NULL, RSRC_CONF,
                  "the supplier's own URL receiving webhook.disabled and delivery.exhausted notices"),
    AP_INIT_TAKE1("OctoWebhooksOperatorSecret", set_operator_secret, NULL, RSRC_CONF,
                  "whsec_ secret signing the operator notices (Standard Webhooks)"),
    AP_INIT_TAKE1("OctoWebhooksSupplierId", set_supplier, "id", RSRC_CONF,
        "the payload's supplier.id"),
    AP_INIT_TAKE1("OctoWebhooksSupplierName", set_supplier, "name", RSRC_CONF,
        "the payload's supplier.name"),
    AP_INIT_TAKE1("OctoWebhooksSupplierReference", set_supplier, "reference", RSRC_CONF,
        "the payload's supplier.reference"),
    AP_INIT_TAKE1("OctoWebhooksSupplierWebsite", set_supplier, "website", RSRC_CONF,
        "the payload's supplier.website"),
    { NULL }
};

/* ---- create / merge ------------------------------------------------------ */
void *owh_config_srv_create(apr_pool_t *p, server_rec *s)
{
    owh_srv_conf_t *c = apr_pcalloc(p, sizeof(*c));
    c->conninfo = NULL;
    c->pool_max = c->pool_keep = c->connect_timeout = OWH_UNSET_INT;
    c->pool_ttl = c->pool_wait = UNSET_TIME;
    c->list_cache_ttl = UNSET_TIME;
    c->list_cache_size = UNSET_SIZE;
    c->dispatcher = c->dispatchers = c->migrate = OWH_UNSET_INT;
    c->retry_schedule = NULL;
    c->retry_delays = NULL;
    c->deliver_connect_timeout = c->deliver_timeout = UNSET_TIME;
    c->max_concurrency = c->max_per_host = c->batch_size = OWH_UNSET_INT;
    c->lease = c->poll_interval = UNSET_TIME;
    c->response_cap = UNSET_SIZE;
    c->webhook_concurrency = c->webhook_rate = OWH_UNSET_INT;
    c->max_retry_after = c->disable_after = c->secret_grace = UNSET_TIME;
    c->max_payload = UNSET_SIZE;
    c->resolve = OWH_UNSET_INT;
    c->supplier_api = c->supplier_api_token = NULL;
    c->max_webhooks = c->trigger_rate = OWH_UNSET_INT;
    c->retention = UNSET_TIME;
    c->operator_url = c->operator_secret = NULL;
    c->s = s;
    return c;
}

#define MERGE_PTR(f)  c->f = add->f ? add->f : base->f
#define MERGE_INT(f)  c->f = (add->f != OWH_UNSET_INT) ? add->f : base->f
#define MERGE_TIME(f) c->f = (add->f != UNSET_TIME) ? add->f : base->f

/* A virtual host inherits every setting it does not set from the main server. */
void *owh_config_srv_merge(apr_pool_t *p, void *basev, void *addv)
{
    owh_srv_conf_t *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    MERGE_PTR(conninfo);
    MERGE_INT(pool_max);
    MERGE_INT(pool_keep);
    MERGE_TIME(pool_ttl);
    MERGE_TIME(pool_wait);
    MERGE_TIME(list_cache_ttl);
    c->list_cache_size = (add->list_cache_size != UNSET_SIZE) ? add->list_cache_size : base->list_cache_size;
    MERGE_INT(connect_timeout);
    MERGE_INT(dispatcher);
    MERGE_INT(migrate);
    MERGE_INT(dispatchers);
    if (add->retry_schedule) { c->retry_schedule = add->retry_schedule; c->retry_delays = add->retry_delays; }
    else { c->retry_schedule = base->retry_schedule; c->retry_delays = base->retry_delays; }
    MERGE_TIME(deliver_connect_timeout);
    MERGE_TIME(deliver_timeout);
    MERGE_INT(max_concurrency);
    MERGE_INT(max_per_host);
    MERGE_INT(batch_size);
    MERGE_TIME(lease);
    MERGE_TIME(poll_interval);
    c->response_cap = (add->response_cap != UNSET_SIZE) ? add->response_cap : base->response_cap;
    MERGE_PTR(supplier_id);
    MERGE_PTR(supplier_name);
    MERGE_PTR(supplier_reference);
    MERGE_PTR(supplier_website);
    MERGE_PTR(allow_networks);
    MERGE_PTR(allow_networks_text);
    MERGE_INT(webhook_concurrency);
    MERGE_INT(webhook_rate);
    MERGE_TIME(max_retry_after);
    MERGE_TIME(disable_after);
    MERGE_TIME(secret_grace);
    c->max_payload = (add->max_payload != UNSET_SIZE) ? add->max_payload : base->max_payload;
    MERGE_INT(resolve);
    MERGE_PTR(supplier_api);
    MERGE_PTR(supplier_api_token);
    MERGE_INT(max_webhooks);
    MERGE_INT(trigger_rate);
    MERGE_TIME(retention);
    MERGE_PTR(operator_url);
    MERGE_PTR(operator_secret);
    c->store = NULL;                    /* runtime: made per child */
    c->lists = NULL;                    /* runtime: made per child */
    c->handler_locations = NULL;        /* runtime: found after the merge */
    c->s = add->s;
    return c;
}

void *owh_config_dir_create(apr_pool_t *p, char *dir)
{
    owh_dir_conf_t *c = apr_pcalloc(p, sizeof(*c));
    if (dir) {
        /* routes are relative to the <Location>: strip one trailing slash */
        apr_size_t n = strlen(dir);
        c->location = (n > 1 && dir[n - 1] == '/') ? apr_pstrndup(p, dir, n - 1) : apr_pstrdup(p, dir);
    }
    c->max_body = -1;
    c->auth = OWH_AUTH_UNSET;
    return c;
}

/* The innermost <Location> wins for each setting it sets. */
void *owh_config_dir_merge(apr_pool_t *p, void *basev, void *addv)
{
    owh_dir_conf_t *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));
    MERGE_PTR(location);
    c->max_body = (add->max_body != -1) ? add->max_body : base->max_body;
    c->auth = (add->auth != OWH_AUTH_UNSET) ? add->auth : base->auth;
    return c;
}

/* ---- defaults and cross-field checks ------------------------------------- */
static apr_status_t finalize_one(owh_srv_conf_t *c, server_rec *s, apr_pool_t *p)
{
    if (!c->conninfo) c->conninfo = DEF_CONNINFO;
    if (c->pool_max == OWH_UNSET_INT) c->pool_max = DEF_POOL_MAX;
    if (c->pool_keep == OWH_UNSET_INT) c->pool_keep = c->pool_max < DEF_POOL_KEEP ? c->pool_max : DEF_POOL_KEEP;
    if (c->pool_ttl == UNSET_TIME) c->pool_ttl = DEF_POOL_TTL;
    if (c->pool_wait == UNSET_TIME) c->pool_wait = DEF_POOL_WAIT;
    if (c->list_cache_size == UNSET_SIZE) c->list_cache_size = DEF_LIST_CACHE_SIZE;
    if (c->connect_timeout == OWH_UNSET_INT) c->connect_timeout = DEF_CONNECT_TIMEOUT;
    if (c->dispatcher == OWH_UNSET_INT) c->dispatcher = DEF_DISPATCHER;
    /* Without a dispatcher nobody hears of changes made elsewhere (another
     * host, the CLI, SQL): lists are read each time unless a TTL is set. */
    if (c->list_cache_ttl == UNSET_TIME) c->list_cache_ttl = c->dispatcher ? DEF_LIST_CACHE_TTL : 0;
    if (c->migrate == OWH_UNSET_INT) c->migrate = DEF_MIGRATE;
    if (c->dispatchers == OWH_UNSET_INT) c->dispatchers = DEF_DISPATCHERS;
    if (!c->retry_schedule) {
        c->retry_schedule = DEF_RETRY_SCHEDULE;
        owh_config_parse_durations(&c->retry_delays, DEF_RETRY_SCHEDULE, p);
    }
    if (c->deliver_connect_timeout == UNSET_TIME) c->deliver_connect_timeout = DEF_DELIVER_CONNECT;
    if (c->deliver_timeout == UNSET_TIME) c->deliver_timeout = DEF_DELIVER_TIMEOUT;
    if (c->max_concurrency == OWH_UNSET_INT) c->max_concurrency = DEF_MAX_CONCURRENCY;
    if (c->max_per_host == OWH_UNSET_INT) c->max_per_host = DEF_MAX_PER_HOST;
    if (c->batch_size == OWH_UNSET_INT) c->batch_size = DEF_BATCH_SIZE;
    if (c->lease == UNSET_TIME) c->lease = DEF_LEASE;
    if (c->poll_interval == UNSET_TIME) c->poll_interval = DEF_POLL_INTERVAL;
    if (c->response_cap == UNSET_SIZE) c->response_cap = DEF_RESPONSE_CAP;
    if (c->webhook_concurrency == OWH_UNSET_INT) c->webhook_concurrency = DEF_WEBHOOK_CONCURRENCY;
    if (c->webhook_rate == OWH_UNSET_INT) c->webhook_rate = DEF_WEBHOOK_RATE;
    if (c->max_retry_after == UNSET_TIME) c->max_retry_after = DEF_MAX_RETRY_AFTER;
    if (c->disable_after == UNSET_TIME) c->disable_after = DEF_DISABLE_AFTER;
    if (c->secret_grace == UNSET_TIME) c->secret_grace = DEF_SECRET_GRACE;
    if (c->max_payload == UNSET_SIZE) c->max_payload = DEF_MAX_PAYLOAD;
    if (c->resolve == OWH_UNSET_INT) c->resolve = DEF_RESOLVE;
    if (c->max_webhooks == OWH_UNSET_INT) c->max_webhooks = DEF_MAX_WEBHOOKS;
    if (c->trigger_rate == OWH_UNSET_INT) c->trigger_rate = DEF_TRIGGER_RATE;
    if (c->retention == UNSET_TIME) c->retention = DEF_RETENTION;
    /* supplier_api, supplier_api_token, operator_url, operator_secret: default NULL (none) */

    if (c->pool_keep > c->pool_max) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, OWHLOGNO(00101)
                     "OctoWebhooksPoolKeep (%d) is larger than OctoWebhooksPoolMax (%d) in %s:%d",
                     c->pool_keep, c->pool_max, s->defn_name ? s->defn_name : "main server",
                     s->defn_line_number);
        return APR_EINVAL;
    }
    if (c->deliver_connect_timeout > c->deliver_timeout) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, OWHLOGNO(00102)
                     "OctoWebhooksDeliveryConnectTimeout is longer than OctoWebhooksDeliveryTimeout");
        return APR_EINVAL;
    }
    if (c->resolve && !c->supplier_api) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, OWHLOGNO(00104)
                     "OctoWebhooksResolve needs OctoWebhooksSupplierApi: where should objects be fetched?");
        return APR_EINVAL;
    }
    if (c->lease <= c->deliver_timeout) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, OWHLOGNO(00103)
                     "OctoWebhooksLease must be longer than OctoWebhooksDeliveryTimeout, "
                     "or a slow attempt would be claimed twice");
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t owh_config_finalize(server_rec *s, apr_pool_t *p, apr_pool_t *plog)
{
    apr_status_t rv = APR_SUCCESS;
    for (; s; s = s->next) {
        owh_srv_conf_t *c = owh_config_srv_get(s);
        c->s = s;
        if (finalize_one(c, s, p) != APR_SUCCESS) rv = APR_EINVAL;
    }
    return rv;
}

/* ---- where the handler is set ------------------------------------------- */
static void add_location(server_rec *s, const char *path, apr_pool_t *p)
{
    owh_srv_conf_t *sc = owh_config_srv_get(s);
    int i;
    if (!sc->handler_locations) sc->handler_locations = apr_array_make(p, 2, sizeof(const char *));
    for (i = 0; i < sc->handler_locations->nelts; ++i)
        if (!strcmp(APR_ARRAY_IDX(sc->handler_locations, i, const char *), path)) return;
    APR_ARRAY_PUSH(sc->handler_locations, const char *) = path;
}

/* "<Location /octo/>" -> "/octo" (args are "/octo/>", maybe quoted); NULL for
 * a regex (<Location ~ ...>): its base cannot be known, see the handler. */
static const char *location_path(const ap_directive_t *n, apr_pool_t *p)
{
    const char *args = n->args;
    char *path;
    apr_size_t len;
    path = ap_getword_conf(p, &args);
    len = strlen(path);
    if (len && path[len - 1] == '>') path[--len] = '\0';
    if (len >= 2 && (path[0] == '"' || path[0] == '\'') && path[len - 1] == path[0]) {
        path[--len] = '\0';
        ++path;
        --len;
    }
    if (!len || *path != '/') return NULL;
    while (len > 1 && path[len - 1] == '/') path[--len] = '\0';
    return len == 1 ? "" : path;        /* <Location />: routes from the root */
}

static int sets_our_handler(const ap_directive_t *n, apr_pool_t *p)
{
    for (n = n->first_child; n; n = n->next)
        if (!strcasecmp(n->directive, "SetHandler")) {
            const char *args = n->args;
            if (!strcasecmp(ap_getword_conf(p, &args), "octo-webhooks")) return 1;
        }
    return 0;
}

static void walk_tree(const ap_directive_t *n, server_rec *all, server_rec *only, apr_pool_t *p)
{
    for (; n; n = n->next) {
        if (!strcasecmp(n->directive, "<VirtualHost")) {
            server_rec *x;
            for (x = all->next; x; x = x->next)
                if (x->defn_name && n->filename && !strcmp(x->defn_name, n->filename)
                    && x->defn_line_number == (unsigned)n->line_num) break;
            if (x) walk_tree(n->first_child, all, x, p);
        }
        else if (!strcasecmp(n->directive, "<Location") && sets_our_handler(n, p)) {
            const char *path = location_path(n, p);
            server_rec *x;
            if (!path) continue;
            if (only) add_location(only, path, p);
            else for (x = all; x; x = x->next) add_location(x, path, p);
        }
        else if (n->first_child)
            walk_tree(n->first_child, all, only, p);
    }
}

void owh_config_find_handler_locations(server_rec *s, apr_pool_t *p)
{
    server_rec *x;
    for (x = s; x; x = x->next) owh_config_srv_get(x)->handler_locations = NULL;
    walk_tree(ap_conftree, s, NULL, p);
    for (x = s; x; x = x->next) {
        owh_srv_conf_t *sc = owh_config_srv_get(x);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, x, OWHLOGNO(00121) "%s:%u: routes resolve under %s",
                     x->defn_name ? x->defn_name : "main server", x->defn_line_number,
                     sc->handler_locations && sc->handler_locations->nelts
                     ? apr_array_pstrcat(p, sc->handler_locations, ' ') : "(no <Location> sets the handler)");
    }
}

apr_off_t owh_config_max_body(const owh_dir_conf_t *dc)
{
    return dc->max_body == -1 ? DEF_MAX_BODY : dc->max_body;
}
