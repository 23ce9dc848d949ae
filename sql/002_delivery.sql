-- 002: the transactional outbox (events), one delivery per (event, webhook),
-- and every attempt. octo_webhooks.emit() is the supplier's entry point.

CREATE TABLE octo_webhooks.events (
    id             bigserial PRIMARY KEY,
    event_type     text NOT NULL,
    object_key     text NOT NULL,          -- booking uuid, order id, product id, availability id
    object         jsonb NOT NULL,
    connection_id  text,                   -- booking/order events: the reseller they belong to
    language       text,
    supplier       jsonb,                  -- overrides the directives' supplier object
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A delivery is claimed by moving next_attempt_at past a lease: a dispatcher
-- that dies leaves it due again when the lease runs out, and due-time lookups
-- stay on one partial index however many rows wait.
CREATE TABLE octo_webhooks.deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- webhook-id: msg_<id>
    event_id         bigint NOT NULL REFERENCES octo_webhooks.events(id) ON DELETE CASCADE,
    webhook_id       uuid NOT NULL,        -- no FK: history outlives a deleted webhook
    connection_id    text NOT NULL,
    webhook          jsonb NOT NULL,       -- the webhook as it was at event time
    object_key       text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    claim_id         uuid,                 -- the current lease; results of an older one are ignored
    claimed_by       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at     timestamptz,
    last_status      integer,
    last_error       text
);
CREATE INDEX deliveries_due ON octo_webhooks.deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON octo_webhooks.deliveries (webhook_id, created_at DESC);
CREATE INDEX deliveries_event ON octo_webhooks.deliveries (event_id);

CREATE TABLE octo_webhooks.attempts (
    id               bigserial PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES octo_webhooks.deliveries(id) ON DELETE CASCADE,
    attempt          integer NOT NULL,
    started_at       timestamptz NOT NULL,
    status_code      integer,
    latency_ms       integer,
    response_excerpt text,
    error            text,
    dispatcher       text
);
CREATE INDEX attempts_delivery ON octo_webhooks.attempts (delivery_id, attempt);
