/* owh_store_admin.c — the operator's statements (the `octo-webhooks` CLI):
 * tokens, the queue's state, one object's deliveries across connections,
 * replay (prune is the dispatchers' prune(), in owh_store_ops.c). One table of named statements, so the SQL stays in the
 * store and the CLI only prints what comes back. APR + libpq only. */
#include <string.h>
#include <apr_strings.h>

#include "owh_store.h"

typedef struct {
    int nparams;
    const char *sql;
} admin_stmt_t;

/* Times as operators read them: UTC, to the millisecond. */
#define T(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')"

static const admin_stmt_t stmts[] = {
    [OWH_ADMIN_TOKEN_CREATE] = { 3,
        "SELECT octo_webhooks.create_token($1, $2::text[], NULLIF($3, '')) AS token" },
    [OWH_ADMIN_TOKEN_REVOKE] = { 1,
        "UPDATE octo_webhooks.tokens SET revoked_at = now()"
        " WHERE token_hash = sha256(convert_to($1, 'UTF8')) AND revoked_at IS NULL RETURNING id" },
    [OWH_ADMIN_TOKEN_REVOKE_ID] = { 1,
        "UPDATE octo_webhooks.tokens SET revoked_at = now()"
        " WHERE id = $1::bigint AND revoked_at IS NULL RETURNING id" },
    [OWH_ADMIN_TOKEN_LIST] = { 1,
        "SELECT id, connection_id AS connection, coalesce(label, '') AS label,"
        "       array_to_string(abilities, ',') AS abilities, " T("created_at") " AS created,"
        "       coalesce('revoked ' || " T("revoked_at") ", 'active') AS state"
        "  FROM octo_webhooks.tokens WHERE $1::text IS NULL OR connection_id = $1 ORDER BY id" },

    /* status: the pending-only indexes answer these without touching history
     * (and events_unrouted: events emit() recorded that no dispatcher routed yet) */
    [OWH_ADMIN_STATUS_QUEUE] = { 0,
        "SELECT count(*) AS pending,"
        "       count(*) FILTER (WHERE next_attempt_at <= clock_timestamp()) AS due,"
        "       count(*) FILTER (WHERE claim_id IS NOT NULL AND next_attempt_at > clock_timestamp()"
        "                          AND next_attempt_at <> 'infinity') AS in_flight,"
        "       count(*) FILTER (WHERE claim_id IS NULL AND next_attempt_at > clock_timestamp()"
        "                          AND next_attempt_at <> 'infinity') AS retry_later,"
        "       count(*) FILTER (WHERE next_attempt_at = 'infinity') AS parked,"
        "       coalesce(" T("min(next_attempt_at) FILTER (WHERE next_attempt_at <= clock_timestamp())")
        "                , '-') AS oldest_due,"
        "       coalesce(round(extract(epoch FROM clock_timestamp() - min(next_attempt_at)"
        "                 FILTER (WHERE next_attempt_at <= clock_timestamp())))::text || 's', '-') AS oldest_due_age,"
        "       (SELECT count(*) FROM octo_webhooks.events WHERE NOT routed) AS unrouted,"
        "       coalesce((SELECT round(extract(epoch FROM clock_timestamp() - min(created_at)))::text || 's'"
        "                   FROM octo_webhooks.events WHERE NOT routed), '-') AS oldest_unrouted_age,"
        "       (SELECT coalesce(max(version), 0) FROM octo_webhooks.schema_migrations) AS schema_version"
        "  FROM octo_webhooks.deliveries WHERE status = 'pending'" },
    /* Dispatchers name their sessions (owh_store_set_application_name); the
     * claims they hold come from the pending rows. */
    [OWH_ADMIN_STATUS_DISPATCHERS] = { 0,
        "WITH s AS (SELECT substr(application_name, 26) AS dispatcher, " T("backend_start") " AS since"
        "             FROM pg_stat_activity WHERE datname = current_database()"
        "              AND application_name LIKE 'octo-webhooks dispatcher %'),"
        " c AS (SELECT claimed_by AS dispatcher, count(*) AS claims FROM octo_webhooks.deliveries"
        "        WHERE status = 'pending' AND claim_id IS NOT NULL AND next_attempt_at > clock_timestamp()"
        "          AND next_attempt_at <> 'infinity' GROUP BY claimed_by)"
        " SELECT coalesce(s.dispatcher, c.dispatcher) AS dispatcher,"
        "        CASE WHEN s.dispatcher IS NULL THEN 'gone (claims wait for their lease)'"
        "             ELSE 'connected since ' || s.since END AS state,"
        "        coalesce(c.claims, 0) AS claims_in_flight"
        "   FROM s FULL JOIN c ON c.dispatcher = s.dispatcher ORDER BY 1" },
    [OWH_ADMIN_STATUS_DISABLED] = { 0,
        "SELECT id, connection_id AS connection, dialect, url_display AS url,"
        "       coalesce(" T("disabled_at") ", '') AS disabled_at, disabled_reason AS reason"
        "  FROM octo_webhooks.webhooks WHERE NOT active AND disabled_reason IS NOT NULL"
        " ORDER BY disabled_at DESC, id" },

    /* $1 event type, $2 object key, $3 connection or NULL, $4 limit */
    [OWH_ADMIN_OBJECT_DELIVERIES] = { 4,
        "SELECT d.id, d.event_id AS event, " T("e.created_at") " AS emitted, d.connection_id AS connection,"
        "       d.webhook_id AS webhook, d.webhook->>'url_display' AS url,"
        "       coalesce(d.webhook->>'dialect', 'octo') AS dialect, d.status, d.attempts,"
        "       CASE WHEN d.status <> 'pending' THEN 'ended ' || " T("d.completed_at")
        "            WHEN d.next_attempt_at = 'infinity' THEN 'waiting for an earlier delivery'"
        "            WHEN d.claim_id IS NOT NULL AND d.next_attempt_at > clock_timestamp() THEN 'in flight'"
        "            ELSE 'next attempt ' || " T("d.next_attempt_at") " END AS state,"
        "       coalesce(d.last_status::text, '') AS last_status, coalesce(d.last_error, '') AS last_error"
        "  FROM octo_webhooks.events e JOIN octo_webhooks.deliveries d ON d.event_id = e.id"
        " WHERE e.event_type = $1 AND e.object_key = $2 AND ($3::text IS NULL OR d.connection_id = $3)"
        " ORDER BY d.event_id DESC, d.created_at DESC, d.id LIMIT $4::int" },
    /* $1 a text[] literal of delivery ids */
    [OWH_ADMIN_ATTEMPTS] = { 1,
        "SELECT a.delivery_id, a.attempt, " T("a.started_at") " AS started,"
        "       coalesce(a.status_code::text, '-') AS status, coalesce(a.latency_ms::text, '-') AS ms,"
        "       coalesce(a.error, '') AS error, coalesce(a.dispatcher, '') AS dispatcher"
        "  FROM octo_webhooks.attempts a WHERE a.delivery_id = ANY ($1::uuid[])"
        " ORDER BY a.delivery_id, a.attempt, a.id" },

    /* Requeues ended deliveries ($1 type + $2 key, and/or $3 webhook; $4 since,
     * $5 until; $6 dry run) keeping the order per object as recover() does:
     * the first of each (webhook, object) goes now unless one is pending,
     * the rest wait parked and complete() releases them one by one. Only
     * webhooks that exist and are active: nothing else would ever send. */
    [OWH_ADMIN_REPLAY] = { 6,
        "WITH f AS (SELECT d.id, d.webhook_id, d.object_key, d.event_id"
        "             FROM octo_webhooks.deliveries d JOIN octo_webhooks.events e ON e.id = d.event_id"
        "            WHERE d.status <> 'pending'"
        "              AND ($1::text IS NULL OR (e.event_type = $1 AND d.object_key = $2))"
        "              AND ($3::uuid IS NULL OR d.webhook_id = $3::uuid)"
        "              AND ($4::timestamptz IS NULL OR d.created_at >= $4::timestamptz)"
        "              AND ($5::timestamptz IS NULL OR d.created_at < $5::timestamptz)"
        "            FOR UPDATE OF d),"
        " live AS (SELECT f.*, row_number() OVER (PARTITION BY f.webhook_id, f.object_key ORDER BY f.event_id) AS rn,"
        "                 EXISTS (SELECT 1 FROM octo_webhooks.deliveries p WHERE p.webhook_id = f.webhook_id"
        "                            AND p.object_key = f.object_key AND p.status = 'pending') AS busy"
        "            FROM f JOIN octo_webhooks.webhooks w ON w.id = f.webhook_id AND w.active),"
        " u AS (UPDATE octo_webhooks.deliveries d"
        "          SET status = 'pending', claim_id = NULL, completed_at = NULL,"
        "              next_attempt_at = CASE WHEN live.rn = 1 AND NOT live.busy THEN clock_timestamp()"
        "                                     ELSE 'infinity'::timestamptz END"
        "         FROM live WHERE d.id = live.id AND NOT $6::boolean RETURNING d.id)"
        " SELECT (SELECT count(*) FROM f) AS matched, (SELECT count(*) FROM live) AS replayable,"
        "        (SELECT count(*) FROM u) AS requeued,"
        "        (SELECT pg_notify('octo_webhooks', '') WHERE EXISTS (SELECT 1 FROM u)) IS NULL AS quiet" },

    /* two statements: a query naming a missing table fails to parse */
    [OWH_ADMIN_SCHEMA_EXISTS] = { 0,
        "SELECT to_regclass('octo_webhooks.schema_migrations') IS NOT NULL AS present" },
    [OWH_ADMIN_SCHEMA_VERSION] = { 0,
        "SELECT coalesce(max(version), 0) AS version FROM octo_webhooks.schema_migrations" },
};

