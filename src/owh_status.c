/* owh_status.c — /metrics, /status and the mod_status section (see
 * owh_status.h). Two sources: this host's shared counters (owh_metrics: no
 * I/O) and one call of octo_webhooks.stats() through the store
 * (owh_store_stats: this file sends no SQL) for the queue (index probes
 * under a cap and planner estimates: no count(*) over a big table). When
 * the database is away the host's counters are still served, with
 * octo_webhooks_database_up 0. All memory in r->pool. */
#include <stddef.h>
#include <apr_strings.h>
#include <apr_atomic.h>
#include <httpd.h>
#include <http_config.h>
#include <http_protocol.h>
#include <http_log.h>
#include <mod_status.h>

#include "owh_status.h"
#include "owh_config.h"
#include "owh_store.h"
#include "owh_store_ops.h"
#include "owh_metrics.h"
#include "owh_json.h"
#include "owh_log.h"

APLOG_USE_MODULE(octo_webhooks);

static const char *const EVENT_TYPES[] = {
    "booking_update", "order_update", "availability_update", "product_update", NULL
};

/* The queue's figures, or NULL when the database cannot answer. */
static json_t *queue_stats(request_rec *r)
{
    owh_srv_conf_t *sc = owh_config_srv_get(r->server);
    owh_db_t *db;
    const char *text;
    json_error_t jerr;
    if (!sc->store || owh_store_acquire(&db, sc->store, r->pool) != APR_SUCCESS) return NULL;
    if (owh_store_stats(db, &text, r->pool) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, OWHLOGNO(00701)
                      "stats: %s", db->errmsg ? db->errmsg : "unknown error");
        return NULL;
    }
    return owh_json_pool_own(json_loads(text, 0, &jerr), r->pool);
}

static double num(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b) v = json_object_get(v, b);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *iso(apr_uint64_t t, apr_pool_t *p)
{
    apr_time_exp_t x;
    if (!t) return NULL;
    apr_time_exp_gmt(&x, (apr_time_t)t);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", x.tm_year + 1900, x.tm_mon + 1, x.tm_mday,
                        x.tm_hour, x.tm_min, x.tm_sec, x.tm_usec / 1000);
}

#define R64(f) apr_atomic_read64(&owh_metrics->f)

