/* test_metrics.c — the shared counters of src/owh_metrics.c: bucket edges,
 * attempts not sent, dispatcher slots (restarts, liveness), and one segment
 * per parent across a second init (a graceful restart). */
#include <apr_general.h>
#include <apr_atomic.h>
#include <unistd.h>
#include <sys/wait.h>

#include "tap.h"
#include "../../src/owh_metrics.h"

int main(void)
{
    apr_pool_t *p;
    owh_metrics_t *first;
    apr_uint64_t in_buckets = 0;
    int a, b, i;
    pid_t dead;

    (void)tap_is_str;
    apr_initialize();
    p = tap_pool(NULL, "test_metrics");
    owh_metrics_attempt(OWH_ATTEMPT_SUCCESS, 1, 1000);      /* before init: a no-op, no crash */
    tap_ok(owh_metrics_init(p) == APR_SUCCESS, "init makes the segment");
    first = owh_metrics;
    owh_metrics_attempt(OWH_ATTEMPT_SUCCESS, 1, apr_time_from_msec(3));
    owh_metrics_attempt(OWH_ATTEMPT_SUCCESS, 1, apr_time_from_msec(5));     /* on the edge: le="0.005" */
    owh_metrics_attempt(OWH_ATTEMPT_HTTP_ERROR, 1, apr_time_from_msec(40));
    owh_metrics_attempt(OWH_ATTEMPT_TRANSPORT_ERROR, 1, apr_time_from_sec(31));   /* past the last bound */
    owh_metrics_attempt(OWH_ATTEMPT_REFUSED, 0, 0);                         /* never sent */
    tap_ok(owh_metrics->buckets[0] == 2, "3 ms and 5 ms fall in le=0.005");
    tap_ok(owh_metrics->buckets[3] == 1, "40 ms in le=0.05");
    for (i = 0; i < OWH_METRICS_BUCKETS; ++i) in_buckets += owh_metrics->buckets[i];
    tap_ok(in_buckets == 3 && owh_metrics->duration_count == 4, "31 s only in +Inf (count 4, 3 in buckets)");
    tap_ok(owh_metrics->attempts[OWH_ATTEMPT_REFUSED] == 1, "a refused attempt is counted");
    tap_ok(owh_metrics->duration_sum_us == (apr_uint64_t)apr_time_from_msec(48) + apr_time_from_sec(31),
           "the sum has the sent ones only");

    a = owh_metrics_slot_take("one");
    b = owh_metrics_slot_take("two");
    tap_ok(a >= 0 && b >= 0 && a != b, "two slots");
    owh_metrics_slot_started(a, (apr_uint32_t)getpid());
    dead = fork();
    if (!dead) _exit(0);
    waitpid(dead, NULL, 0);
    owh_metrics_slot_started(b, (apr_uint32_t)dead);
    tap_ok(owh_metrics_dispatchers() == 1, "only the live process counts as a dispatcher");
    owh_metrics_slot_ended(a, 1);
    owh_metrics_slot_ended(b, 0);
    tap_ok(owh_metrics->restarts == 1, "a respawn is a restart, a stop is not");
    tap_ok(owh_metrics_dispatchers() == 0, "ended slots are not live");
    owh_metrics_slot_free(a);
    tap_ok(owh_metrics_slot_take("three") == a, "a freed slot is taken again");

    owh_metrics_self = b;
    owh_metrics_claimed(5, 7);
    tap_ok(owh_metrics->slots[b].claims == 1 && owh_metrics->slots[b].inflight == 7
           && owh_metrics->slots[b].last_claim > 0, "a claim sets the slot's last claim and in flight");
    owh_metrics_claimed(0, 3);
    tap_ok(owh_metrics->slots[b].claims == 1 && owh_metrics->slots[b].inflight == 3, "an empty claim is no claim");

    owh_metrics = NULL;                 /* the module reloaded: same parent, same segment */
    tap_ok(owh_metrics_init(p) == APR_SUCCESS && owh_metrics == first && owh_metrics->restarts == 1,
           "a second init finds the same segment, counts kept");
    apr_pool_destroy(p);
    apr_terminate();
    return tap_done();
}
