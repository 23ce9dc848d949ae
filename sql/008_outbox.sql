-- 008: emit() only records the event (issue 10: a booking emit() must cost
-- about what the supplier's own INSERT costs). The dispatchers route events
-- to their webhooks (fanout(), inside claim()): the events table becomes a
-- true outbox, and the delivery rows, their six indexes and the foreign key
-- check leave the supplier's transaction.
--
-- Events recorded before this migration were routed by emit() already.
ALTER TABLE octo_webhooks.events ADD COLUMN routed boolean NOT NULL DEFAULT true;
ALTER TABLE octo_webhooks.events ALTER COLUMN routed SET DEFAULT false;
-- What waits to be routed: a handful of entries however large events grows.
CREATE INDEX events_unrouted ON octo_webhooks.events (id) WHERE NOT routed;

-- Dispatchers that wait for a NOTIFY (their last claim did not fill its
-- batch). emit() notifies only when one is listed: a busy dispatcher claims
-- again by itself, and NOTIFY's commit lock (held across the WAL flush with
-- synchronous_commit on) would serialize the suppliers' commits. A row a
-- dead dispatcher left costs emitters a NOTIFY each until claim() drops it
-- (a listed dispatcher refreshes its row at every poll).
CREATE TABLE octo_webhooks.dispatcher_sleep (
    owner  text PRIMARY KEY,
    since  timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- a row per idle period: churn on a table emit() reads whole
ALTER TABLE octo_webhooks.dispatcher_sleep SET (autovacuum_vacuum_threshold = 200,
                                                autovacuum_vacuum_scale_factor = 0);
GRANT SELECT, INSERT, UPDATE, DELETE ON octo_webhooks.dispatcher_sleep TO octo_webhooks_runtime;
