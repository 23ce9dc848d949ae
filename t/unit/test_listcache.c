/* test_listcache.c — src/owh_listcache.c: what makes a cached list stale
 * (the host's generation, bumped from another process too; its age), keys
 * kept apart, the memory bound and the threads sharing one cache. */
#include <apr_general.h>
#include <apr_thread_proc.h>
#include <apr_strings.h>
#include <unistd.h>
#include <sys/wait.h>

#include "tap.h"
#include "../../src/owh_listcache.h"

#define MAX_BYTES 8192

static int hit(owh_listcache_t *c, const char *key, const char *want, apr_pool_t *p)
{
    const char *body = NULL;
    apr_size_t len = 0;
    if (!owh_listcache_get(c, key, &body, &len, p)) return 0;
    return want && len == strlen(want) && !memcmp(body, want, len);
}

/* Threads filling and reading one small cache at once (the cache starts
 * over again and again under them): every hit must be the bytes put. */
typedef struct { owh_listcache_t *c; int bad; } worker_t;

static void *APR_THREAD_FUNC worker(apr_thread_t *t, void *data)
{
    worker_t *w = data;
    apr_pool_t *p = tap_pool(NULL, "worker");
    char key[32], body[600];
    int i;
    for (i = 0; i < 20000; ++i) {
        const char *got;
        apr_size_t len;
        int k = i % 37;
        apr_snprintf(key, sizeof(key), "0:c%d", k);
        memset(body, 'a' + k % 26, sizeof(body));
        body[k * 7 % 500] = '#';
        owh_listcache_put(w->c, key, owh_listcache_generation(), apr_time_now(), body, 100 + k * 10);
        if (owh_listcache_get(w->c, key, &got, &len, p)
            && (len != (apr_size_t)(100 + k * 10) || memcmp(got, body, len)))
            w->bad++;
        if (i % 256 == 0) apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

int main(void)
{
    apr_pool_t *p;
    owh_listcache_t *c, *off;
    apr_uint64_t g;
    const char *body;
    apr_size_t len, bytes;
    char big[2048], key[32];
    int entries, i, peak = 0, over = 0;
    pid_t child;
    apr_thread_t *threads[4];
    worker_t workers[4];
    apr_status_t trv;

    (void)tap_is_str;
    apr_initialize();
    p = tap_pool(NULL, "test_listcache");

    tap_ok(owh_listcache_create(&c, MAX_BYTES, apr_time_from_sec(1), p) == APR_SUCCESS, "a cache is made");
    owh_listcache_put(c, "0:a", owh_listcache_generation(), apr_time_now(), "[1]", 3);
    tap_ok(!hit(c, "0:a", "[1]", p), "before the host's generation exists, nothing is cached");

    tap_ok(owh_listcache_init(p) == APR_SUCCESS, "init makes the host's generation");
    g = owh_listcache_generation();
    owh_listcache_put(c, "0:a", g, apr_time_now(), "[1]", 3);
    tap_ok(hit(c, "0:a", "[1]", p), "a list put is got back, the same bytes");
    tap_ok(owh_listcache_get(c, "0:a", &body, &len, p) && body && len == 3, "as a copy of its length");
    tap_ok(!hit(c, "1:a", "[1]", p) && !hit(c, "0:b", "[1]", p) && !hit(c, "0:a:", "[1]", p),
           "another dialect or connection of a near name finds nothing");

    owh_listcache_bump();
    tap_ok(owh_listcache_generation() == g + 1, "a bump moves the generation on");
    tap_ok(!hit(c, "0:a", "[1]", p), "a bump makes the entry stale");
    owh_listcache_put(c, "0:a", g, apr_time_now(), "[1]", 3);
    tap_ok(!hit(c, "0:a", "[1]", p), "a list read before the bump (filled after it) is stale too");

    g = owh_listcache_generation();
    owh_listcache_put(c, "0:a", g, apr_time_now() - apr_time_from_msec(1100), "[2]", 3);
    tap_ok(!hit(c, "0:a", "[2]", p), "an entry older than the TTL is stale");
    owh_listcache_put(c, "0:a", g, apr_time_now(), "[3]", 3);
    tap_ok(hit(c, "0:a", "[3]", p), "a new fill of the same key replaces the old");
    owh_listcache_put(c, "0:a", g - 1, apr_time_now(), "[4]", 3);
    tap_ok(hit(c, "0:a", "[3]", p), "a fill that read before an earlier bump does not replace a newer entry");

    child = fork();
    if (!child) { owh_listcache_bump(); _exit(0); }
    waitpid(child, NULL, 0);
    tap_ok(owh_listcache_generation() == g + 1 && !hit(c, "0:a", "[3]", p),
           "a bump in another process (a dispatcher, another child) reaches this one");

    memset(big, 'x', sizeof(big));
    g = owh_listcache_generation();
    owh_listcache_put(c, "0:big", g, apr_time_now(), big, MAX_BYTES / 8 + 1);
    tap_ok(!owh_listcache_get(c, "0:big", &body, &len, p), "a list over an eighth of the cache is not kept");

    for (i = 0; i < 200; ++i) {
        apr_snprintf(key, sizeof(key), "0:conn%d", i);
        owh_listcache_put(c, key, g, apr_time_now(), big, 900);
        owh_listcache_usage(c, &entries, &bytes);
        if (bytes > MAX_BYTES) over++;
        if (entries > peak) peak = entries;
    }
    tap_ok(!over, "200 tenants' lists never hold more than the cache's bytes");
    tap_ok(peak >= 5 && peak < 10, "the cache fills, then starts over");
    tap_ok(owh_listcache_get(c, "0:conn199", &body, &len, p) && len == 900,
           "the last list put is there after the start-overs");

    owh_listcache_put(c, "0:busy", g, apr_time_now(), big, 500);
    owh_listcache_usage(c, &peak, &len);
    for (i = 0; i < 1000; ++i)         /* one list refilled after each write to it */
        owh_listcache_put(c, "0:busy", g, apr_time_now(), big, 500);
    owh_listcache_usage(c, &entries, &bytes);
    tap_ok(entries == peak && bytes == len,
           "a list refilled 1,000 times holds one entry's bytes (the old ones are freed, not kept)");
    tap_ok(owh_listcache_create(&off, MAX_BYTES, 0, p) == APR_SUCCESS, "a cache with TTL 0");
    owh_listcache_put(off, "0:a", owh_listcache_generation(), apr_time_now(), "[1]", 3);
    tap_ok(!hit(off, "0:a", "[1]", p), "TTL 0: nothing is cached");

    for (i = 0; i < 4; ++i) {
        workers[i].c = c;
        workers[i].bad = 0;
        apr_thread_create(&threads[i], NULL, worker, &workers[i], p);
    }
    over = 0;
    for (i = 0; i < 4; ++i) {
        apr_thread_join(&trv, threads[i]);
        over += workers[i].bad;
    }
    tap_ok(!over, "4 threads filling and reading one cache through its start-overs: every hit is whole");

    apr_pool_destroy(p);
    apr_terminate();
    return tap_done();
}
