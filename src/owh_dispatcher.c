/* owh_dispatcher.c — the dispatcher process's main loop (see owh_dispatch.h
 * for its rooms). In the child: listeners closed, privileges dropped to
 * httpd's User, parent death signalled (PR_SET_PDEATHSIG, set after the
 * drop) so a kill -9 of httpd leaves no orphan; a startup failure is logged
 * and exits with OWH_DISPATCHER_STARTUP_ERROR so the parent stops respawning.
 *
 * Delivery: at least once. A claim is a lease; claims and outcomes travel in
 * batches so the database sees few round trips; on SIGTERM unsent claims are
 * handed back at once. */
#include <apr_strings.h>
#include <apr_signal.h>
#include <apr_allocator.h>
#include <ap_listen.h>
#include <ap_mpm.h>
#include <mpm_common.h>
#include <curl/curl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "owh_dispatcher.h"
#include "owh_dispatch.h"
#include "owh_json.h"
#include "owh_log_httpd.h"

#define OWH_USER_AGENT "mod_octo_webhooks/" OWH_VERSION
#define STOP_GRACE      apr_time_from_msec(2000)   /* inside httpd's 3 s kill timeout */
#define FLUSH_AFTER     apr_time_from_msec(20)     /* outcomes wait at most this long */
#define BLOCKED_POLL    apr_time_from_msec(50)     /* due work held back by a cap: look again */

static volatile sig_atomic_t stop_requested;

/* Out of memory anywhere under the root pool: the parent respawns us and
 * the leases hand our claims to the next dispatcher. */
static int on_oom(int rv)
{
    static const char msg[] = "OWH00512: dispatcher: out of memory, exiting\n";
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) { /* nothing more to do */ }
    _exit(1);
    return rv;
}

static void on_stop(int sig)
{
    stop_requested = 1;
}


static void drop_db(loop_t *L)
{
    if (L->dbpool) apr_pool_destroy(L->dbpool);
    L->dbpool = NULL;
    L->db = NULL;
}

static int ensure_db(loop_t *L)
{
    apr_status_t rv;
    if (L->db && owh_store_usable(L->db)) return 1;
    drop_db(L);
    L->dbpool = owh_dsp_pool(L->pool, "owh_dsp_db");
    rv = owh_store_connect_schema(&L->db, L->sc->conninfo, L->sc->connect_timeout,
                                  L->sc->migrate ? OWH_SCHEMA_MIGRATE : OWH_SCHEMA_CHECK, L->dbpool);
    if (rv == APR_SUCCESS)
        rv = owh_queue_listen(L->db, L->dbpool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, L->s, OWHLOGNO(00503)
                     "dispatcher: database unavailable: %s",
                     L->db && L->db->errmsg ? L->db->errmsg : "connection failed");
        drop_db(L);
        return 0;
    }
    return 1;
}

/* Writes recorded outcomes; kept in memory (and retried) while the database
 * is away. Unless forced, waits for half a batch or FLUSH_AFTER. */
static int flush_results(loop_t *L, int force)
{
    apr_pool_t *tmp;
    int wrote = 0;
    if (!L->results->nelts || !L->db) return 0;
    if (!force && L->results->nelts < L->sc->batch_size / 2 && owh_deliver_running(L->deliver)
        && apr_time_now() - L->results_since < FLUSH_AFTER)
        return 0;
    tmp = owh_dsp_pool(L->pool, "owh_dsp_tmp");
    if (owh_queue_complete(L->db, L->results, L->owner, L->sc->disable_after, tmp) == APR_SUCCESS) {
        apr_pool_clear(L->respool);
        L->results = apr_array_make(L->respool, 64, sizeof(owh_result_t *));
        wrote = 1;
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00504)
                     "dispatcher: recording %d outcomes failed: %s", L->results->nelts,
                     L->db->errmsg ? L->db->errmsg : "unknown error");
        if (L->db->broken) drop_db(L);
    }
    apr_pool_destroy(tmp);
    return wrote;
}

