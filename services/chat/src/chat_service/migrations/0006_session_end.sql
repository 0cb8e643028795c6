-- A free chat can be ended by the learner: it then gets a coaching report (session.ended) and
-- takes no more messages.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS ended_at timestamptz;
