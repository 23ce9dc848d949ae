/* owh_metrics.c — the shared counters (see owh_metrics.h). */
#include <apr_shm.h>
#include <apr_atomic.h>
#include <apr_strings.h>
#include <signal.h>
#include <errno.h>
#include <unistd.h>

#include "owh_metrics.h"

owh_metrics_t *owh_metrics;
int owh_metrics_self = -1;

const char *const owh_metrics_kind_names[OWH_ATTEMPT_KINDS] = {
    "success", "http_error", "transport_error", "refused"
};
const double owh_metrics_bucket_bounds[OWH_METRICS_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
};

static const char *const USERDATA_KEY = "owh_metrics_shm";

apr_status_t owh_metrics_init(apr_pool_t *process_pool)
{
    apr_shm_t *shm = NULL;
    apr_status_t rv;
    void *kept = NULL;

    apr_pool_userdata_get(&kept, USERDATA_KEY, process_pool);
    /* graceful restart: the same segment, unless this build's counters differ
     * (an upgraded module): then a new one, counts from zero */
    if (kept && apr_shm_size_get(kept) == sizeof(owh_metrics_t)) {
        owh_metrics = apr_shm_baseaddr_get(kept);
        return APR_SUCCESS;
    }
    /* anonymous: inherited across fork, gone with the last process using it */
    if ((rv = apr_shm_create(&shm, sizeof(owh_metrics_t), NULL, process_pool)) != APR_SUCCESS)
        return rv;
    owh_metrics = apr_shm_baseaddr_get(shm);
    memset(owh_metrics, 0, sizeof(*owh_metrics));
    owh_metrics->created = apr_time_now();
    gethostname(owh_metrics->host, sizeof(owh_metrics->host) - 1);
    apr_pool_userdata_set(shm, USERDATA_KEY, apr_pool_cleanup_null, process_pool);
    return APR_SUCCESS;
}

int owh_metrics_slot_take(const char *group)
{
    int i;
    if (!owh_metrics) return -1;
    for (i = 0; i < OWH_METRICS_SLOTS; ++i) {
        owh_metrics_slot_t *sl = &owh_metrics->slots[i];
        /* a slot is the parent's to hand out; an empty group marks it free */
        if (!sl->group[0]) {
            memset(sl, 0, sizeof(*sl));
            apr_cpystrn(sl->group, group && *group ? group : "-", sizeof(sl->group));
            return i;
        }
    }
    return -1;
}

void owh_metrics_slot_started(int slot, apr_uint32_t pid)
{
    owh_metrics_slot_t *sl;
    if (!owh_metrics || slot < 0) return;
    sl = &owh_metrics->slots[slot];
    sl->started = apr_time_now();
    sl->last_claim = 0;
    sl->inflight = 0;
    apr_atomic_set32(&sl->pid, pid);
}

void owh_metrics_slot_ended(int slot, int respawning)
{
    if (!owh_metrics || slot < 0) return;
    apr_atomic_set32(&owh_metrics->slots[slot].pid, 0);
    apr_atomic_set32(&owh_metrics->slots[slot].inflight, 0);
    if (respawning) apr_atomic_inc64(&owh_metrics->restarts);
}

void owh_metrics_slot_free(int slot)
{
    if (!owh_metrics || slot < 0) return;
    apr_atomic_set32(&owh_metrics->slots[slot].pid, 0);
    owh_metrics->slots[slot].group[0] = '\0';
}

static owh_metrics_slot_t *self_slot(void)
{
    return owh_metrics && owh_metrics_self >= 0 ? &owh_metrics->slots[owh_metrics_self] : NULL;
}

void owh_metrics_attempt(owh_attempt_kind_e kind, int sent, apr_interval_time_t duration)
{
    int b;
    double secs = (double)duration / APR_USEC_PER_SEC;
    if (!owh_metrics || kind < 0 || kind >= OWH_ATTEMPT_KINDS) return;
    apr_atomic_inc64(&owh_metrics->attempts[kind]);
    if (!sent) return;                      /* only attempts that went out have a duration */
    for (b = 0; b < OWH_METRICS_BUCKETS && secs > owh_metrics_bucket_bounds[b]; ++b)
        ;
    if (b < OWH_METRICS_BUCKETS) apr_atomic_inc64(&owh_metrics->buckets[b]);
    apr_atomic_add64(&owh_metrics->duration_sum_us, duration > 0 ? (apr_uint64_t)duration : 0);
    apr_atomic_inc64(&owh_metrics->duration_count);
}

void owh_metrics_claimed(int got, int inflight)
{
    owh_metrics_slot_t *sl = self_slot();
    if (!sl) return;
    if (got > 0) {
        sl->last_claim = apr_time_now();
        apr_atomic_inc64(&sl->claims);
    }
    apr_atomic_set32(&sl->inflight, inflight > 0 ? (apr_uint32_t)inflight : 0);
}

void owh_metrics_inflight(int inflight)
{
    owh_metrics_slot_t *sl = self_slot();
    if (sl) apr_atomic_set32(&sl->inflight, inflight > 0 ? (apr_uint32_t)inflight : 0);
}

void owh_metrics_notice(int sent)
{
    if (owh_metrics) apr_atomic_inc64(sent ? &owh_metrics->notices_sent : &owh_metrics->notices_failed);
}

void owh_metrics_pruned(int deliveries, int events)
{
    owh_metrics_slot_t *sl = self_slot();
    if (!owh_metrics) return;
    apr_atomic_inc64(&owh_metrics->prune_rounds);
    apr_atomic_add64(&owh_metrics->pruned_deliveries, deliveries);
    apr_atomic_add64(&owh_metrics->pruned_events, events);
    if (sl) apr_atomic_add64(&sl->pruned, deliveries);
}

void owh_metrics_pool(int waited, int timed_out)
{
    if (!owh_metrics) return;
    apr_atomic_inc64(&owh_metrics->pool_acquires);
    if (waited) apr_atomic_inc64(&owh_metrics->pool_waits);
    if (timed_out) apr_atomic_inc64(&owh_metrics->pool_timeouts);
}

void owh_metrics_list(int hit)
{
    if (owh_metrics) apr_atomic_inc64(hit ? &owh_metrics->list_hits : &owh_metrics->list_misses);
}

int owh_metrics_dispatchers(void)
{
    int i, n = 0;
    if (!owh_metrics) return 0;
    for (i = 0; i < OWH_METRICS_SLOTS; ++i) {
        pid_t pid = (pid_t)apr_atomic_read32(&owh_metrics->slots[i].pid);
        /* EPERM: it exists under another user */
        if (pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)) n++;
    }
    return n;
}
