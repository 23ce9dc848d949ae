-- 006: operations: the tables and indexes behind retention (prune()), the
-- figures of /metrics and /status (stats()), events counted by type, and the
-- operator's notices (sql/functions: prune, stats, capped_count,
-- note_exhausted, notices_take, notice_done, webhook_disabled).

-- Pruning walks ended deliveries oldest first: a partial index holds only
-- them (pending rows, the hot ones, are not in it).
CREATE INDEX deliveries_ended ON octo_webhooks.deliveries (completed_at) WHERE status <> 'pending';
-- Failed deliveries are few: counted exactly (up to a cap) from their own index.
CREATE INDEX deliveries_failed ON octo_webhooks.deliveries (webhook_id) WHERE status = 'failed';
-- States are pruned by the event that wrote them.
CREATE INDEX object_states_event ON octo_webhooks.object_states (event_id);
CREATE INDEX resolved_states_event ON octo_webhooks.resolved_states (event_id);

-- One row: where pruning and the events tally are. Whoever holds the prune
-- advisory lock updates it.
CREATE TABLE octo_webhooks.maintenance (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    tallied_to    bigint NOT NULL DEFAULT 0,       -- events counted into event_totals up to this id
    pruned_to     bigint NOT NULL DEFAULT 0,       -- events older than the retention up to this id were looked at
    pruned_at     timestamptz,                     -- the last round that found nothing more to do
    prune_more    boolean NOT NULL DEFAULT false   -- the last batch was full: go on without waiting
);
INSERT INTO octo_webhooks.maintenance DEFAULT VALUES;

-- Events emitted, by type, since the schema exists (a counter that pruning
-- does not lower).
CREATE TABLE octo_webhooks.event_totals (
    event_type  text PRIMARY KEY,
    n           bigint NOT NULL
);

-- One row per prune batch (the last 10,000): who pruned, when, what.
-- Batches of different dispatchers never overlap (the advisory lock is held
-- for the whole transaction that writes the row).
CREATE TABLE octo_webhooks.prune_log (
    id          bigserial PRIMARY KEY,
    owner       text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    deliveries  integer NOT NULL,
    events      integer NOT NULL,
    states      integer NOT NULL
);

-- Operator notices: a small queue of its own, drained by the dispatchers
-- (claimed with SKIP LOCKED, retried on the retry schedule, signed), so a
-- notice survives restarts and outages like a delivery does without
-- becoming a fake webhook that resellers' listings, caps and payloads would
-- have to leave out.
CREATE TABLE octo_webhooks.notices (
    id               bigserial PRIMARY KEY,
    type             text NOT NULL CHECK (type IN ('webhook.disabled', 'delivery.exhausted')),
    webhook_id       uuid NOT NULL,
    connection_id    text NOT NULL,
    reason           text NOT NULL,
    count            integer NOT NULL DEFAULT 1,      -- exhausted deliveries folded into it
    deliveries       uuid[] NOT NULL DEFAULT '{}',   -- the first few of them
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    window_at        timestamptz NOT NULL DEFAULT clock_timestamp(), -- due no earlier than this
    logged           boolean NOT NULL DEFAULT false, -- its warn line was written
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    claim_id         uuid,
    completed_at     timestamptz,
    last_error       text
);
CREATE INDEX notices_due ON octo_webhooks.notices (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notices_unlogged ON octo_webhooks.notices (id) WHERE NOT logged;
CREATE INDEX notices_webhook ON octo_webhooks.notices (webhook_id, type, window_at);
-- Exhausted deliveries of a webhook fold into its one open notice.
CREATE UNIQUE INDEX notices_open ON octo_webhooks.notices (webhook_id)
    WHERE type = 'delivery.exhausted' AND status = 'pending' AND attempts = 0 AND claim_id IS NULL;

-- The module at run time: notices are written by the trigger (as whoever
-- deactivates) and by the dispatcher; the rest is read by stats(). prune()
-- is SECURITY DEFINER: the runtime role deletes nothing directly.
GRANT SELECT, INSERT, UPDATE ON octo_webhooks.notices TO octo_webhooks_runtime;
GRANT USAGE ON SEQUENCE octo_webhooks.notices_id_seq TO octo_webhooks_runtime;
GRANT SELECT ON octo_webhooks.event_totals, octo_webhooks.prune_log TO octo_webhooks_runtime;
