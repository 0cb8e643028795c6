-- Personal data is stored encrypted (workplace_kit.crypto): email and display name in the
-- *_sealed columns, the signing keys' private keys in private_pem_sealed. An email is found
-- by its blind index (an HMAC under the service's key), unique like the address was.
-- Rows from before keep their plaintext until `python -m auth_service reencrypt` seals and
-- clears it; the service reads and finds either.
ALTER TABLE users ADD COLUMN email_sealed bytea;
ALTER TABLE users ADD COLUMN email_index bytea;
ALTER TABLE users ADD CONSTRAINT users_email_index_key UNIQUE (email_index);
ALTER TABLE users ADD COLUMN display_name_sealed bytea;
ALTER TABLE users ALTER COLUMN display_name DROP NOT NULL;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_check;
ALTER TABLE users ADD CONSTRAINT users_email_present CHECK (guest OR email IS NOT NULL OR email_index IS NOT NULL);

ALTER TABLE signing_keys ADD COLUMN private_pem_sealed bytea;
ALTER TABLE signing_keys ALTER COLUMN private_pem DROP NOT NULL;
