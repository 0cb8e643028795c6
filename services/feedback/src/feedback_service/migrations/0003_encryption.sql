-- The learner's words and the summary of each analysis are stored encrypted
-- (workplace_kit.crypto) in the *_sealed columns. Rows from before keep their plaintext until
-- `python -m feedback_service reencrypt` seals it and clears it; the service reads either.
ALTER TABLE turn_analyses ADD COLUMN learner_text_sealed bytea;
ALTER TABLE turn_analyses ADD COLUMN summary_sealed bytea;
ALTER TABLE turn_analyses ALTER COLUMN learner_text DROP NOT NULL;
ALTER TABLE turn_analyses ALTER COLUMN summary DROP NOT NULL;
ALTER TABLE turn_analyses ALTER COLUMN summary DROP DEFAULT;
