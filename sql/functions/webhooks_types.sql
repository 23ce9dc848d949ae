-- octo_webhooks.webhooks_types(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- With the trigger that calls it. An octo webhook receives exactly its event;
-- a subscription's event_type is its first type (listings and the attempt log
-- read it).
CREATE OR REPLACE FUNCTION octo_webhooks.webhooks_types() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.dialect = 'octo' OR NEW.event_types IS NULL THEN
        NEW.event_types := ARRAY[NEW.event_type];
    ELSE
        NEW.event_type := NEW.event_types[1];
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER webhooks_types BEFORE INSERT OR UPDATE ON octo_webhooks.webhooks
    FOR EACH ROW EXECUTE FUNCTION octo_webhooks.webhooks_types();
REVOKE ALL ON FUNCTION octo_webhooks.webhooks_types() FROM PUBLIC;
