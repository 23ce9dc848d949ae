/* owh_store_webhooks.c — the webhooks table: insert, list, get, update,
 * delete, delete by URL; always scoped to the calling connection so one
 * reseller can never reach another's rows. */
#include <stdlib.h>
#include <apr_strings.h>

#include "owh_store.h"
#include "owh_store_array.h"

#define WH_COLS "id, event, url, active, retry_on_error, use_contact_language, headers::text AS headers," \
    " capabilities, secret IS NOT NULL AS has_secret, disabled_reason," \
    " to_char(disabled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS disabled_at, dialect, event_types"

static const char *pg_bool(int b) { return b ? "true" : "false"; }

static const char *dialect_name(owh_dialect_e d) { return d == OWH_DIALECT_NOTIFICATIONS ? "notifications" : "octo"; }

/* A subscription's types as a text[] literal; NULL for a webhook (the
 * webhooks_types trigger derives its one type). */
static const char *types_to_pg(const owh_webhook_t *wh, apr_pool_t *p)
{
    apr_array_header_t *names;
    int i;
    if (wh->dialect != OWH_DIALECT_NOTIFICATIONS || !wh->types) return NULL;
    names = apr_array_make(p, wh->types->nelts, sizeof(const char *));
    for (i = 0; i < wh->types->nelts; ++i)
        APR_ARRAY_PUSH(names, const char *) = owh_event_name(APR_ARRAY_IDX(wh->types, i, owh_event_e));
    return owh_store_array_format(names, p);
}

/* WH_COLS of one row, read by name. */
static apr_status_t row_to_webhook(owh_webhook_t **pwh, PGresult *res, int row, apr_pool_t *p)
{
    owh_webhook_t *wh = owh_webhook_make(p);
    const char *v;
    apr_status_t rv;
#define COL(name) owh_store_value(res, row, name)
#define IS_TRUE(name) ((v = COL(name)) && !strcmp(v, "t"))
    if (!COL("id") || !COL("event") || !COL("url") || !COL("headers") || !COL("capabilities")
        || !COL("dialect"))
        return APR_EGENERAL;
    wh->id = apr_pstrdup(p, COL("id"));
    wh->event = apr_pstrdup(p, COL("event"));
    wh->event_type = owh_event_parse(wh->event);
    wh->url = apr_pstrdup(p, COL("url"));
    wh->active = IS_TRUE("active");
    wh->retry_on_error = IS_TRUE("retry_on_error");
    wh->use_contact_language = IS_TRUE("use_contact_language");
    if ((rv = owh_headers_from_json_text(&wh->headers, COL("headers"), p)) != APR_SUCCESS) return rv;
    if ((rv = owh_store_array_parse(&wh->capabilities, COL("capabilities"), p)) != APR_SUCCESS) return rv;
    wh->has_secret = IS_TRUE("has_secret");
    if ((v = COL("disabled_reason"))) wh->disabled_reason = apr_pstrdup(p, v);
    if ((v = COL("disabled_at"))) wh->disabled_at = apr_pstrdup(p, v);
    if (!strcmp(COL("dialect"), "notifications")) {
        apr_array_header_t *names;
        int i;
        wh->dialect = OWH_DIALECT_NOTIFICATIONS;
        if ((rv = owh_store_array_parse(&names, COL("event_types"), p)) != APR_SUCCESS) return rv;
        wh->types = apr_array_make(p, names->nelts, sizeof(owh_event_e));
        for (i = 0; i < names->nelts; ++i)
            APR_ARRAY_PUSH(wh->types, owh_event_e) = owh_event_parse(APR_ARRAY_IDX(names, i, const char *));
        wh->event_type = wh->types->nelts ? APR_ARRAY_IDX(wh->types, 0, owh_event_e) : OWH_EVENT_NONE;
    }
#undef IS_TRUE
#undef COL
    *pwh = wh;
    return APR_SUCCESS;
}

static apr_status_t rows_to_list(apr_array_header_t **plist, PGresult *res, apr_pool_t *p)
{
    apr_array_header_t *list = apr_array_make(p, PQntuples(res) ? PQntuples(res) : 1, sizeof(owh_webhook_t *));
    int i;
    apr_status_t rv;
    for (i = 0; i < PQntuples(res); ++i)
        if ((rv = row_to_webhook(&APR_ARRAY_PUSH(list, owh_webhook_t *), res, i, p)) != APR_SUCCESS)
            return rv;
    *plist = list;
    return APR_SUCCESS;
}

typedef struct {
    const char *connection;
    owh_webhook_t *wh;
    int max_webhooks;
} insert_t;

