-- 001: connections, their tokens, and the webhooks they register.
-- Applied by the module itself (owh_store_migrate) under an advisory lock.
-- Migrations hold tables, indexes and data only, and are frozen once
-- released (checksummed); functions live in sql/functions/.

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
