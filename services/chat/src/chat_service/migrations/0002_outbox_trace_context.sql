-- Keep the writer's trace context with each event so the relay publishes it in that trace.
ALTER TABLE outbox ADD COLUMN trace_context jsonb NOT NULL DEFAULT '{}'::jsonb;
