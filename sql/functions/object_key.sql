-- octo_webhooks.object_key(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- The identifier that orders deliveries of one object and keys its diff.
-- STABLE, not IMMUTABLE: concat_ws() is only stable, and a SQL function
-- declared stricter than its body is never inlined — it would be parsed and
-- planned again on every emit().
CREATE OR REPLACE FUNCTION octo_webhooks.object_key(p_type text, p_object jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE p_type
        WHEN 'booking_update' THEN coalesce(p_object->>'uuid', p_object->>'id')
        WHEN 'order_update' THEN coalesce(p_object->>'id', p_object->>'orderId')
        WHEN 'product_update' THEN p_object->>'id'
        WHEN 'availability_update' THEN
            CASE WHEN p_object ? 'id' THEN
                concat_ws('/', p_object->>'productId', p_object->>'optionId', p_object->>'id') END
    END
$$;
REVOKE ALL ON FUNCTION octo_webhooks.object_key(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.object_key(text, jsonb) TO octo_webhooks_runtime;  -- emit_to_webhook()
