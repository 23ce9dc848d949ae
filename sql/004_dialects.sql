-- 004: payload fidelity and the notifications dialect (issue 5).
--
-- diff[]: the state of each booking, order and product as last sent lives in
-- object_states; emit() copies it into the new event (events.previous) and
-- replaces it, so the dispatcher computes one diff per event from one row.
--
-- Dialects: a stored webhook is either an octo/webhooks Webhook (one event
-- type) or a seed-003 notifications subscription (several types); both are
-- rows of webhooks, fanned out by the same emit() and delivered by the same
-- dispatcher with the same retries.

CREATE TABLE octo_webhooks.object_states (
    event_type  text NOT NULL,
    object_key  text NOT NULL,
    object      jsonb NOT NULL,
    event_id    bigint NOT NULL,       -- the event that sent this state
    PRIMARY KEY (event_type, object_key)
);
ALTER TABLE octo_webhooks.events
    ADD COLUMN previous jsonb,
    -- a trigger route's sample object: always sent as it is (never resolved)
    ADD COLUMN sample boolean NOT NULL DEFAULT false;

ALTER TABLE octo_webhooks.webhooks
    ADD COLUMN dialect      text NOT NULL DEFAULT 'octo' CHECK (dialect IN ('octo', 'notifications')),
    ADD COLUMN event_types  text[];
UPDATE octo_webhooks.webhooks SET event_types = ARRAY[event_type];
ALTER TABLE octo_webhooks.webhooks
    ALTER COLUMN event_types SET NOT NULL,
    ADD CONSTRAINT webhooks_event_types_check CHECK (cardinality(event_types) BETWEEN 1 AND 3
        AND event_types <@ ARRAY['booking_update', 'order_update', 'availability_update', 'product_update']);
DROP INDEX octo_webhooks.webhooks_event_active;
CREATE INDEX webhooks_types_active ON octo_webhooks.webhooks USING gin (event_types) WHERE active;

-- Resolve mode (OctoWebhooksResolve): the dispatcher fetches each view of an
-- object (capabilities, language) from the supplier's API at delivery time;
-- the view fetched for each event is kept so the next event's diff starts
-- from what that view last sent. Rows a week old that a later one follows are
-- pruned as views are recorded.
CREATE TABLE octo_webhooks.resolved_states (
    state_key   text NOT NULL,          -- event type/object key|capabilities|language
    event_id    bigint NOT NULL,
    object      jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (state_key, event_id)
);
