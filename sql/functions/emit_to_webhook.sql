-- octo_webhooks.emit_to_webhook(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- One delivery to one webhook, for POST /webhooks/{id}/trigger: the same
-- queue and path as real events; its event is a sample (sent as it is).
CREATE OR REPLACE FUNCTION octo_webhooks.emit_to_webhook(p_webhook uuid, p_connection text, p_object jsonb)
RETURNS TABLE (event_id bigint, delivery_id uuid) LANGUAGE plpgsql AS $$
DECLARE
    w octo_webhooks.webhooks;
    v_key text;
BEGIN
    SELECT * INTO w FROM octo_webhooks.webhooks WHERE id = p_webhook AND connection_id = p_connection;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_key := octo_webhooks.object_key(w.event_type, p_object);
    IF v_key IS NULL OR v_key = '' THEN
        RAISE EXCEPTION 'octo_webhooks.emit_to_webhook: the object has no identifier'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- routed here, to this webhook only: fanout() never sees a sample
    INSERT INTO octo_webhooks.events (event_type, object_key, object, connection_id, sample, routed)
         VALUES (w.event_type, v_key, p_object, p_connection, true, true)
      RETURNING id INTO event_id;
    INSERT INTO octo_webhooks.deliveries (event_id, webhook_id, connection_id, webhook, object_key,
                                          next_attempt_at)
         VALUES (event_id, w.id, w.connection_id, octo_webhooks.webhook_snapshot(w), v_key,
                 octo_webhooks.first_due(w.id, v_key))
      RETURNING id INTO delivery_id;
    PERFORM pg_notify('octo_webhooks', '');
    RETURN NEXT;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.emit_to_webhook(uuid, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.emit_to_webhook(uuid, text, jsonb) TO octo_webhooks_runtime;  -- the trigger route
