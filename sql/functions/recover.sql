-- octo_webhooks.recover(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Requeues a connection's failed deliveries of one webhook created since a
-- time, keeping the order per object: the first of each object goes now
-- unless the object already has one pending, the rest wait parked.
CREATE OR REPLACE FUNCTION octo_webhooks.recover(p_webhook uuid, p_connection text, p_since timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n int;
BEGIN
    WITH f AS (
        SELECT d.id,
               row_number() OVER (PARTITION BY d.object_key ORDER BY d.event_id) AS rn,
               EXISTS (SELECT 1 FROM octo_webhooks.deliveries p
                        WHERE p.webhook_id = d.webhook_id AND p.object_key = d.object_key
                          AND p.status = 'pending') AS busy
          FROM octo_webhooks.deliveries d
         WHERE d.webhook_id = p_webhook AND d.connection_id = p_connection
           AND d.status = 'failed' AND d.created_at >= p_since)
    UPDATE octo_webhooks.deliveries d
       SET status = 'pending', claim_id = NULL, completed_at = NULL,
           next_attempt_at = CASE WHEN f.rn = 1 AND NOT f.busy THEN clock_timestamp()
                                  ELSE 'infinity'::timestamptz END
      FROM f WHERE d.id = f.id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        PERFORM pg_notify('octo_webhooks', '');
    END IF;
    RETURN v_n;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.recover(uuid, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.recover(uuid, text, timestamptz) TO octo_webhooks_runtime;  -- the recover route