/* Gives a claimed job back to the queue (released with the batch's others). */
static void defer_job(loop_t *L, apr_array_header_t *defer, owh_job_t *src, job_t *j)
{
    APR_ARRAY_PUSH(defer, owh_job_t *) = src;
    L->claimed--;
    apr_pool_destroy(j->pool);
}

/* Claims due work up to the free capacity; returns 1 if the batch was full. */
static int claim(loop_t *L, apr_interval_time_t *next_due)
{
    apr_pool_t *tmp;
    apr_array_header_t *jobs, *defer;
    int limit = L->sc->max_concurrency - L->claimed, i, full;
    owh_claim_params_t cp;
    owh_claim_info_t info;

    if (limit > L->sc->batch_size) limit = L->sc->batch_size;
    if (limit <= 0 || !L->db) return 0;
    tmp = owh_dsp_pool(L->pool, "owh_dsp_tmp");
    jobs = apr_array_make(tmp, limit, sizeof(owh_job_t *));
    defer = apr_array_make(tmp, 8, sizeof(owh_job_t *));
    cp.limit = limit;
    cp.lease = L->sc->lease;
    cp.owner = L->owner;
    cp.per_webhook = L->sc->webhook_concurrency;
    cp.rate = L->sc->webhook_rate;
    if (owh_queue_claim(L->db, &cp, jobs, &info, tmp) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, L->s, OWHLOGNO(00505)
                     "dispatcher: claim failed: %s", L->db->errmsg ? L->db->errmsg : "unknown error");
        if (L->db->broken) drop_db(L);
        apr_pool_destroy(tmp);
        return 0;
    }
    full = jobs->nelts == limit;
    L->held = info.held;
    for (i = 0; i < jobs->nelts; ++i) {
        owh_job_t *src = APR_ARRAY_IDX(jobs, i, owh_job_t *);
        job_t *j = owh_jobs_prepare(L, src);
        L->claimed++;
        if (!j->wh || j->unsendable) owh_jobs_dispatch(L, j);      /* recorded as failed */
        else if (!j->body) {
            /* A slow supplier API holds at most half the slots: the rest of
             * the work (other events, other webhooks) keeps flowing. */
            if (L->resolving >= (L->sc->max_concurrency + 1) / 2
                && !apr_hash_get(L->fetches, j->view_key, APR_HASH_KEY_STRING))
                defer_job(L, defer, src, j);
            else owh_resolve_attach(L, j);
        }
        else if (*owh_jobs_host_count(L, j->host) < L->sc->max_per_host) owh_jobs_start(L, j);
        else {
            /* A slow host keeps at most one more round waiting here; the rest
             * goes back to the queue so other hosts keep flowing. */
            int queued = 0, k;
            for (k = 0; k < L->waiting->nelts; ++k)
                queued += !strcmp(APR_ARRAY_IDX(L->waiting, k, job_t *)->host, j->host);
            if (queued < L->sc->max_per_host) APR_ARRAY_PUSH(L->waiting, job_t *) = j;
            else defer_job(L, defer, src, j);
        }
    }
    if (defer->nelts) owh_queue_release(L->db, defer, apr_time_from_msec(500), tmp);
    /* Due work a cap held back: look again shortly (our own completions, or
     * another host's unparking NOTIFY, wake us sooner). */
    if (!full) {
        if (info.held) *next_due = BLOCKED_POLL;
        else if (info.next_in >= 0) *next_due = info.next_in;
    }
    apr_pool_destroy(tmp);
    return full;
}

static void drain_notifications(loop_t *L, int *wake)
{
    if (!L->db) return;
    if (owh_queue_notified(L->db, wake) != APR_SUCCESS) drop_db(L);
}

static json_t *default_supplier(owh_srv_conf_t *sc, apr_pool_t *p)
{
    json_t *o = owh_json_pool_own(json_object(), p);
    if (sc->supplier_id) json_object_set_new(o, "id", json_string(sc->supplier_id));
    if (sc->supplier_name) json_object_set_new(o, "name", json_string(sc->supplier_name));
    if (sc->supplier_reference) json_object_set_new(o, "reference", json_string(sc->supplier_reference));
    if (sc->supplier_website) json_object_set_new(o, "website", json_string(sc->supplier_website));
    return o;
}

