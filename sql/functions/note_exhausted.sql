-- octo_webhooks.note_exhausted(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- After complete(): the batch's deliveries that ended failed (retries
-- exhausted, not retried, or never sendable), except 410s (their webhook's
-- disable is the notice). Folds them into one open notice per webhook, due at
-- most once a minute, and returns them for the warn lines.
CREATE OR REPLACE FUNCTION octo_webhooks.note_exhausted(p_results jsonb)
RETURNS TABLE (webhook_id uuid, connection_id text, delivery_id uuid, reason text)
LANGUAGE sql AS $$
    WITH e AS (SELECT d.webhook_id, d.connection_id, d.id AS delivery_id,
                      coalesce(d.last_error, 'failed') AS reason
                 FROM jsonb_to_recordset(p_results) AS r(id uuid, attempt int, status text, gone boolean)
                 JOIN octo_webhooks.deliveries d ON d.id = r.id
                WHERE r.status = 'failed' AND NOT coalesce(r.gone, false) AND d.status = 'failed'
                  AND d.attempts = r.attempt
                  AND d.completed_at > clock_timestamp() - interval '10 minutes'),
    ins AS (INSERT INTO octo_webhooks.notices AS n (type, webhook_id, connection_id, reason, count,
                                                   deliveries, window_at, next_attempt_at, logged)
            SELECT 'delivery.exhausted', g.webhook_id, g.connection_id, g.reason, g.n, g.ids, w.at, w.at, true
              FROM (SELECT e.webhook_id, min(e.connection_id) AS connection_id, min(e.reason) AS reason,
                           count(*) AS n, (array_agg(e.delivery_id))[1:10] AS ids
                      FROM e GROUP BY e.webhook_id) g
             CROSS JOIN LATERAL (SELECT greatest(clock_timestamp(),
                     (SELECT max(p.window_at) + interval '1 minute' FROM octo_webhooks.notices p
                       WHERE p.webhook_id = g.webhook_id AND p.type = 'delivery.exhausted')) AS at) w
            ON CONFLICT (webhook_id) WHERE type = 'delivery.exhausted' AND status = 'pending'
                                           AND attempts = 0 AND claim_id IS NULL
            DO UPDATE SET count = n.count + EXCLUDED.count, reason = EXCLUDED.reason,
                          deliveries = (n.deliveries || EXCLUDED.deliveries)[1:10])
    SELECT * FROM e;
$$;
REVOKE ALL ON FUNCTION octo_webhooks.note_exhausted(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.note_exhausted(jsonb) TO octo_webhooks_runtime;  -- the dispatcher, after complete()