/* ---- Prometheus ----------------------------------------------------------- */
static void metric(request_rec *r, const char *name, const char *type, const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A gauge of one value: its HELP, TYPE and sample (decimals: 0 counts, 3 seconds). */
static void gauge(request_rec *r, const char *name, const char *help, double value, int decimals)
{
    metric(r, name, "gauge", help);
    ap_rprintf(r, "%s %.*f\n", name, decimals, value);
}

/* The host's plain counters (owh_metrics_t fields), in the order scraped. */
static const struct { const char *name, *help; size_t off; } counters[] = {
#define C(name, help, field) { name, help, offsetof(owh_metrics_t, field) }
    C("octo_webhooks_dispatcher_restarts_total",
      "Dispatchers respawned after dying.", restarts),
    C("octo_webhooks_db_pool_acquires_total",
      "API requests that took a database connection.", pool_acquires),
    C("octo_webhooks_db_pool_waits_total",
      "API requests that found every connection of their child's pool taken.", pool_waits),
    C("octo_webhooks_db_pool_timeouts_total",
      "API requests answered 503 after OctoWebhooksPoolWait.", pool_timeouts),
    C("octo_webhooks_api_list_cache_hits_total",
      "GET lists answered from a child's list cache (no database round trip).", list_hits),
    C("octo_webhooks_api_list_cache_misses_total",
      "GET lists read from the database while the list cache is on (then kept).", list_misses),
    C("octo_webhooks_notices_sent_total",
      "Operator notices delivered by this host.", notices_sent),
    C("octo_webhooks_notice_failures_total",
      "Failed attempts of operator notices.", notices_failed),
    C("octo_webhooks_prune_batches_total",
      "Prune batches this host ran.", prune_rounds),
    C("octo_webhooks_pruned_deliveries_total",
      "Deliveries this host pruned.", pruned_deliveries),
    C("octo_webhooks_pruned_events_total",
      "Events this host pruned.", pruned_events),
#undef C
};

/* A counter of one value: its HELP, TYPE and sample. */
static void counter(request_rec *r, const char *name, const char *help, apr_uint64_t value)
{
    metric(r, name, "counter", help);
    ap_rprintf(r, "%s %" APR_UINT64_T_FMT "\n", name, value);
}

static int send_metrics(request_rec *r)
{
    json_t *q = queue_stats(r);
    owh_metrics_t *m = owh_metrics;
    int i;

    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) return OK;

    gauge(r, "octo_webhooks_database_up", "Whether the database answered this scrape.", q ? 1 : 0, 0);
    if (q) {
        static const char *const st[] = { "pending", "succeeded", "failed", NULL };
        metric(r, "octo_webhooks_deliveries", "gauge",
               "Deliveries by status (pending and failed exact up to 1000, succeeded exact up to "
               "20000 rows in all; planner estimates above).");
        for (i = 0; st[i]; ++i)
            ap_rprintf(r, "octo_webhooks_deliveries{status=\"%s\"} %.0f\n", st[i], num(q, "deliveries", st[i]));
        gauge(r, "octo_webhooks_deliveries_due",
              "Pending deliveries due now (exact up to 1000, estimated above).", num(q, "due", NULL), 0);
        gauge(r, "octo_webhooks_oldest_due_seconds",
              "Age of the oldest due delivery, 0 when none is due.", num(q, "oldestDueSeconds", NULL), 3);
        gauge(r, "octo_webhooks_events_unrouted",
              "Events emitted and not yet routed to their webhooks (exact up to 1000).", num(q, "unrouted", NULL), 0);
        gauge(r, "octo_webhooks_oldest_unrouted_seconds",
              "Age of the oldest event not yet routed, 0 when none waits.", num(q, "oldestUnroutedSeconds", NULL), 3);
        metric(r, "octo_webhooks_webhooks", "gauge", "Webhooks by state.");
        ap_rprintf(r, "octo_webhooks_webhooks{state=\"active\"} %.0f\n", num(q, "webhooks", "active"));
        ap_rprintf(r, "octo_webhooks_webhooks{state=\"disabled\"} %.0f\n", num(q, "webhooks", "disabled"));
        metric(r, "octo_webhooks_events_total", "counter",
               "Events emitted, by type (tallied by the pruning round: up to a minute late).");
        for (i = 0; EVENT_TYPES[i]; ++i)
            ap_rprintf(r, "octo_webhooks_events_total{type=\"%s\"} %.0f\n", EVENT_TYPES[i],
                       num(q, "events", EVENT_TYPES[i]));
        gauge(r, "octo_webhooks_notices_pending", "Operator notices waiting to be sent.",
              num(q, "notices", "pending"), 0);
    }
    if (!m) return OK;
    metric(r, "octo_webhooks_attempts_total", "counter", "Delivery attempts of this host's dispatchers, by outcome.");
    for (i = 0; i < OWH_ATTEMPT_KINDS; ++i)
        ap_rprintf(r, "octo_webhooks_attempts_total{outcome=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   owh_metrics_kind_names[i], R64(attempts[i]));
    metric(r, "octo_webhooks_attempt_duration_seconds", "histogram",
           "Duration of the delivery attempts that were sent, this host.");
    {
        apr_uint64_t cum = 0, count = R64(duration_count);
        for (i = 0; i < OWH_METRICS_BUCKETS; ++i) {
            cum += R64(buckets[i]);
            ap_rprintf(r, "octo_webhooks_attempt_duration_seconds_bucket{le=\"%g\"} %" APR_UINT64_T_FMT "\n",
                       owh_metrics_bucket_bounds[i], cum);
        }
        if (count < cum) count = cum;   /* read while a dispatcher wrote */
        ap_rprintf(r, "octo_webhooks_attempt_duration_seconds_bucket{le=\"+Inf\"} %" APR_UINT64_T_FMT "\n", count);
        ap_rprintf(r, "octo_webhooks_attempt_duration_seconds_sum %.6f\n",
                   (double)R64(duration_sum_us) / APR_USEC_PER_SEC);
        ap_rprintf(r, "octo_webhooks_attempt_duration_seconds_count %" APR_UINT64_T_FMT "\n", count);
    }
    gauge(r, "octo_webhooks_dispatchers", "Live dispatcher processes of this host.", owh_metrics_dispatchers(), 0);
    for (i = 0; i < (int)(sizeof(counters) / sizeof(counters[0])); ++i)
        counter(r, counters[i].name, counters[i].help,
                apr_atomic_read64((volatile apr_uint64_t *)((char *)owh_metrics + counters[i].off)));
    return OK;
}

/* ---- JSON ----------------------------------------------------------------- */
static json_t *dispatchers_json(apr_pool_t *p)
{
    json_t *a = json_array();
    int i;
    for (i = 0; owh_metrics && i < OWH_METRICS_SLOTS; ++i) {
        owh_metrics_slot_t *sl = &owh_metrics->slots[i];
        apr_uint32_t pid = apr_atomic_read32(&sl->pid);
        const char *last;
        json_t *d;
        if (!pid || !sl->group[0]) continue;
        last = iso(sl->last_claim, p);
        d = json_pack("{s:i, s:s, s:s, s:s?, s:o, s:i, s:I, s:I}",
                      "pid", (int)pid, "host", owh_metrics->host, "server", sl->group,
                      "startedAt", iso(sl->started, p), "lastClaimAt", last ? json_string(last) : json_null(),
                      "inFlight", (int)apr_atomic_read32(&sl->inflight),
                      "claims", (json_int_t)apr_atomic_read64(&sl->claims),
                      "prunedDeliveries", (json_int_t)apr_atomic_read64(&sl->pruned));
        if (d) json_array_append_new(a, d);
    }
    return a;
}

static json_t *status_json(request_rec *r, json_t *q)
{
    json_t *o = owh_json_pool_own(json_object(), r->pool), *a;
    owh_metrics_t *m = owh_metrics;
    int i;
    json_object_set_new(o, "host", json_string(m ? m->host : ""));
    json_object_set_new(o, "time", json_string(iso(apr_time_now(), r->pool)));
    json_object_set_new(o, "databaseUp", json_boolean(q != NULL));
    json_object_set(o, "queue", q ? q : json_null());
    if (!m) return o;
    json_object_set_new(o, "dispatchers", dispatchers_json(r->pool));
    json_object_set_new(o, "dispatcherRestarts", json_integer((json_int_t)R64(restarts)));
    a = json_object();
    for (i = 0; i < OWH_ATTEMPT_KINDS; ++i)
        json_object_set_new(a, owh_metrics_kind_names[i], json_integer((json_int_t)R64(attempts[i])));
    json_object_set_new(o, "attempts", a);
    json_object_set_new(o, "attemptDuration", json_pack("{s:I, s:f}", "count", (json_int_t)R64(duration_count),
                        "sumSeconds", (double)R64(duration_sum_us) / APR_USEC_PER_SEC));
    json_object_set_new(o, "dbPool", json_pack("{s:I, s:I, s:I}", "acquires", (json_int_t)R64(pool_acquires),
                        "waits", (json_int_t)R64(pool_waits), "timeouts", (json_int_t)R64(pool_timeouts)));
    json_object_set_new(o, "listCache", json_pack("{s:I, s:I}", "hits", (json_int_t)R64(list_hits),
                        "misses", (json_int_t)R64(list_misses)));
    json_object_set_new(o, "notices", json_pack("{s:I, s:I}", "sent", (json_int_t)R64(notices_sent),
                        "failedAttempts", (json_int_t)R64(notices_failed)));
    json_object_set_new(o, "pruned", json_pack("{s:I, s:I, s:I}", "batches", (json_int_t)R64(prune_rounds),
                        "deliveries", (json_int_t)R64(pruned_deliveries),
                        "events", (json_int_t)R64(pruned_events)));
    return o;
}

static int send_status(request_rec *r)
{
    json_t *o = status_json(r, queue_stats(r));
    apr_size_t len = 0;
    const char *body = owh_json_dump(o, &len, r->pool);
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, len);
    if (!r->header_only) ap_rwrite(body, (int)len, r);
    return OK;
}

