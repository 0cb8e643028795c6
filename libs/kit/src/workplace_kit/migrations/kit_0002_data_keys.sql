-- Data-encryption keys of the service (workplace_kit.crypto), each wrapped by a key-encryption
-- key kept outside the database (configuration or Cloud KMS); kek_id names which one.
CREATE TABLE IF NOT EXISTS data_keys (
    dek_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kek_id text NOT NULL,
    wrapped bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Outbox payloads hold learners' words: sealed with the service's data key when it has one.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS sealed boolean NOT NULL DEFAULT false;
