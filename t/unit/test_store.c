/* Unit test of the store (src/owh_store.c) against a real PostgreSQL
 * (OWH_TEST_CONNINFO; skipped without it): prepared statements per pooled
 * connection (prepared again after a reconnect and after a schema change),
 * rows handed over one at a time without the whole result in memory, and
 * the teardown. An httpd child's pool
 * holds the reslist, and each pooled connection's pool is a subpool of it:
 * destroying the child's pool must destroy each connection exactly once.
 * The pool's allocator keeps no free memory here, so a pool destroyed twice
 * (or a connection read after its pool went) is memory given back to malloc:
 * glibc aborts on the double free, AddressSanitizer reports the use. */
#include <stdlib.h>
#include <malloc.h>
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

static int one_int(owh_db_t *db, const char *sql, apr_pool_t *p)
{
    PGresult *res = NULL;
    int n = -1;
    if (owh_store_query(&res, db, p, sql, 0, NULL) == APR_SUCCESS && PQntuples(res) == 1)
        n = atoi(PQgetvalue(res, 0, 0));
    owh_store_clear(res, p);
    return n;
}

/* malloc'd bytes in use (libpq's results are malloc'd) */
static apr_size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

typedef struct { int rows; apr_size_t base, peak; int stop_at; } rows_t;

static apr_status_t count_row(void *baton, const PGresult *row)
{
    rows_t *c = baton;
    apr_size_t used = heap_used();
    if (used > c->peak) c->peak = used;
    if (PQntuples(row) != 1 || atoi(PQgetvalue(row, 0, 0)) != c->rows + 1) return APR_EGENERAL;
    if (++c->rows == c->stop_at) return APR_EOF;
    return APR_SUCCESS;
}

typedef struct { const char *table, *first, *second; int fail; } tx_t;

/* In a transaction: insert a row (prepared, the first statement: BEGIN rides
 * with it), then read the transaction id twice. */
static apr_status_t two_xids(owh_db_t *db, void *baton, apr_pool_t *p)
{
    tx_t *t = baton;
    PGresult *res = NULL;
    apr_status_t rv;
    if ((rv = owh_store_query_prepared(NULL, db, p, apr_psprintf(p, "INSERT INTO %s VALUES (1)", t->table),
                                       0, NULL)) != APR_SUCCESS)
        return rv;
    if ((rv = owh_store_query(&res, db, p, "SELECT pg_current_xact_id()::text AS x", 0, NULL)) != APR_SUCCESS)
        return rv;
    t->first = apr_pstrdup(p, PQgetvalue(res, 0, 0));
    if ((rv = owh_store_query_prepared(&res, db, p, "SELECT pg_current_xact_id()::text AS x", 0, NULL))
        != APR_SUCCESS)
        return rv;
    t->second = apr_pstrdup(p, PQgetvalue(res, 0, 0));
    return t->fail ? APR_EGENERAL : APR_SUCCESS;
}

#define BIG_ROWS "SELECT i, repeat('x', 300) AS pad FROM generate_series(1, $1::int) i ORDER BY i"

