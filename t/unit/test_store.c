/* Unit test of the store's teardown (src/owh_store.c) against a real
 * PostgreSQL (OWH_TEST_CONNINFO; skipped without it). An httpd child's pool
 * holds the reslist, and each pooled connection's pool is a subpool of it:
 * destroying the child's pool must destroy each connection exactly once.
 * The pool's allocator keeps no free memory here, so a pool destroyed twice
 * (or a connection read after its pool went) is memory given back to malloc:
 * glibc aborts on the double free, AddressSanitizer reports the use. */
#include <stdlib.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_allocator.h>
#include <apr_time.h>
#include <apr_strings.h>

#include "owh_store.h"
#include "tap.h"



static void on_log(void *baton, int is_error, apr_status_t rv, const char *msg)
{
    if (is_error) printf("# store: %s\n", msg);
}

static int backends(const char *conninfo, apr_pool_t *p)
{
    owh_db_t *db;
    PGresult *res = NULL;
    int n = -1;
    if (owh_store_connect(&db, conninfo, 3, p) != APR_SUCCESS) return -1;
    if (owh_store_query(&res, db, p, "SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name = 'owh-test-store'", 0, NULL) == APR_SUCCESS)
        n = atoi(PQgetvalue(res, 0, 0));
    owh_store_clear(res, p);
    return n;
}

int main(void)
{
    const char *conninfo = getenv("OWH_TEST_CONNINFO");
    apr_allocator_t *alloc;
    apr_pool_t *top, *child, *req;
    owh_store_t *st;
    owh_store_params_t params;
    owh_db_t *a, *b;
    int before, during, after = -1, i;

    (void)tap_is_str;
    setvbuf(stdout, NULL, _IONBF, 0);     /* what ran before a crash is seen */
    if (!conninfo) { printf("1..0 # SKIP OWH_TEST_CONNINFO is not set\n"); return 0; }
    apr_app_initialize(NULL, NULL, NULL);
    top = tap_pool(NULL, "test_store");
    before = backends(conninfo, top);

    /* pchild as httpd makes it, with an allocator that frees at once */
    apr_allocator_create(&alloc);
    apr_allocator_max_free_set(alloc, 1);
    if (apr_pool_create_ex(&child, NULL, NULL, alloc) != APR_SUCCESS) {
        printf("Bail out! cannot create the child pool\n");
        return 1;
    }
    apr_pool_tag(child, "test_store_child");
    apr_allocator_owner_set(alloc, child);

    memset(&params, 0, sizeof(params));
    /* a name of their own: the test server's connections are not counted */
    params.conninfo = apr_pstrcat(top, conninfo, " application_name=owh-test-store", NULL);
    params.connect_timeout = 3;
    params.keep = 1;
    params.max = 3;
    params.ttl = apr_time_from_sec(60);
    params.wait = apr_time_from_sec(2);
    params.log = on_log;
    tap_ok(owh_store_create(&st, &params, child) == APR_SUCCESS, "store created");

    /* two requests' connections, released with their request pool */
    req = tap_pool(child, "test_store_req");
    tap_ok(owh_store_acquire(&a, st, req) == APR_SUCCESS, "first connection");
    tap_ok(owh_store_acquire(&b, st, req) == APR_SUCCESS, "second connection");
    tap_ok(owh_store_query(NULL, a, req, "SELECT 1", 0, NULL) == APR_SUCCESS, "a query on it");
    apr_pool_destroy(req);
    during = backends(conninfo, top);
    tap_ok(during == before + 2, "both are open and idle in the pool");
    printf("# test backends: %d before, %d with the pool\n", before, during);

    /* child exit */
    apr_pool_destroy(child);
    tap_ok(1, "the child's pool was destroyed without a double destroy");
    /* a backend leaves pg_stat_activity a moment after its client closed */
    for (i = 0; i < 50 && (after = backends(conninfo, top)) != before; ++i) apr_sleep(apr_time_from_msec(100));
    printf("# test backends after: %d\n", after);
    tap_ok(after == before, "every pooled connection was closed");

    apr_pool_destroy(top);
    apr_terminate();
    return tap_done();
}
