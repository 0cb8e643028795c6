-- Messages are stored encrypted (workplace_kit.crypto): text_sealed holds them. Rows from
-- before keep their plaintext in text until `python -m chat_service reencrypt` seals it and
-- clears it; the service reads either.
ALTER TABLE messages ADD COLUMN text_sealed bytea;
ALTER TABLE messages ALTER COLUMN text DROP NOT NULL;
ALTER TABLE messages ADD CONSTRAINT messages_text_present CHECK (text IS NOT NULL OR text_sealed IS NOT NULL);
