-- octo_webhooks.update_webhook(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- PATCH /webhooks/{id} and PATCH /v1/notifications/subscriptions/{id} in one round trip
-- and one transaction (the statement's own): the connection's row of that dialect read
-- and locked, the body's fields (NULL: not in the body) applied over it, the row written,
-- and the stored object returned for the answer. No row: not the connection's (404).
--   - p_url equal to the stored URL's masked form (url_display) keeps the stored URL and
--     its credentials: a client that read the object back sends the mask unchanged.
--   - p_capabilities (octo webhooks: from Octo-Capabilities; NULL keeps them) gains
--     octo/cart when the resulting event is order_update, as on create.
--   - The module checks a body's URL against its SSRF rule before the call; a URL the
--     body left alone is checked again only when its host may be an IP literal (the rule
--     sees nothing else): then the row is returned unchanged with updated false, and the
--     module checks that URL and calls again with it as p_checked_url.
--   - Reactivating (active true) clears what the module recorded when it deactivated.
CREATE OR REPLACE FUNCTION octo_webhooks.update_webhook(
    p_id uuid, p_connection text, p_dialect text, p_event text, p_event_type text, p_url text,
    p_url_display text, p_active boolean, p_retry_on_error boolean, p_use_contact_language boolean,
    p_headers jsonb, p_capabilities text[], p_event_types text[], p_checked_url text)
RETURNS TABLE (updated boolean, id uuid, event text, url text, active boolean, retry_on_error boolean,
               use_contact_language boolean, headers text, capabilities text[], has_secret boolean,
               disabled_reason text, disabled_at text, dialect text, event_types text[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    w octo_webhooks.webhooks;
    v_updated boolean := true;
    v_url text;
    v_display text;
    v_host text;
    v_caps text[];
BEGIN
    SELECT * INTO w FROM octo_webhooks.webhooks
     WHERE id = p_id AND connection_id = p_connection AND dialect = p_dialect
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_url IS NOT NULL AND NOT (w.url <> w.url_display AND p_url = w.url_display) THEN
        v_url := p_url;
        v_display := p_url_display;
    ELSE
        v_url := w.url;
        v_display := w.url_display;
        IF p_url IS NULL AND p_checked_url IS DISTINCT FROM w.url THEN
            -- the host as apr_uri_parse reads it: after the last '@' of the authority,
            -- before the port; hex digits, 'x' and dots only (inet_aton's forms), or
            -- an empty or bracketed (IPv6) host, may be a literal
            v_host := regexp_replace(coalesce(substring(w.url FROM '^[^:/?#]+://([^/?#]*)'), ''), '^.*@', '');
            v_updated := NOT (v_host LIKE '[%' OR split_part(v_host, ':', 1) ~ '^[0-9A-Fa-fXx.]*$');
        END IF;
    END IF;
    IF v_updated THEN
        v_caps := coalesce(p_capabilities, w.capabilities);
        IF p_capabilities IS NOT NULL AND coalesce(p_event_type, w.event_type) = 'order_update'
           AND NOT 'octo/cart' = ANY (v_caps) THEN
            v_caps := v_caps || 'octo/cart'::text;
        END IF;
        UPDATE octo_webhooks.webhooks u
           SET event = coalesce(p_event, u.event), event_type = coalesce(p_event_type, u.event_type),
               url = v_url, url_display = v_display, active = coalesce(p_active, u.active),
               retry_on_error = coalesce(p_retry_on_error, u.retry_on_error),
               use_contact_language = coalesce(p_use_contact_language, u.use_contact_language),
               headers = coalesce(p_headers, u.headers), capabilities = v_caps,
               updated_at = clock_timestamp(), event_types = coalesce(p_event_types, u.event_types),
               disabled_reason = CASE WHEN coalesce(p_active, u.active) THEN NULL ELSE u.disabled_reason END,
               disabled_at = CASE WHEN coalesce(p_active, u.active) THEN NULL ELSE u.disabled_at END,
               failing_since = CASE WHEN p_active AND NOT u.active THEN NULL ELSE u.failing_since END
         WHERE u.id = w.id
        RETURNING u.* INTO w;
    END IF;
    RETURN QUERY SELECT v_updated, w.id, w.event, w.url, w.active, w.retry_on_error,
        w.use_contact_language, w.headers::text, w.capabilities, w.secret IS NOT NULL, w.disabled_reason,
        to_char(w.disabled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), w.dialect, w.event_types;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.update_webhook(uuid, text, text, text, text, text, text, boolean,
    boolean, boolean, jsonb, text[], text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.update_webhook(uuid, text, text, text, text, text, text, boolean,
    boolean, boolean, jsonb, text[], text[], text) TO octo_webhooks_runtime;   -- the PATCH routes