static void test_prepared_and_rows(owh_store_t *st, const char *conninfo, apr_pool_t *child)
{
    apr_pool_t *req;
    owh_db_t *a, *admin;
    PGresult *res = NULL;
    const char *args[] = { "20000" };
    const char *pid_args[1];
    rows_t c;
    apr_size_t whole;
    int pid1, pid2;
    const char *table = apr_psprintf(child, "owh_unit_prep_%d", (int)getpid());

    if (owh_store_connect_schema(&admin, conninfo, 3, OWH_SCHEMA_LEAVE, child) != APR_SUCCESS) {
        tap_ok(0, "an admin connection");
        return;
    }
    req = tap_pool(child, "test_store_prepared");
    owh_store_acquire(&a, st, req);
    tap_ok(owh_store_query_prepared(&res, a, req, "SELECT pg_backend_pid() AS pid", 0, NULL) == APR_SUCCESS,
           "a prepared statement");
    pid1 = res ? atoi(PQgetvalue(res, 0, 0)) : -1;
    tap_ok(a->prepared_made == 1, "prepared once on this connection");
    owh_store_query_prepared(&res, a, req, "SELECT pg_backend_pid() AS pid", 0, NULL);
    tap_ok(a->prepared_made == 1, "a second run prepares nothing");
    apr_pool_destroy(req);

    /* the server drops the sessions while the connections are idle in the pool */
    pid_args[0] = "owh-test-store";
    owh_store_query(NULL, admin, child, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = $1", 1, pid_args);
    apr_sleep(apr_time_from_msec(200));
    req = tap_pool(child, "test_store_prepared");
    owh_store_acquire(&a, st, req);
    res = NULL;
    tap_ok(owh_store_query_prepared(&res, a, req, "SELECT pg_backend_pid() AS pid", 0, NULL) == APR_SUCCESS,
           "after the session was killed, the prepared statement runs on the new session");
    pid2 = res ? atoi(PQgetvalue(res, 0, 0)) : -1;
    tap_ok(pid2 > 0 && pid2 != pid1, "it is a new session (prepared again there)");

    /* another host changes the table under a prepared plan */
    owh_store_query(NULL, admin, req, apr_psprintf(req, "CREATE TABLE %s (a int)", table), 0, NULL);
    owh_store_query(NULL, admin, req, apr_psprintf(req, "INSERT INTO %s VALUES (1)", table), 0, NULL);
    res = NULL;
    owh_store_query_prepared(&res, a, req, apr_psprintf(req, "SELECT * FROM %s", table), 0, NULL);
    tap_ok(res && PQnfields(res) == 1, "a prepared SELECT *");
    owh_store_query(NULL, admin, req, apr_psprintf(req, "ALTER TABLE %s ADD COLUMN b int", table), 0, NULL);
    res = NULL;
    tap_ok(owh_store_query_prepared(&res, a, req, apr_psprintf(req, "SELECT * FROM %s", table), 0, NULL)
           == APR_SUCCESS && res && PQnfields(res) == 2,
           "after ALTER TABLE its stale plan is prepared again (0A000), not an error");
    owh_store_query(NULL, admin, req, apr_psprintf(req, "DROP TABLE %s", table), 0, NULL);

    /* a pooled connection's transaction: BEGIN goes with its first statement */
    {
        tx_t t;
        memset(&t, 0, sizeof(t));
        t.table = table;
        owh_store_query(NULL, admin, req, apr_psprintf(req, "CREATE TABLE %s (a int)", table), 0, NULL);
        tap_ok(owh_store_tx(a, two_xids, &t, req) == APR_SUCCESS && t.first && t.second
               && !strcmp(t.first, t.second), "the statements of owh_store_tx share one transaction");
        tap_ok(one_int(admin, apr_psprintf(req, "SELECT count(*) FROM %s", table), req) == 1, "it committed");
        t.fail = 1;
        tap_ok(owh_store_tx(a, two_xids, &t, req) == APR_EGENERAL
               && one_int(admin, apr_psprintf(req, "SELECT count(*) FROM %s", table), req) == 1,
               "a failed one rolled back what its first statement did");
        tap_ok(one_int(a, "SELECT 7", req) == 7 && !a->in_tx, "the connection is usable after, outside any transaction");
        owh_store_query(NULL, admin, req, apr_psprintf(req, "DROP TABLE %s", table), 0, NULL);
    }

    /* rows one at a time: the peak of malloc'd memory stays far below the whole result's */
    res = NULL;
    c.base = heap_used();
    owh_store_query_prepared(&res, a, req, BIG_ROWS, 1, args);
    whole = heap_used() - c.base;
    owh_store_clear(res, req);
    memset(&c, 0, sizeof(c));
    c.base = c.peak = heap_used();
    tap_ok(owh_store_query_rows(a, req, BIG_ROWS, 1, args, count_row, &c) == APR_SUCCESS && c.rows == 20000,
           "20,000 rows handed over in order");
    printf("# whole result: %lu kB; one row at a time: peak +%lu kB\n", (unsigned long)(whole / 1024),
           (unsigned long)((c.peak - c.base) / 1024));
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer's allocator answers mallinfo2() with nothing */
    tap_ok(1, "# SKIP the peak of malloc'd memory is not measurable under AddressSanitizer");
#else
    tap_ok(whole > 6 * 1024 * 1024 && c.peak - c.base < whole / 16,
           "one row at a time never holds the result (peak under 1/16 of the whole)");
#endif
    memset(&c, 0, sizeof(c));
    c.stop_at = 10;
    tap_ok(owh_store_query_rows(a, req, BIG_ROWS, 1, args, count_row, &c) == APR_EOF && c.rows == 10,
           "a callback's failure stops the rows and is returned");
    tap_ok(one_int(a, "SELECT 7", req) == 7, "the connection is usable after");
    apr_pool_destroy(req);
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

    test_prepared_and_rows(st, conninfo, child);

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
