-- octo_webhooks.event_type(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- 'booking.updated' and 'booking_update' are the same event.
CREATE OR REPLACE FUNCTION octo_webhooks.event_type(p_event text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_event
        WHEN 'booking_update' THEN 'booking_update'      WHEN 'booking.updated' THEN 'booking_update'
        WHEN 'order_update' THEN 'order_update'          WHEN 'order.updated' THEN 'order_update'
        WHEN 'availability_update' THEN 'availability_update'
        WHEN 'availability.updated' THEN 'availability_update'
        WHEN 'product_update' THEN 'product_update'      WHEN 'product.updated' THEN 'product_update'
    END
$$;
REVOKE ALL ON FUNCTION octo_webhooks.event_type(text) FROM PUBLIC;
