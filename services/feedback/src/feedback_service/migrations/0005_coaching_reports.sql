-- The scenario move each learner turn made (read by the coaching report), and the scenario
-- (the turn's situation), kept with the turn's analysis.
ALTER TABLE turn_analyses ADD COLUMN IF NOT EXISTS move text NOT NULL DEFAULT '';
ALTER TABLE turn_analyses ADD COLUMN IF NOT EXISTS situation text NOT NULL DEFAULT '';

-- One coaching report per ended session, written once from the session.ended event. The scores
-- are plain numbers (for the journal and the strengths over time); the report itself quotes the
-- learner, so it is sealed.
CREATE TABLE session_reports (
    session_id uuid PRIMARY KEY,
    user_id text NOT NULL,
    source_service text NOT NULL,
    scenario_id text NOT NULL DEFAULT '',
    language text NOT NULL,
    overall real NOT NULL,
    scores jsonb NOT NULL,
    report_sealed bytea NOT NULL,
    turn_count integer NOT NULL,
    end_reason text NOT NULL DEFAULT '',
    started_at timestamptz,
    ended_at timestamptz NOT NULL,
    generated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_reports_user_idx ON session_reports (user_id, ended_at DESC);
