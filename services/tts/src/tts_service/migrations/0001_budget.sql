-- The daily budget for paid speech (schema "tts"): how many characters were sent to Gemini
-- speech on each UTC day. A durable fact in PostgreSQL, so a restart, a new replica or a
-- flushed cache never hands out a day's budget twice. Rows are never deleted by the service:
-- they are the record of what was spent.
CREATE TABLE budget_days (
    day date PRIMARY KEY,
    used_chars bigint NOT NULL CHECK (used_chars >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
