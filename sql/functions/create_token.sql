-- octo_webhooks.create_token(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- Token administration (used by the operator CLI). The plaintext is made
-- from two v4 UUIDs (244 random bits from pg_strong_random) and returned once.
CREATE OR REPLACE FUNCTION octo_webhooks.create_token(p_connection text, p_abilities text[], p_label text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_token text := 'owh_' || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
    v_known text[] := ARRAY['octo:read.webhooks', 'octo:write.webhooks',
                            'octo:read.notifications', 'octo:write.notifications'];
BEGIN
    IF p_connection IS NULL OR length(p_connection) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'connection id must be 1 to 200 characters';
    END IF;
    IF p_abilities IS NULL OR cardinality(p_abilities) = 0 OR NOT (p_abilities <@ v_known) THEN
        RAISE EXCEPTION 'abilities must be a non-empty subset of %', v_known;
    END IF;
    INSERT INTO octo_webhooks.connections (id) VALUES (p_connection) ON CONFLICT DO NOTHING;
    INSERT INTO octo_webhooks.tokens (token_hash, connection_id, abilities, label)
         VALUES (sha256(convert_to(v_token, 'UTF8')), p_connection, p_abilities, p_label);
    RETURN v_token;
END $$;
REVOKE ALL ON FUNCTION octo_webhooks.create_token(text, text[], text) FROM PUBLIC;
