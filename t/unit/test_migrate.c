/* test_migrate.c — owh_store_migrate_status() (what `octo-webhooks migrate`
 * runs) against an empty database given as argv[1]: --status and --dry-run
 * change nothing, apply brings the schema to the module's, a changed function
 * and a newer schema show in the report; and owh_store_schema_check()
 * (OctoWebhooksMigrate Off). TAP; run by t/unit_migrate.t. */
#include <stdio.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "owh_store.h"
#include "tap.h"

static int has(const char *report, const char *s)
{
    return report && strstr(report, s) != NULL;
}

static const char *one(owh_db_t *db, const char *sql, apr_pool_t *p)
{
    PGresult *res;
    if (owh_store_query(&res, db, p, sql, 0, NULL) != APR_SUCCESS) return db->errmsg;
    return PQntuples(res) ? apr_pstrdup(p, PQgetvalue(res, 0, 0)) : NULL;
}

int main(int argc, char **argv)
{
    apr_pool_t *p;
    owh_db_t *db;
    const char *report = NULL;
    apr_status_t rv;

    if (argc < 2) { fprintf(stderr, "usage: test_migrate CONNINFO (an empty database)\n"); return 2; }
    apr_initialize();
    p = tap_pool(NULL, "test_migrate");
    rv = owh_store_connect_schema(&db, argv[1], 5, OWH_SCHEMA_LEAVE, p);
    tap_ok(rv == APR_SUCCESS, "connects without touching the schema");
    if (rv != APR_SUCCESS) { printf("# %s\n", db->errmsg); apr_pool_destroy(p); return tap_done() | 1; }

    rv = owh_store_migrate_status(db, 0, 0, &report, p);
    tap_ok(rv == APR_SUCCESS, "status of an empty database");
    tap_ok(has(report, "schema octo_webhooks: not created") && has(report, "migration 001_core")
           && has(report, "pending (checksum ") && has(report, "function  emit ") && has(report, "to create"),
           "status: every migration pending, every function to create");
    rv = owh_store_schema_check(db, p);
    tap_ok(rv == OWH_STORE_ESCHEMA && has(db->errmsg, "octo-webhooks migrate"),
           "Migrate Off refuses it, naming the command");

    rv = owh_store_migrate_status(db, 1, 1, &report, p);
    tap_ok(rv == APR_SUCCESS && has(report, "dry run: nothing changed"), "dry run says so");
    tap_is_str(one(db, "SELECT to_regnamespace('octo_webhooks') IS NULL", p), "t", "dry run: no schema made");

    rv = owh_store_migrate_status(db, 1, 0, &report, p);
    tap_ok(rv == APR_SUCCESS, "apply");
    tap_ok(has(report, apr_psprintf(p, "applied: schema octo_webhooks is at migration %d, up to date",
                                    owh_store_schema_version())), "apply: up to date");
    rv = owh_store_migrate_status(db, 0, 0, &report, p);
    tap_ok(rv == APR_SUCCESS && has(report, "up to date") && has(report, "ok")
           && has(report, "0 to create or change, 0 to drop"), "status afterwards: current");
    tap_ok(owh_store_schema_check(db, p) == APR_SUCCESS, "Migrate Off accepts it");

    one(db, "UPDATE octo_webhooks.schema_functions SET checksum = 'old' WHERE name = 'claim'", p);
    one(db, "CREATE FUNCTION octo_webhooks.gone_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'", p);
    rv = owh_store_migrate_status(db, 1, 1, &report, p);
    tap_ok(rv == APR_SUCCESS && has(report, "claim                changed: to re-create")
           && has(report, "gone_fn              no longer shipped: to drop"), "dry run lists a changed and a gone function");
    tap_is_str(one(db, "SELECT checksum FROM octo_webhooks.schema_functions WHERE name = 'claim'", p), "old",
               "dry run: nothing re-created");
    tap_ok(owh_store_schema_check(db, p) == OWH_STORE_ESCHEMA, "Migrate Off refuses a changed function");
    rv = owh_store_migrate_status(db, 1, 0, &report, p);
    tap_ok(rv == APR_SUCCESS && has(report, "up to date"), "apply re-creates and drops");
    tap_is_str(one(db, "SELECT count(*) FROM pg_proc WHERE proname = 'gone_fn'", p), "0", "the gone function is dropped");

    one(db, "UPDATE octo_webhooks.schema_migrations SET checksum = NULL", p);
    rv = owh_store_migrate_status(db, 0, 0, &report, p);
    tap_ok(rv == APR_SUCCESS && has(report, "checksum to record"), "rows from before checksums: to record");
    rv = owh_store_migrate_status(db, 1, 0, &report, p);
    tap_is_str(one(db, "SELECT count(*) FROM octo_webhooks.schema_migrations WHERE checksum IS NULL", p), "0",
               "apply records them");

    one(db, "INSERT INTO octo_webhooks.schema_migrations (version, name, checksum) VALUES (999, '999_x', 'x')", p);
    rv = owh_store_migrate_status(db, 1, 0, &report, p);
    tap_ok(rv == OWH_STORE_ESCHEMA && has(report, "refused: schema octo_webhooks is at migration 999"),
           "a newer schema is refused, in the report too");
    tap_ok(owh_store_migrate(db, p) == OWH_STORE_ESCHEMA, "and by owh_store_migrate");
    apr_pool_destroy(p);        /* closes the connection, clears every result */
    apr_terminate();
    return tap_done();
}
