-- Accounts, refresh tokens and signing keys (schema "auth").
CREATE TABLE users (
    user_id uuid PRIMARY KEY,
    -- Lower-cased; NULL for guests until they upgrade.
    email text UNIQUE,
    -- argon2id; NULL for guests and for accounts that only sign in with an identity provider.
    password_hash text,
    display_name text NOT NULL,
    guest boolean NOT NULL,
    preferred_language text NOT NULL DEFAULT 'ja' CHECK (preferred_language IN ('ja', 'en')),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CHECK (guest OR email IS NOT NULL)
);

-- Refresh tokens are stored as SHA-256 hashes. Each use replaces the token with a new one of
-- the same family; a token used twice means it was stolen: the whole family is revoked.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    family_id uuid NOT NULL,
    user_id uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- ES256 signing keys. A new key is published (JWKS) a while before it signs, so verifiers that
-- cached the JWKS know it by then; the key it replaces stays published until its tokens expire.
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    private_pem bytea NOT NULL,
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    signs_from timestamptz NOT NULL DEFAULT now(),
    -- Set at rotation: from then on the next key signs; this one leaves the JWKS at retire_at.
    superseded_at timestamptz,
    retire_at timestamptz
);
