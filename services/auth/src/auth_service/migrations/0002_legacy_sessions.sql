-- Sessions of the legacy Flask app moved to accounts (a visit with the legacy cookie, or
-- `python -m auth_service migrate-legacy`). One row per legacy session, keyed by the SHA-256 of
-- its id (the id is a credential, so it is not stored): moving it again finds this row and
-- moves nothing.
CREATE TABLE legacy_migrations (
    legacy_key bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    -- A guest account was made for it (else it went to an account that already existed).
    created_user boolean NOT NULL,
    session_count integer NOT NULL,
    message_count integer NOT NULL,
    -- The free chat, handed to the chat service (topic legacy.chat-histories) as this session.
    chat_session_id uuid,
    migrated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX legacy_migrations_user_idx ON legacy_migrations (user_id);

-- Histories of the legacy app that no new service holds yet, kept whole until one does. The
-- entries are JSON, sealed with the service's data key (workplace_kit.crypto):
--   kind 'scenario': name = the legacy scenario id, entries [{"learner", "reply", "at"}]
--   kind 'watch':    name = '',                     entries [{"speaker", "text", "at"}]
-- oldest first; "at" is an ISO 8601 time with its offset, or null.
CREATE TABLE legacy_histories (
    history_id uuid PRIMARY KEY,
    legacy_key bytea NOT NULL REFERENCES legacy_migrations (legacy_key) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('scenario', 'watch')),
    name text NOT NULL,
    user_id uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    entries_sealed bytea NOT NULL,
    UNIQUE (legacy_key, kind, name)
);
CREATE INDEX legacy_histories_user_idx ON legacy_histories (user_id);
