-- Sign-in with an OpenID Connect provider (Google): accounts linked by the provider's
-- (issuer, subject), and the sign-ins under way between the redirect out and the callback.
CREATE TABLE identities (
    issuer text NOT NULL,
    -- The provider's stable account id (`sub`); an email address can change owner, this cannot.
    subject text NOT NULL,
    user_id uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX identities_user_idx ON identities (user_id);

-- One row per redirect to the provider, used once by its callback (or expired). The state is
-- stored as a SHA-256 hash; the browser holds the state itself in a cookie.
CREATE TABLE oidc_logins (
    state_hash bytea PRIMARY KEY,
    nonce text NOT NULL,
    code_verifier text NOT NULL,
    -- The guest signed in when the sign-in started: they keep their id (and history).
    guest_user_id uuid REFERENCES users (user_id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX oidc_logins_expires_idx ON oidc_logins (expires_at);
