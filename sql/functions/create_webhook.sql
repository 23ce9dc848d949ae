-- octo_webhooks.create_webhook(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- POST /webhooks and POST /v1/notifications/subscriptions in one round trip and one
-- transaction (the statement's own): the connection's row (r->user mode has no token
-- row), the OctoWebhooksMaxWebhooks bound (p_max; 0: none) counted while the
-- connection's creates take turns on an advisory lock of their own class (7261013),
-- then the row. Each statement of this (volatile) function takes its snapshot when it
-- starts, so the count sees every create committed before the lock was granted: exact
-- across httpd children and hosts. NULL when the connection is at the bound.
CREATE OR REPLACE FUNCTION octo_webhooks.create_webhook(
    p_connection text, p_event text, p_event_type text, p_url text, p_url_display text,
    p_active boolean, p_retry_on_error boolean, p_use_contact_language boolean, p_headers jsonb,
    p_capabilities text[], p_secret text, p_dialect text, p_event_types text[], p_max integer)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    v_id uuid;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM octo_webhooks.connections WHERE id = p_connection) THEN
        INSERT INTO octo_webhooks.connections (id) VALUES (p_connection) ON CONFLICT DO NOTHING;
    END IF;
    IF p_max > 0 THEN
        PERFORM pg_advisory_xact_lock(7261013, hashtext(p_connection));
        -- counting stops at the bound, so its cost does too
        IF (SELECT count(*) FROM (SELECT 1 FROM octo_webhooks.webhooks
                                   WHERE connection_id = p_connection LIMIT p_max) w) >= p_max THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO octo_webhooks.webhooks (connection_id, event, event_type, url, url_display, active,
                                        retry_on_error, use_contact_language, headers, capabilities,
                                        secret, dialect, event_types)
         VALUES (p_connection, p_event, p_event_type, p_url, p_url_display, p_active, p_retry_on_error,
                 p_use_contact_language, p_headers, p_capabilities, p_secret, p_dialect, p_event_types)
      RETURNING id INTO v_id;
    RETURN v_id;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.create_webhook(text, text, text, text, text, boolean, boolean, boolean,
    jsonb, text[], text, text, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.create_webhook(text, text, text, text, text, boolean, boolean, boolean,
    jsonb, text[], text, text, text[], integer) TO octo_webhooks_runtime;   -- the create routes
