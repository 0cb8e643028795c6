-- Watched dialogues (schema "watch"): a model conversation between two AI characters that
-- the learner watches, pauses, paces, stops and steps into. One row per dialogue; every turn
-- to produce is one Pub/Sub message (watch.turn-requests) carrying the dialogue's generation:
-- a pause, a resume or an intervention starts a new generation and the older requests are
-- dropped by the worker.
CREATE TABLE watches (
    watch_id uuid PRIMARY KEY,
    user_id text NOT NULL,
    scenario_id text NOT NULL,
    title text NOT NULL,
    language text NOT NULL CHECK (language IN ('ja', 'en')),
    -- [{"id": "a", "display_name", "persona", "character_id"}, {"id": "b", ...}]
    speakers jsonb NOT NULL,
    max_turns integer NOT NULL CHECK (max_turns BETWEEN 2 AND 30),
    pace_seconds real NOT NULL CHECK (pace_seconds BETWEEN 1 AND 15),
    paused boolean NOT NULL DEFAULT false,
    generation integer NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ended')),
    -- finished, max_turns, stopped, no_viewer, error
    ended_reason text,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    -- A stream of the dialogue is open (refreshed every few seconds); the worker ends a
    -- dialogue nobody has watched for a while instead of producing its next turn.
    last_viewed_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'ended') = (ended_at IS NOT NULL))
);
CREATE INDEX watches_user_idx ON watches (user_id, started_at DESC);

-- The turns: the AI characters' lines and the learner's interventions (speaker_id '' and
-- intervention true). Texts are sealed (text_sealed, workplace_kit.crypto). (watch_id,
-- turn_index) is unique: a redelivered turn request can never store a turn twice.
CREATE TABLE turns (
    turn_id uuid PRIMARY KEY,
    watch_id uuid NOT NULL REFERENCES watches (watch_id) ON DELETE CASCADE,
    turn_index integer NOT NULL CHECK (turn_index >= 0),
    speaker_id text NOT NULL,
    text_sealed bytea NOT NULL,
    intervention boolean NOT NULL DEFAULT false,
    -- The scenario move the turn made (a model learner's line, a learner's intervention) or
    -- answered (the character's reply); '' for the opening and unrecognised lines.
    move text NOT NULL DEFAULT '',
    -- An intervention: which speaker answers it first ('' = the scenario's character, "a").
    addressed_to text NOT NULL DEFAULT '',
    engine_id text NOT NULL DEFAULT '',
    -- The text-to-speech service has the turn's audio ready (tts.ready).
    audio_ready boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (watch_id, turn_index)
);
