-- octo_webhooks.release(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Hands claimed deliveries back (a dispatcher stopping, or a host that cannot
-- take them soon): due again after p_delay, out of their webhooks' in-flight
-- counts. By primary key; a claim id names one lease of one delivery, so
-- matching both sets is exact. webhook_flight is written under the claims'
-- lock only (see complete()).
CREATE OR REPLACE FUNCTION octo_webhooks.release(p_ids uuid[], p_claims uuid[], p_delay interval)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_n int;
BEGIN
    PERFORM pg_advisory_xact_lock(7261003, 1);
    WITH r AS (UPDATE octo_webhooks.deliveries d
                  SET next_attempt_at = clock_timestamp() + p_delay, claim_id = NULL
                WHERE d.id = ANY (p_ids) AND d.claim_id = ANY (p_claims) AND d.status = 'pending'
            RETURNING d.webhook_id),
    n AS (SELECT r.webhook_id, count(*)::int AS n FROM r GROUP BY r.webhook_id),
    f AS (UPDATE octo_webhooks.webhook_flight f SET in_flight = greatest(f.in_flight - n.n, 0)
            FROM n WHERE f.webhook_id = n.webhook_id)
    SELECT coalesce(sum(n.n), 0) INTO v_n FROM n;
    RETURN v_n;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.release(uuid[], uuid[], interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.release(uuid[], uuid[], interval) TO octo_webhooks_runtime;  -- the dispatcher
