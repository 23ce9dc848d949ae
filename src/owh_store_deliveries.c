/* owh_store_deliveries.c — what a connection may do with its webhooks'
 * deliveries and secrets: list deliveries with their attempts, redeliver
 * one, recover failed ones, rotate the signing secret. Every statement is
 * scoped to the calling connection; answers are built as JSON by
 * PostgreSQL (octo_webhooks.delivery_json) and passed through. */
#include <apr_strings.h>

#include "owh_store.h"

apr_status_t owh_store_webhook_set_secret(owh_db_t *db, const char *connection, const char *id,
                                          const char *secret, apr_interval_time_t grace,
                                          const char **pprevious_until, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { id, connection, secret, owh_store_interval(grace, p) };
    apr_status_t rv;
    if (!owh_uuid_valid(id)) return APR_NOTFOUND;
    /* SET sees the old row: the current secret becomes the previous one. */
    rv = owh_store_query(&res, db, p,
        "UPDATE octo_webhooks.webhooks SET secret = $3, secret_previous = secret,"
        "       secret_previous_until = CASE WHEN secret IS NULL THEN NULL"
        "                                    ELSE clock_timestamp() + $4::interval END,"
        "       updated_at = clock_timestamp()"
        " WHERE id = $1::uuid AND connection_id = $2"
        " RETURNING octo_webhooks.iso(secret_previous_until) AS previous_until", 4, args);
    if (rv != APR_SUCCESS) return rv;
    if (PQntuples(res) != 1) rv = APR_NOTFOUND;
    else {
        const char *until = owh_store_value(res, 0, "previous_until");
        *pprevious_until = until ? apr_pstrdup(p, until) : NULL;
    }
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_deliveries_list(owh_db_t *db, const char *connection, const char *webhook_id,
                                       const char *status, const char *cursor, int limit,
                                       const char **pjson, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { webhook_id, connection, status, cursor, apr_itoa(p, limit) };
    apr_status_t rv;
    if (!owh_uuid_valid(webhook_id)) return APR_NOTFOUND;
    /* Newest first; the cursor is the last delivery of the previous page. */
    rv = owh_store_query(&res, db, p,
        "WITH c AS (SELECT created_at, id FROM octo_webhooks.deliveries"
        "            WHERE id = $4::uuid AND webhook_id = $1::uuid AND connection_id = $2),"
        " page AS (SELECT d.id, d.created_at FROM octo_webhooks.deliveries d"
        "           WHERE d.webhook_id = $1::uuid AND d.connection_id = $2"
        "             AND ($3::text IS NULL OR d.status = $3)"
        "             AND ($4::uuid IS NULL OR (d.created_at, d.id) < (SELECT created_at, id FROM c))"
        "           ORDER BY d.created_at DESC, d.id DESC LIMIT $5::int + 1),"
        " numbered AS (SELECT page.id, row_number() OVER (ORDER BY created_at DESC, id DESC) AS n FROM page)"
        " SELECT EXISTS (SELECT 1 FROM octo_webhooks.webhooks WHERE id = $1::uuid AND connection_id = $2)"
        "          AS webhook_found,"
        "        $4::uuid IS NULL OR EXISTS (SELECT 1 FROM c) AS cursor_found,"
        "        jsonb_build_object("
        "          'deliveries', coalesce((SELECT jsonb_agg(octo_webhooks.delivery_json(d) ORDER BY x.n)"
        "             FROM numbered x JOIN octo_webhooks.deliveries d ON d.id = x.id"
        "            WHERE x.n <= $5::int), '[]'::jsonb),"
        "          'nextCursor', (SELECT x.id FROM numbered x WHERE x.n = $5::int"
        "                          AND EXISTS (SELECT 1 FROM numbered y WHERE y.n > $5::int)))::text AS page",
        5, args);
    if (rv != APR_SUCCESS) return rv;
    if (strcmp(owh_store_value(res, 0, "webhook_found"), "t")) rv = APR_NOTFOUND;
    else if (strcmp(owh_store_value(res, 0, "cursor_found"), "t")) rv = APR_EINVAL;   /* unknown cursor */
    else *pjson = apr_pstrdup(p, owh_store_value(res, 0, "page"));
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_delivery_retry(owh_db_t *db, const char *connection, const char *webhook_id,
                                      const char *delivery_id, const char **pjson, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { webhook_id, connection, delivery_id };
    apr_status_t rv;
    if (!owh_uuid_valid(webhook_id) || !owh_uuid_valid(delivery_id)) return APR_NOTFOUND;
    /* Anything but an attempt in flight becomes due now (the attempt count
     * stays: a delivery whose retries ran out gets this one attempt). */
    rv = owh_store_query(&res, db, p,
        "WITH t AS (SELECT id FROM octo_webhooks.deliveries"
        "            WHERE id = $3::uuid AND webhook_id = $1::uuid AND connection_id = $2 FOR UPDATE),"
        " u AS (UPDATE octo_webhooks.deliveries d"
        "        SET status = 'pending', claim_id = NULL, completed_at = NULL,"
        "            next_attempt_at = clock_timestamp()"
        "       FROM t WHERE d.id = t.id AND NOT (d.status = 'pending' AND d.claim_id IS NOT NULL"
        "                                         AND d.next_attempt_at > clock_timestamp())"
        "       RETURNING d.*)"
        " SELECT (SELECT count(*) FROM t) AS found,"
        "        (SELECT octo_webhooks.delivery_json(u::octo_webhooks.deliveries)::text FROM u) AS delivery,"
        "        (SELECT pg_notify('octo_webhooks', '') FROM u) IS NULL AS notified",
        3, args);
    if (rv != APR_SUCCESS) return rv;
    if (!strcmp(owh_store_value(res, 0, "found"), "0")) rv = APR_NOTFOUND;
    else if (!owh_store_value(res, 0, "delivery")) rv = APR_EBUSY;        /* in flight */
    else *pjson = apr_pstrdup(p, owh_store_value(res, 0, "delivery"));
    owh_store_clear(res, p);
    return rv;
}

apr_status_t owh_store_webhook_recover(owh_db_t *db, const char *connection, const char *webhook_id,
                                       const char *since, int *pcount, apr_pool_t *p)
{
    PGresult *res;
    const char *args[] = { webhook_id, connection, since };
    apr_status_t rv;
    if (!owh_uuid_valid(webhook_id)) return APR_NOTFOUND;
    rv = owh_store_query(&res, db, p,
        "SELECT EXISTS (SELECT 1 FROM octo_webhooks.webhooks WHERE id = $1::uuid AND connection_id = $2)"
        "         AS found,"
        "       octo_webhooks.recover($1::uuid, $2, $3::timestamptz) AS recovered", 3, args);
    if (rv != APR_SUCCESS) return rv;
    if (strcmp(owh_store_value(res, 0, "found"), "t")) rv = APR_NOTFOUND;
    else *pcount = atoi(owh_store_value(res, 0, "recovered"));
    owh_store_clear(res, p);
    return rv;
}
