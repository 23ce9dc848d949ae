-- 005: least privilege. The owner (the role that runs migrations) owns every
-- object; two group roles get only what their members need:
--   octo_webhooks_runtime  the module at run time (grant it to httpd's login
--                          role and set OctoWebhooksMigrate Off): the DML of
--                          the API and the dispatcher, no DDL
--   octo_webhooks_emitter  the supplier's application: EXECUTE on emit() and
--                          nothing else (emit() is SECURITY DEFINER)
-- Roles are global to the cluster: created once, if missing (which needs
-- CREATEROLE; a DBA may create them beforehand instead). EXECUTE on functions
-- is granted by each sql/functions/ file.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['octo_webhooks_runtime', 'octo_webhooks_emitter'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % does not exist and % may not create it', r, current_user
                    USING HINT = format('as a superuser: CREATE ROLE %I NOLOGIN; then start again', r);
            END;
        END IF;
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA octo_webhooks TO octo_webhooks_runtime, octo_webhooks_emitter;

-- The module at run time: Migrate Off only reads the schema's state.
GRANT SELECT ON octo_webhooks.schema_migrations, octo_webhooks.schema_functions TO octo_webhooks_runtime;
GRANT SELECT ON octo_webhooks.tokens TO octo_webhooks_runtime;
GRANT SELECT, INSERT ON octo_webhooks.connections TO octo_webhooks_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON octo_webhooks.webhooks TO octo_webhooks_runtime;
GRANT SELECT, INSERT ON octo_webhooks.events, octo_webhooks.attempts TO octo_webhooks_runtime;
GRANT SELECT, INSERT, UPDATE ON octo_webhooks.deliveries, octo_webhooks.webhook_rate TO octo_webhooks_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON octo_webhooks.resolved_states TO octo_webhooks_runtime;
GRANT USAGE ON SEQUENCE octo_webhooks.webhooks_seq_seq, octo_webhooks.events_id_seq,
                        octo_webhooks.attempts_id_seq TO octo_webhooks_runtime;
