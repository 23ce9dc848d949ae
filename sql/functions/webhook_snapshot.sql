-- octo_webhooks.webhook_snapshot(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- The webhook as deliveries see it (credentials kept for sending; the
-- payload shows url_display, the dialect gives its shape).
CREATE OR REPLACE FUNCTION octo_webhooks.webhook_snapshot(w octo_webhooks.webhooks) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', w.id, 'event', w.event, 'url', w.url,
        'url_display', w.url_display, 'active', w.active, 'retryOnError', w.retry_on_error,
        'useContactLanguage', w.use_contact_language, 'headers', w.headers,
        'capabilities', to_jsonb(w.capabilities), 'dialect', w.dialect)
$$;
REVOKE ALL ON FUNCTION octo_webhooks.webhook_snapshot(octo_webhooks.webhooks) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.webhook_snapshot(octo_webhooks.webhooks) TO octo_webhooks_runtime;  -- emit_to_webhook()
