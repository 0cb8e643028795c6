-- The kit's tables in a service's schema: the transactional outbox (events written with the
-- data they describe, published by workplace_kit.outbox.OutboxRelay) and the inbox (events a
-- consumer has handled, by event id: workplace_kit.inbox). Written to apply to a schema that
-- already has an outbox from an earlier service migration, and to a new one.
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    ordering_key text NOT NULL,
    type_name text NOT NULL,
    payload bytea NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    trace_context jsonb NOT NULL DEFAULT '{}'::jsonb
);
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS trace_context jsonb NOT NULL DEFAULT '{}'::jsonb;
-- Published rows are kept for a while: if the broker loses its state, they are published again.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS published_at timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz NOT NULL DEFAULT now();
-- A relay that took rows holds them until then; after a crash another relay takes them.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_until timestamptz;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS last_error text;
-- Rows that can never be published (undecodable, refused by the broker) stop here, visible.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS dead_at timestamptz;
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON outbox (id) WHERE published_at IS NULL AND dead_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS inbox (
    consumer text NOT NULL,
    event_id text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS inbox_handled_at_idx ON inbox (handled_at);