apr_status_t owh_store_admin(owh_admin_table_t **ptab, owh_db_t *db, owh_admin_e which,
                             const char *const *params, apr_pool_t *p)
{
    owh_admin_table_t *t;
    PGresult *res;
    apr_status_t rv;
    int r, c;

    if ((int)which < 0 || which >= OWH_ADMIN_COUNT || !stmts[which].sql) return APR_EINVAL;
    rv = owh_store_query(&res, db, p, stmts[which].sql, stmts[which].nparams, params);
    if (rv != APR_SUCCESS) return rv;
    t = apr_pcalloc(p, sizeof(*t));
    t->ncols = PQnfields(res);
    t->nrows = PQntuples(res);
    t->names = apr_pcalloc(p, sizeof(char *) * (t->ncols + 1));
    t->cells = apr_pcalloc(p, sizeof(char *) * ((apr_size_t)t->nrows * t->ncols + 1));
    for (c = 0; c < t->ncols; ++c) t->names[c] = apr_pstrdup(p, PQfname(res, c));
    for (r = 0; r < t->nrows; ++r)
        for (c = 0; c < t->ncols; ++c)
            t->cells[r * t->ncols + c] = apr_pstrdup(p, PQgetvalue(res, r, c));
    owh_store_clear(res, p);
    *ptab = t;
    return APR_SUCCESS;
}

const char *owh_admin_cell(const owh_admin_table_t *t, int row, const char *column)
{
    int c;
    if (!t || row < 0 || row >= t->nrows) return "";
    for (c = 0; c < t->ncols; ++c)
        if (!strcmp(t->names[c], column)) return t->cells[row * t->ncols + c];
    return "";
}

apr_status_t owh_store_set_application_name(owh_db_t *db, const char *name, apr_pool_t *p)
{
    const char *args[] = { name };
    return owh_store_query(NULL, db, p, "SELECT set_config('application_name', $1, false)", 1, args);
}
