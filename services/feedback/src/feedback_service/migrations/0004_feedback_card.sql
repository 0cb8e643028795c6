-- The feedback card of each analysis (coaching.card: verdict, what went well, what to change, a
-- better phrasing in the learner's own words, the register due), as sealed JSON: it quotes the
-- learner. NULL for analyses stored before cards existed.
ALTER TABLE turn_analyses ADD COLUMN card_sealed bytea;
