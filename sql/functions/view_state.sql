-- octo_webhooks.view_state(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Resolve mode (OctoWebhooksResolve): records the view fetched for an event
-- and returns the one that view last sent before it (the diff's start);
-- rows a week old that a later one follows are pruned as views are recorded.
CREATE OR REPLACE FUNCTION octo_webhooks.view_state(p_key text, p_event bigint, p_object jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_prev text;
BEGIN
    INSERT INTO octo_webhooks.resolved_states (state_key, event_id, object)
         VALUES (p_key, p_event, p_object)
    ON CONFLICT (state_key, event_id) DO UPDATE
        SET object = excluded.object, recorded_at = excluded.recorded_at;
    SELECT r.object::text INTO v_prev FROM octo_webhooks.resolved_states r
     WHERE r.state_key = p_key AND r.event_id < p_event ORDER BY r.event_id DESC LIMIT 1;
    DELETE FROM octo_webhooks.resolved_states r
     WHERE r.state_key = p_key AND r.recorded_at < clock_timestamp() - interval '7 days'
       AND EXISTS (SELECT 1 FROM octo_webhooks.resolved_states n
                    WHERE n.state_key = p_key AND n.event_id > r.event_id);
    RETURN v_prev;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.view_state(text, bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.view_state(text, bigint, jsonb) TO octo_webhooks_runtime;  -- the dispatcher (resolve mode)
