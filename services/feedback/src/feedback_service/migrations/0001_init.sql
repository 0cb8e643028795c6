-- Emotion analysis of each learner turn (schema "feedback").
CREATE TABLE turn_analyses (
    turn_id uuid PRIMARY KEY,
    session_id uuid NOT NULL,
    user_id text NOT NULL,
    source_service text NOT NULL,
    turn_index integer NOT NULL DEFAULT 0,
    learner_text text NOT NULL,
    language text NOT NULL,
    dominant_emotion text NOT NULL,
    scores jsonb NOT NULL DEFAULT '{}'::jsonb,
    polarity real NOT NULL,
    engine text NOT NULL,
    summary text NOT NULL DEFAULT '',
    analysed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX turn_analyses_session_idx ON turn_analyses (session_id, turn_index);
CREATE INDEX turn_analyses_user_idx ON turn_analyses (user_id, analysed_at DESC);

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    ordering_key text NOT NULL,
    type_name text NOT NULL,
    payload bytea NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