static apr_status_t insert_tx(owh_db_t *db, void *baton, apr_pool_t *p)
{
    insert_t *in = baton;
    owh_webhook_t *wh = in->wh;
    PGresult *res = NULL;
    apr_status_t rv;
    const char *conn_args[] = { in->connection };
    const char *args[] = {
        in->connection, wh->event, owh_event_name(wh->event_type), wh->url,
        owh_url_display(wh->url, p), pg_bool(wh->active), pg_bool(wh->retry_on_error),
        pg_bool(wh->use_contact_language), owh_headers_to_json_text(wh->headers, p),
        owh_store_array_format(wh->capabilities, p), wh->secret, dialect_name(wh->dialect),
        types_to_pg(wh, p)
    };
    /* Connections from r->user mode have no token row yet. */
    rv = owh_store_query(NULL, db, p,
        "INSERT INTO octo_webhooks.connections (id) VALUES ($1) ON CONFLICT DO NOTHING",
        1, conn_args);
    if (rv != APR_SUCCESS) return rv;
    if (in->max_webhooks > 0) {
        const char *count_args[] = { in->connection, apr_itoa(p, in->max_webhooks) };
        /* Creates of one connection take turns (an advisory lock of their
         * own class: the runtime role may not lock rows of connections), so
         * count-then-insert is exact across httpd children and hosts. */
        rv = owh_store_query(NULL, db, p, "SELECT pg_advisory_xact_lock(7261013, hashtext($1))", 1, conn_args);
        if (rv != APR_SUCCESS) return rv;
        /* a statement of its own, so its snapshot is taken once the lock is
         * held; counting stops at the bound, so its cost does too */
        rv = owh_store_query(&res, db, p,
            "SELECT count(*) AS n FROM (SELECT 1 FROM octo_webhooks.webhooks WHERE connection_id = $1"
            " LIMIT $2::int) w", 2, count_args);
        if (rv != APR_SUCCESS) return rv;
        if (atoi(owh_store_value(res, 0, "n")) >= in->max_webhooks) rv = APR_ENOSPC;
        owh_store_clear(res, p);
        if (rv != APR_SUCCESS) return rv;
    }
    rv = owh_store_query(&res, db, p,
        "INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display,"
        " active, retry_on_error, use_contact_language, headers, capabilities, secret, dialect, event_types)"
        " VALUES ($1, $2, $3, $4, $5, $6::boolean, $7::boolean, $8::boolean, $9::jsonb, $10::text[], $11,"
        " $12, $13::text[]) RETURNING id", 13, args);
    if (rv != APR_SUCCESS) return rv;
    wh->id = apr_pstrdup(p, owh_store_value(res, 0, "id"));
    owh_store_clear(res, p);
    return APR_SUCCESS;
}

apr_status_t owh_store_webhook_insert(owh_db_t *db, const char *connection, owh_webhook_t *wh,
                                      int max_webhooks, apr_pool_t *p)
{
    insert_t in;
    in.connection = connection;
    in.wh = wh;
    in.max_webhooks = max_webhooks;
    return owh_store_tx(db, insert_tx, &in, p);
}

