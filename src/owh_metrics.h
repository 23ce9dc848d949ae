/* owh_metrics.h — owns this host's operational counters: one anonymous
 * shared memory segment (apr_shm) made by the httpd parent at post_config,
 * before it forks the dispatchers and the children, and kept for the life of
 * the parent (graceful restarts keep the counts). Dispatchers write attempt
 * outcomes, durations and their slot (pid, start, last claim, in flight);
 * the parent writes restarts and clears slots of dead dispatchers; httpd
 * children count their database pool waits and read it all for /metrics and
 * /status. Lock-free: every field is written with apr_atomic or by its one
 * owner. APR only. */
#ifndef OWH_METRICS_H
#define OWH_METRICS_H

#include <apr_pools.h>
#include <apr_time.h>

#define OWH_METRICS_SLOTS    64
#define OWH_METRICS_BUCKETS  12

typedef enum {
    OWH_ATTEMPT_SUCCESS,            /* 2xx */
    OWH_ATTEMPT_HTTP_ERROR,         /* any other HTTP answer */
    OWH_ATTEMPT_TRANSPORT_ERROR,    /* no answer: DNS, connect, TLS, timeout, failed fetch */
    OWH_ATTEMPT_REFUSED,            /* not sent: SSRF guard, unbuildable or oversized payload */
    OWH_ATTEMPT_KINDS
} owh_attempt_kind_e;

extern const char *const owh_metrics_kind_names[OWH_ATTEMPT_KINDS];
/* Upper bounds of the attempt duration histogram, seconds. */
extern const double owh_metrics_bucket_bounds[OWH_METRICS_BUCKETS];

/* One dispatcher process; pid 0: free. */
typedef struct owh_metrics_slot_t {
    volatile apr_uint32_t pid;
    volatile apr_uint32_t inflight;     /* claimed: running, waiting for a host or a fetch */
    volatile apr_uint64_t started;      /* apr_time_t */
    volatile apr_uint64_t last_claim;   /* apr_time_t of the last claim that got work, 0: none */
    volatile apr_uint64_t claims;       /* claims that got work */
    volatile apr_uint64_t pruned;       /* deliveries it pruned */
    char group[64];                     /* its database's server name */
} owh_metrics_slot_t;

typedef struct owh_metrics_t {
    volatile apr_uint64_t attempts[OWH_ATTEMPT_KINDS];
    volatile apr_uint64_t buckets[OWH_METRICS_BUCKETS];  /* per bucket, not cumulative */
    volatile apr_uint64_t duration_count;
    volatile apr_uint64_t duration_sum_us;
    volatile apr_uint64_t restarts;
    volatile apr_uint64_t pool_acquires;    /* API database pool, all children */
    volatile apr_uint64_t pool_waits;       /* acquires that found every connection taken */
    volatile apr_uint64_t pool_timeouts;    /* waits that ended in 503 */
    volatile apr_uint64_t list_hits;        /* GET lists answered from a child's cache */
    volatile apr_uint64_t list_misses;      /* GET lists read from the database (cache on) */
    volatile apr_uint64_t notices_sent;
    volatile apr_uint64_t notices_failed;   /* attempts of notices that failed */
    volatile apr_uint64_t prune_rounds;     /* prune batches this host ran */
    volatile apr_uint64_t pruned_deliveries;
    volatile apr_uint64_t pruned_events;
    apr_uint64_t created;                   /* apr_time_t the segment was made */
    char host[256];
    owh_metrics_slot_t slots[OWH_METRICS_SLOTS];
} owh_metrics_t;

/* This process's view of the segment: NULL before owh_metrics_init (the
 * recording calls below are then no-ops). */
extern owh_metrics_t *owh_metrics;

/* Parent, post_config: makes the segment once per parent (kept in
 * process_pool across graceful restarts). */
apr_status_t owh_metrics_init(apr_pool_t *process_pool);

/* Parent: a free slot for a dispatcher (-1: none), and its lifecycle. */
int owh_metrics_slot_take(const char *group);
void owh_metrics_slot_started(int slot, apr_uint32_t pid);
void owh_metrics_slot_ended(int slot, int respawning);
void owh_metrics_slot_free(int slot);       /* its dispatchers are stopped (pconf cleanup) */
/* Child: the slot this dispatcher writes (set by the parent before fork). */
extern int owh_metrics_self;

/* Dispatcher. */
void owh_metrics_attempt(owh_attempt_kind_e kind, int sent, apr_interval_time_t duration);
void owh_metrics_claimed(int got, int inflight);
void owh_metrics_inflight(int inflight);
void owh_metrics_notice(int sent);
void owh_metrics_pruned(int deliveries, int events);

/* httpd children: the API's database pool. */
void owh_metrics_pool(int waited, int timed_out);
/* Child: a GET list answered from the list cache (hit) or read (miss). */
void owh_metrics_list(int hit);

/* Live dispatchers (slots whose process exists). */
int owh_metrics_dispatchers(void);

#endif
