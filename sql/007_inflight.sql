-- 007: per-webhook in-flight counts (issue 10). claim() read a webhook's
-- deliveries in flight off deliveries_webhook_due, crossing the index entries
-- every delivery completed since the last VACUUM left at its lease's end: a
-- cost that grew with the traffic, paid on every claim. Now claim() adds what
-- it leases, complete() and hand-backs subtract what they end, and claim()
-- recounts from the deliveries (at most once a second per webhook) only when
-- the count says the cap binds, so a count left high by a lost dispatcher
-- costs at most a second of that webhook's cap.
CREATE TABLE octo_webhooks.webhook_flight (
    webhook_id  uuid PRIMARY KEY,
    in_flight   integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
    counted_at  timestamptz NOT NULL DEFAULT '-infinity'   -- last recount from the deliveries
);
INSERT INTO octo_webhooks.webhook_flight (webhook_id, in_flight, counted_at)
     SELECT webhook_id, count(*), clock_timestamp() FROM octo_webhooks.deliveries
      WHERE status = 'pending' AND claim_id IS NOT NULL AND next_attempt_at > clock_timestamp()
        AND next_attempt_at < 'infinity'
      GROUP BY webhook_id;
GRANT SELECT, INSERT, UPDATE, DELETE ON octo_webhooks.webhook_flight TO octo_webhooks_runtime;

-- A queue table: rows churn through deliveries_due and deliveries_webhook_due
-- and leave dead entries at the front of the due range until VACUUM, which
-- every claim then steps over. Vacuum it after a fixed number of changes
-- rather than a fifth of a table that keeps its history for the retention.
ALTER TABLE octo_webhooks.deliveries SET (autovacuum_vacuum_scale_factor = 0.01,
                                          autovacuum_vacuum_threshold = 5000);
