-- 001: connections, their tokens, and the webhooks they register.
-- Applied by the module itself (owh_store_migrate) under an advisory lock.

CREATE TABLE octo_webhooks.connections (
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Tokens are stored as SHA-256 of the plaintext; the plaintext is shown once.
CREATE TABLE octo_webhooks.tokens (
    id            bigserial PRIMARY KEY,
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    connection_id text NOT NULL REFERENCES octo_webhooks.connections(id) ON DELETE CASCADE,
    abilities     text[] NOT NULL,
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

CREATE TABLE octo_webhooks.webhooks (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq                   bigserial NOT NULL UNIQUE,          -- creation order for listings
    connection_id         text NOT NULL REFERENCES octo_webhooks.connections(id) ON DELETE CASCADE,
    event                 text NOT NULL,                      -- as the client spelled it
    event_type            text NOT NULL CHECK (event_type IN
                            ('booking_update', 'order_update', 'availability_update', 'product_update')),
    url                   text NOT NULL,                      -- may carry user:pass@
    url_display           text NOT NULL,                      -- the same with the password masked
    active                boolean NOT NULL DEFAULT true,
    retry_on_error        boolean NOT NULL DEFAULT true,
    use_contact_language  boolean NOT NULL DEFAULT true,
    headers               jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(headers) = 'object'),
    capabilities          text[] NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhooks_connection_seq ON octo_webhooks.webhooks (connection_id, seq);
CREATE INDEX webhooks_event_active ON octo_webhooks.webhooks (event_type) WHERE active;

-- Token administration (used by bin/octo-webhooks-token). The plaintext is made
-- from two v4 UUIDs (244 random bits from pg_strong_random) and returned once.
CREATE FUNCTION octo_webhooks.create_token(p_connection text, p_abilities text[], p_label text DEFAULT NULL)
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

CREATE FUNCTION octo_webhooks.revoke_token(p_token text)
RETURNS boolean LANGUAGE sql AS $$
    UPDATE octo_webhooks.tokens SET revoked_at = now()
     WHERE token_hash = sha256(convert_to(p_token, 'UTF8')) AND revoked_at IS NULL
    RETURNING true;
$$;
