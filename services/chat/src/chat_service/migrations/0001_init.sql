-- Free-chat sessions and their messages (schema "chat").
CREATE TABLE sessions (
    session_id uuid PRIMARY KEY,
    user_id text NOT NULL,
    partner text NOT NULL CHECK (partner IN ('colleague', 'senior', 'boss')),
    situation text NOT NULL,
    language text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_idx ON sessions (user_id, updated_at DESC);

CREATE TABLE messages (
    turn_id uuid PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    turn_index integer NOT NULL,
    role text NOT NULL CHECK (role IN ('user', 'model')),
    text text NOT NULL,
    engine_id text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, turn_index)
);

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    ordering_key text NOT NULL,
    type_name text NOT NULL,
    payload bytea NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
