-- octo_webhooks.delivery_json(): defined here only; the module re-creates it when this
-- file changes (see README, "Schema").
-- A delivery with its attempts, as GET /webhooks/{id}/deliveries lists it.
CREATE OR REPLACE FUNCTION octo_webhooks.delivery_json(d octo_webhooks.deliveries) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', d.id, 'webhookId', d.webhook_id, 'eventId', d.event_id, 'event', e.event_type,
        'objectKey', d.object_key, 'status', d.status, 'attemptCount', d.attempts,
        'createdAt', octo_webhooks.iso(d.created_at),
        'nextAttemptAt', CASE WHEN d.status = 'pending' AND d.next_attempt_at <> 'infinity'
                              THEN octo_webhooks.iso(d.next_attempt_at) END,
        'waitingForEarlier', d.status = 'pending' AND d.next_attempt_at = 'infinity',
        'completedAt', octo_webhooks.iso(d.completed_at),
        'lastStatusCode', d.last_status, 'lastError', d.last_error,
        'attempts', coalesce((SELECT jsonb_agg(jsonb_build_object(
                'attempt', a.attempt, 'startedAt', octo_webhooks.iso(a.started_at),
                'statusCode', a.status_code, 'latencyMs', a.latency_ms,
                'responseExcerpt', a.response_excerpt, 'error', a.error) ORDER BY a.attempt, a.id)
            FROM octo_webhooks.attempts a WHERE a.delivery_id = d.id), '[]'::jsonb))
      FROM octo_webhooks.events e WHERE e.id = d.event_id
$$;
REVOKE ALL ON FUNCTION octo_webhooks.delivery_json(octo_webhooks.deliveries) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION octo_webhooks.delivery_json(octo_webhooks.deliveries) TO octo_webhooks_runtime;  -- the deliveries routes
