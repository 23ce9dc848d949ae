-- octo_webhooks.notices_take(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- The dispatcher's notice round: disable notices not yet logged (each logged
-- once, by whoever takes it) and, when an operator endpoint is configured,
-- due notices claimed under a lease.
CREATE OR REPLACE FUNCTION octo_webhooks.notices_take(p_send boolean, p_limit int, p_lease interval)
RETURNS TABLE (o_id bigint, o_claim uuid, o_type text, o_webhook uuid, o_connection text, o_reason text,
               o_count int, o_deliveries uuid[], o_at text, o_attempts int, o_log boolean)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH l AS (SELECT n.id FROM octo_webhooks.notices n WHERE NOT n.logged
                ORDER BY n.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
    UPDATE octo_webhooks.notices n SET logged = true FROM l WHERE n.id = l.id
    RETURNING n.id, NULL::uuid, n.type, n.webhook_id, n.connection_id, n.reason, n.count, n.deliveries,
              octo_webhooks.iso(n.created_at), n.attempts, true;
    IF p_send THEN
        RETURN QUERY
        WITH c AS (SELECT n.id FROM octo_webhooks.notices n
                    WHERE n.status = 'pending' AND n.next_attempt_at <= clock_timestamp()
                    ORDER BY n.next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
        UPDATE octo_webhooks.notices n
           SET claim_id = gen_random_uuid(), next_attempt_at = clock_timestamp() + p_lease
          FROM c WHERE n.id = c.id
        RETURNING n.id, n.claim_id, n.type, n.webhook_id, n.connection_id, n.reason, n.count, n.deliveries,
                  octo_webhooks.iso(n.created_at), n.attempts, false;
    END IF;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.notices_take(boolean, int, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.notices_take(boolean, int, interval) TO octo_webhooks_runtime;  -- the dispatcher
