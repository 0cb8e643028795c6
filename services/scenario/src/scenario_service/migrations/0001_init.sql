-- The scenario catalogue as loaded from the content package (schema "scenario"): one row per
-- scenario, refreshed at start-up when its file changed (digest), with one e5 vector per
-- language for search by meaning (pgvector, cosine).
CREATE TABLE scenarios (
    scenario_id text PRIMARY KEY,
    position integer NOT NULL,
    category text NOT NULL,
    difficulty text NOT NULL CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),
    reverse_role boolean NOT NULL DEFAULT false,
    tags text[] NOT NULL DEFAULT '{}',
    document jsonb NOT NULL,
    digest text NOT NULL,
    model_version text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scenarios_category_idx ON scenarios (category, difficulty);
CREATE INDEX scenarios_tags_idx ON scenarios USING gin (tags);

CREATE TABLE scenario_vectors (
    scenario_id text NOT NULL REFERENCES scenarios (scenario_id) ON DELETE CASCADE,
    language text NOT NULL CHECK (language IN ('ja', 'en')),
    embedding vector(384) NOT NULL,
    PRIMARY KEY (scenario_id, language)
);

-- Roleplay sessions and their turns. A session names its scenario by id (the catalogue may
-- drop a scenario later; its sessions stay readable). Turn texts are sealed (text_sealed).
CREATE TABLE sessions (
    session_id uuid PRIMARY KEY,
    user_id text NOT NULL,
    scenario_id text NOT NULL,
    language text NOT NULL CHECK (language IN ('ja', 'en')),
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    end_reason text
);
CREATE INDEX sessions_user_idx ON sessions (user_id, started_at DESC);

CREATE TABLE turns (
    turn_id uuid PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    turn_index integer NOT NULL,
    role text NOT NULL CHECK (role IN ('user', 'model')),
    text_sealed bytea NOT NULL,
    move text NOT NULL DEFAULT '',
    engine_id text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, turn_index)
);
