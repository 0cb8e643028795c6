-- The Pub/Sub namespace (the topology's name suffix) an event was written for: a relay
-- publishes only its own namespace's rows. Two deployments on one database with different
-- suffixes (the tests' services beside the local platform's) would otherwise take each other's
-- events and publish them where the other's subscribers never look.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS namespace text NOT NULL DEFAULT '';
DROP INDEX IF EXISTS outbox_pending_idx;
CREATE INDEX IF NOT EXISTS outbox_pending_ns_idx ON outbox (namespace, id) WHERE published_at IS NULL AND dead_at IS NULL;
