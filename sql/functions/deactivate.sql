-- octo_webhooks.deactivate(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Deactivates webhooks (410 Gone, auto-disable) and fails what they still
-- had pending: a later recover brings those back.
CREATE OR REPLACE FUNCTION octo_webhooks.deactivate(p_webhooks uuid[], p_reason text)
RETURNS void LANGUAGE sql AS $$
    -- webhook_flight is written under the claims' lock only (see complete())
    SELECT pg_advisory_xact_lock(7261003, 1);
    UPDATE octo_webhooks.webhooks
       SET active = false, disabled_reason = p_reason, disabled_at = clock_timestamp(),
           updated_at = clock_timestamp()
     WHERE id = ANY (p_webhooks);
    UPDATE octo_webhooks.deliveries
       SET status = 'failed', claim_id = NULL, completed_at = clock_timestamp(),
           last_error = 'webhook deactivated: ' || p_reason
     WHERE webhook_id = ANY (p_webhooks) AND status = 'pending';
    -- their leases are void (results of them are not applied)
    DELETE FROM octo_webhooks.webhook_flight WHERE webhook_id = ANY (p_webhooks);
$$;
REVOKE ALL ON FUNCTION octo_webhooks.deactivate(uuid[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.deactivate(uuid[], text) TO octo_webhooks_runtime;  -- complete()