static int dispatch_loop(loop_t *L)
{
    apr_time_t next_poll = 0, stop_deadline = 0;
    apr_interval_time_t backoff = apr_time_from_msec(200);
    int wake = 1, more = 0, free_slots;
    int min_claim = L->sc->batch_size < L->sc->max_concurrency ? L->sc->batch_size : L->sc->max_concurrency;

    min_claim = min_claim / 2 ? min_claim / 2 : 1;
    while (!stop_requested || owh_deliver_running(L->deliver)) {
        apr_time_t now = apr_time_now();
        int ready = 0, timeout_ms;
        apr_interval_time_t next_due = L->sc->poll_interval;

        if (stop_requested && !stop_deadline) stop_deadline = now + STOP_GRACE;
        if (stop_deadline && now > stop_deadline) break;
        if (getppid() == 1) stop_requested = 1;        /* httpd is gone */

        if (!L->db && !stop_requested) {
            if (!ensure_db(L)) {
                apr_sleep(backoff);
                backoff = backoff * 2 > apr_time_from_sec(5) ? apr_time_from_sec(5) : backoff * 2;
                owh_deliver_process(L->deliver, owh_jobs_on_done, L);
                continue;
            }
            backoff = apr_time_from_msec(200);
            wake = 1;
        }
        /* Finished deliveries free per-webhook slots: claim again if a cap
         * held work back. */
        if (flush_results(L, stop_requested) && L->held) wake = 1;
        /* A NOTIFY that arrived with our own statement's result (complete()
         * unparking an object's next delivery) sits in libpq, not the socket. */
        drain_notifications(L, &wake);
        /* Claim when there is room for half a batch (or nothing is running):
         * a trickle of one-row claims would cost a round trip per delivery. */
        free_slots = L->sc->max_concurrency - L->claimed;
        if (!stop_requested && L->db && (wake || more || now >= next_poll)
            && (L->claimed == 0 || free_slots >= min_claim)) {
            wake = 0;
            more = claim(L, &next_due);
            if (next_due > L->sc->poll_interval) next_due = L->sc->poll_interval;
            next_poll = apr_time_now() + next_due;
        }
        owh_jobs_start_waiting(L);
        drain_notifications(L, &wake);

        timeout_ms = ((more || wake) && free_slots >= min_claim) ? 0 : (int)((next_poll - apr_time_now()) / 1000);
        if (timeout_ms < 0) timeout_ms = 0;
        if (L->results->nelts) {
            int flush_ms = (int)((L->results_since + FLUSH_AFTER - apr_time_now()) / 1000);
            if (flush_ms < timeout_ms) timeout_ms = flush_ms < 0 ? 0 : flush_ms;
        }
        if (timeout_ms > 1000) timeout_ms = 1000;
        if (stop_requested && timeout_ms > 100) timeout_ms = 100;
        owh_deliver_wait(L->deliver, L->db ? owh_store_socket(L->db) : -1, timeout_ms, &ready);
        if (ready) drain_notifications(L, &wake);
        owh_deliver_process(L->deliver, owh_jobs_on_done, L);
    }
    return 0;
}

/* Hands back what was claimed but not finished, so the next dispatcher can
 * send it at once instead of waiting for the lease (a repeat of an attempt in
 * flight is the one duplicate at-least-once allows). */
static void hand_back(loop_t *L)
{
    apr_pool_t *tmp;
    apr_array_header_t *jobs;
    apr_hash_index_t *hi;
    int i, k;
    if (!L->db && !ensure_db(L)) return;
    flush_results(L, 1);
    tmp = owh_dsp_pool(L->pool, "owh_dsp_tmp");
    jobs = apr_array_make(tmp, 16, sizeof(owh_job_t *));
    for (i = 0; i < L->waiting->nelts; ++i)
        APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(L->waiting, i, job_t *)->job;
    for (i = 0; i < L->inflight->nelts; ++i)
        APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(L->inflight, i, job_t *)->job;
    for (hi = apr_hash_first(tmp, L->fetches); hi; hi = apr_hash_next(hi)) {
        fetch_t *f = apr_hash_this_val(hi);
        for (k = 0; k < f->waiters->nelts; ++k)
            APR_ARRAY_PUSH(jobs, owh_job_t *) = APR_ARRAY_IDX(f->waiters, k, job_t *)->job;
    }
    owh_queue_release(L->db, jobs, 0, tmp);
    apr_pool_destroy(tmp);
}

