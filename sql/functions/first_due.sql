-- octo_webhooks.first_due(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- When a new delivery of an object to a webhook falls due: now, or parked
-- ('infinity') behind an earlier pending delivery of the same object.
CREATE OR REPLACE FUNCTION octo_webhooks.first_due(p_webhook uuid, p_key text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM octo_webhooks.deliveries p
                              WHERE p.webhook_id = p_webhook AND p.object_key = p_key
                                AND p.status = 'pending')
                THEN 'infinity'::timestamptz ELSE clock_timestamp() END
$$;
REVOKE ALL ON FUNCTION octo_webhooks.first_due(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.first_due(uuid, text) TO octo_webhooks_runtime;  -- emit_to_webhook()
