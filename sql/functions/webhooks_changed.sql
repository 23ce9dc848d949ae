-- octo_webhooks.webhooks_changed(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- A webhook's shown state changed (created, deleted, or any column a GET
-- shows): the dispatchers listening on octo_webhooks_lists tell their host's
-- httpd children that cached lists are stale (src/owh_listcache.h). Whoever
-- made the change: the API of any host, a dispatcher disabling a webhook, the
-- CLI, plain SQL. NOTIFY folds the rows of one transaction into one notice;
-- the delivery bookkeeping (failing_since) notifies nothing.
CREATE OR REPLACE FUNCTION octo_webhooks.webhooks_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('octo_webhooks_lists', '');
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER webhooks_changed_rows AFTER INSERT OR DELETE ON octo_webhooks.webhooks
    FOR EACH ROW EXECUTE FUNCTION octo_webhooks.webhooks_changed();
CREATE OR REPLACE TRIGGER webhooks_changed_shown AFTER UPDATE ON octo_webhooks.webhooks
    FOR EACH ROW WHEN ((OLD.connection_id, OLD.event, OLD.url, OLD.active, OLD.retry_on_error,
                        OLD.use_contact_language, OLD.headers, OLD.capabilities, OLD.secret IS NULL,
                        OLD.disabled_reason, OLD.disabled_at, OLD.dialect, OLD.event_types)
                       IS DISTINCT FROM
                       (NEW.connection_id, NEW.event, NEW.url, NEW.active, NEW.retry_on_error,
                        NEW.use_contact_language, NEW.headers, NEW.capabilities, NEW.secret IS NULL,
                        NEW.disabled_reason, NEW.disabled_at, NEW.dialect, NEW.event_types))
    EXECUTE FUNCTION octo_webhooks.webhooks_changed();
REVOKE ALL ON FUNCTION octo_webhooks.webhooks_changed() FROM PUBLIC;