apr_status_t owh_store_webhook_list(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                    apr_array_header_t **plist, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { connection, dialect_name(dialect) };
    apr_status_t rv = owh_store_query(&res, db, p,
        "SELECT " WH_COLS " FROM octo_webhooks.webhooks WHERE connection_id = $1 AND dialect = $2"
        " ORDER BY seq", 2, args);
    if (rv != APR_SUCCESS) return rv;
    rv = rows_to_list(plist, res, p);
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_get(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                   const char *id, owh_webhook_t **pwh, int for_update, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { id, connection, dialect_name(dialect) };
    apr_status_t rv;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    rv = owh_store_query(&res, db, p, for_update
        ? "SELECT " WH_COLS " FROM octo_webhooks.webhooks WHERE id = $1::uuid AND connection_id = $2"
          " AND dialect = $3 FOR UPDATE"
        : "SELECT " WH_COLS " FROM octo_webhooks.webhooks WHERE id = $1::uuid AND connection_id = $2"
          " AND dialect = $3",
        3, args);
    if (rv != APR_SUCCESS) return rv;
    rv = PQntuples(res) == 1 ? row_to_webhook(pwh, res, 0, p) : APR_NOTFOUND;
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_update(owh_db_t *db, const char *connection, const owh_webhook_t *wh,
                                      apr_pool_t *p)
{
    PGresult *res;
    apr_status_t rv;
    const char *args[] = {
        wh->id, connection, wh->event, owh_event_name(wh->event_type), wh->url,
        owh_url_display(wh->url, p), pg_bool(wh->active), pg_bool(wh->retry_on_error),
        pg_bool(wh->use_contact_language), owh_headers_to_json_text(wh->headers, p),
        owh_store_array_format(wh->capabilities, p), dialect_name(wh->dialect), types_to_pg(wh, p)
    };
    if (!owh_uuid_valid(wh->id)) return APR_NOTFOUND;
    rv = owh_store_query(&res, db, p,
        "UPDATE octo_webhooks.webhooks SET event = $3, event_type = $4, url = $5, url_display = $6,"
        " active = $7::boolean, retry_on_error = $8::boolean, use_contact_language = $9::boolean,"
        " headers = $10::jsonb, capabilities = $11::text[], updated_at = clock_timestamp(),"
        " event_types = coalesce($13::text[], event_types),"
        /* reactivating clears what the module recorded when it deactivated */
        " disabled_reason = CASE WHEN $7::boolean THEN NULL ELSE disabled_reason END,"
        " disabled_at = CASE WHEN $7::boolean THEN NULL ELSE disabled_at END,"
        " failing_since = CASE WHEN $7::boolean AND NOT active THEN NULL ELSE failing_since END"
        " WHERE id = $1::uuid AND connection_id = $2 AND dialect = $12", 13, args);
    if (rv != APR_SUCCESS) return rv;
    rv = strcmp(PQcmdTuples(res), "1") ? APR_NOTFOUND : APR_SUCCESS;
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_delete(owh_db_t *db, const char *connection, owh_dialect_e dialect,
                                      const char *id, owh_webhook_t **pwh, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { id, connection, dialect_name(dialect) };
    apr_status_t rv;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    rv = owh_store_query(&res, db, p,
        "DELETE FROM octo_webhooks.webhooks WHERE id = $1::uuid AND connection_id = $2 AND dialect = $3"
        " RETURNING " WH_COLS, 3, args);
    if (rv != APR_SUCCESS) return rv;
    rv = PQntuples(res) == 1 ? row_to_webhook(pwh, res, 0, p) : APR_NOTFOUND;
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_delete_by_url(owh_db_t *db, const char *connection, const char *url,
                                             apr_array_header_t **plist, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { connection, url };
    apr_status_t rv = owh_store_query(&res, db, p,
        "WITH gone AS (DELETE FROM octo_webhooks.webhooks"
        "  WHERE connection_id = $1 AND (url = $2 OR url_display = $2) AND dialect = 'octo'"
        "  RETURNING *)"
        " SELECT " WH_COLS " FROM gone ORDER BY seq", 2, args);
    if (rv != APR_SUCCESS) return rv;
    rv = rows_to_list(plist, res, p);
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_trigger_admit(owh_db_t *db, const char *connection, const char *id,
                                             int count, int per_minute, int *pretry_after, apr_pool_t *p)
{
    PGresult *res = NULL;
    const char *args[] = { id, connection };
    apr_status_t rv;
    *pretry_after = 0;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    /* Triggers of one webhook take turns (a lock of their own class, so
     * never the claims' 7261003), so the count holds across children and hosts. */
    rv = owh_store_query(&res, db, p,
        "SELECT pg_advisory_xact_lock(7261012, hashtext(w.id::text)) FROM octo_webhooks.webhooks w"
        " WHERE w.id = $1::uuid AND w.connection_id = $2", 2, args);
    if (rv != APR_SUCCESS) return rv;
    if (PQntuples(res) != 1) { owh_store_clear(res, p); return APR_NOTFOUND; }
    owh_store_clear(res, p);
    if (per_minute <= 0) return APR_SUCCESS;
    rv = owh_store_query(&res, db, p,
        "SELECT count(*) AS n, coalesce(ceil(extract(epoch FROM min(d.created_at) + interval '1 minute'"
        " - clock_timestamp())), 0)::int AS wait"
        " FROM octo_webhooks.deliveries d JOIN octo_webhooks.events e ON e.id = d.event_id"
        " WHERE d.webhook_id = $1::uuid AND d.created_at > clock_timestamp() - interval '1 minute'"
        " AND e.sample", 1, args);
    if (rv != APR_SUCCESS) return rv;
    if (atoi(owh_store_value(res, 0, "n")) + count > per_minute) {
        int wait = atoi(owh_store_value(res, 0, "wait"));
        *pretry_after = wait < 1 ? 1 : wait > 60 ? 60 : wait;
    }
    owh_store_clear(res, p);
    return APR_SUCCESS;
}

apr_status_t owh_store_webhook_trigger(owh_db_t *db, const char *connection, const char *id,
                                       const char *object_json, const char **pevent_id,
                                       const char **pdelivery_id, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { id, connection, object_json };
    apr_status_t rv;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    rv = owh_store_query(&res, db, p,
        "SELECT event_id, delivery_id FROM octo_webhooks.emit_to_webhook($1::uuid, $2, $3::jsonb)",
        3, args);
    if (rv != APR_SUCCESS) return rv;
    if (PQntuples(res) != 1) rv = APR_NOTFOUND;
    else {
        *pevent_id = apr_pstrdup(p, owh_store_value(res, 0, "event_id"));
        *pdelivery_id = apr_pstrdup(p, owh_store_value(res, 0, "delivery_id"));
    }
    owh_store_clear(res, p);
    return rv;
}
