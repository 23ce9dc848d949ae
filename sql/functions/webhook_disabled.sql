-- octo_webhooks.webhook_disabled(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Every deactivation by the module (410, auto-disable) becomes a notice,
-- whichever path made it: a trigger on the rare webhook update, not on the
-- hot delivery rows.
CREATE OR REPLACE FUNCTION octo_webhooks.webhook_disabled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO octo_webhooks.notices (type, webhook_id, connection_id, reason)
         VALUES ('webhook.disabled', NEW.id, NEW.connection_id, NEW.disabled_reason);
    PERFORM pg_notify('octo_webhooks', '');
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER webhooks_disabled AFTER UPDATE OF active ON octo_webhooks.webhooks
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active AND NEW.disabled_reason IS NOT NULL)
    EXECUTE FUNCTION octo_webhooks.webhook_disabled();
REVOKE ALL ON FUNCTION octo_webhooks.webhook_disabled() FROM PUBLIC;
