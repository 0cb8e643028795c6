-- The partners are content now (content/characters.yaml); the service checks a session's
-- partner against its catalogue, so the table no longer lists them.
ALTER TABLE sessions DROP CONSTRAINT IF EXISTS sessions_partner_check;