int owh_status_handle(request_rec *r)
{
    int metrics;
    if (!r->handler) return DECLINED;
    metrics = !strcmp(r->handler, OWH_METRICS_HANDLER);
    if (!metrics && strcmp(r->handler, OWH_STATUS_HANDLER)) return DECLINED;
    r->allowed = AP_METHOD_BIT << M_GET;
    if (r->method_number != M_GET) return HTTP_METHOD_NOT_ALLOWED;
    return metrics ? send_metrics(r) : send_status(r);
}

/* mod_status: with ExtendedStatus On, the dispatchers and the queue. */
int owh_status_hook(request_rec *r, int flags)
{
    json_t *q, *d;
    size_t i;
    if (!(flags & AP_STATUS_EXTENDED) || !owh_metrics) return OK;
    q = queue_stats(r);
    d = owh_json_pool_own(dispatchers_json(r->pool), r->pool);
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "OctoWebhooksDispatchers: %d\n", owh_metrics_dispatchers());
        if (q) {
            ap_rprintf(r, "OctoWebhooksPending: %.0f\n", num(q, "deliveries", "pending"));
            ap_rprintf(r, "OctoWebhooksDue: %.0f\n", num(q, "due", NULL));
            ap_rprintf(r, "OctoWebhooksOldestDueSeconds: %.3f\n", num(q, "oldestDueSeconds", NULL));
            ap_rprintf(r, "OctoWebhooksUnrouted: %.0f\n", num(q, "unrouted", NULL));
        }
        return OK;
    }
    ap_rputs("<hr>\n<h2>octo webhooks</h2>\n", r);
    if (q)
        ap_rprintf(r, "<p>pending %.0f, due %.0f, oldest due %.1f s, failed %.0f; webhooks active %.0f, "
                   "disabled %.0f</p>\n", num(q, "deliveries", "pending"), num(q, "due", NULL),
                   num(q, "oldestDueSeconds", NULL), num(q, "deliveries", "failed"),
                   num(q, "webhooks", "active"), num(q, "webhooks", "disabled"));
    else ap_rputs("<p>database unavailable</p>\n", r);
    ap_rputs("<table border=\"1\"><tr><th>pid</th><th>server</th><th>started</th><th>last claim</th>"
             "<th>in flight</th></tr>\n", r);
    for (i = 0; i < json_array_size(d); ++i) {
        json_t *x = json_array_get(d, i);
        const char *last = json_string_value(json_object_get(x, "lastClaimAt"));
        ap_rprintf(r, "<tr><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td></tr>\n",
                   (int)json_integer_value(json_object_get(x, "pid")),
                   ap_escape_html(r->pool, json_string_value(json_object_get(x, "server"))),
                   json_string_value(json_object_get(x, "startedAt")), last ? last : "-",
                   (int)json_integer_value(json_object_get(x, "inFlight")));
    }
    ap_rputs("</table>\n", r);
    return OK;
}