int owh_dispatcher_run(server_rec *s, owh_srv_conf_t *sc, apr_interval_time_t delay)
{
    apr_pool_t *p;
    loop_t L;
    owh_deliver_params_t dparams;
    char host[256];
    sigset_t all;
    pid_t parent = getppid();
    apr_status_t rv;

    ap_close_listeners();
    owh_log_httpd_install(s);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    apr_signal(SIGTERM, on_stop);
    apr_signal(SIGINT, on_stop);
    apr_signal(SIGHUP, SIG_IGN);
    apr_signal(SIGUSR1, SIG_IGN);
    apr_signal(SIGWINCH, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
    apr_signal(SIGCHLD, SIG_DFL);

    if (apr_pool_create_ex(&p, NULL, on_oom, NULL) != APR_SUCCESS) return OWH_DISPATCHER_STARTUP_ERROR;
    apr_pool_tag(p, "owh_dispatcher");
    /* Job pools come and go by the thousand: return freed blocks to the
     * system beyond 4 MB so RSS stays flat under any backlog. */
    apr_allocator_max_free_set(apr_pool_allocator_get(p), 4 * 1024 * 1024);
    if (ap_run_drop_privileges(p, s)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, OWHLOGNO(00506)
                     "dispatcher: cannot drop privileges");
        return OWH_DISPATCHER_STARTUP_ERROR;
    }
    /* Die with httpd, even when it is killed with -9. After the privilege
     * drop: setuid() clears the parent-death signal. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) return 0;
    if (delay) {
        apr_time_t until = apr_time_now() + delay;
        while (!stop_requested && apr_time_now() < until) apr_sleep(apr_time_from_msec(100));
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, OWHLOGNO(00510) "dispatcher: libcurl cannot initialize");
        return OWH_DISPATCHER_STARTUP_ERROR;
    }
    srandom((unsigned)(getpid() ^ apr_time_now()));

    memset(&L, 0, sizeof(L));
    L.s = s;
    L.sc = sc;
    L.pool = p;
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    L.owner = apr_psprintf(p, "%s:%" APR_PID_T_FMT, host, getpid());
    L.supplier = default_supplier(sc, p);
    L.viewpool = owh_dsp_pool(p, "owh_dsp_views");
    L.views = apr_hash_make(L.viewpool);
    L.fetches = apr_hash_make(p);
    L.waiting = apr_array_make(p, 64, sizeof(job_t *));
    L.inflight = apr_array_make(p, 256, sizeof(job_t *));
    L.hosts = apr_hash_make(p);
    L.respool = owh_dsp_pool(p, "owh_dsp_results");
    L.results = apr_array_make(L.respool, 64, sizeof(owh_result_t *));
    memset(&dparams, 0, sizeof(dparams));
    dparams.connect_timeout = sc->deliver_connect_timeout;
    dparams.timeout = sc->deliver_timeout;
    dparams.response_cap = sc->response_cap;
    dparams.max_per_host = sc->max_per_host;
    dparams.user_agent = OWH_USER_AGENT;
    dparams.guard = sc->allow_networks;     /* NULL: nothing private allowed */
    if ((rv = owh_deliver_create(&L.deliver, &dparams, p)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, OWHLOGNO(00511) "dispatcher: cannot create its HTTP client");
        return OWH_DISPATCHER_STARTUP_ERROR;
    }

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OWHLOGNO(00507)
                 "dispatcher %s started", L.owner);
    dispatch_loop(&L);
    hand_back(&L);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OWHLOGNO(00508)
                 "dispatcher %s stopped", L.owner);
    apr_pool_destroy(p);
    curl_global_cleanup();
    return 0;
}
