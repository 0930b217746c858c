-- Sign-in: sessions behind opaque bearer tokens, the record of sign-in attempts the throttle
-- reads, and the one narrow view of users that signing in needs before any actor exists.

-- A session of a signed-in user. Only the SHA-256 of its bearer token is stored: a leaked table
-- signs nobody in. A session ends at the first of its idle expiry (pushed forward on use), its
-- absolute expiry, or its revocation (logout, deactivation).
CREATE TABLE sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    last_used_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    idle_expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    revoked_at TIMESTAMP WITH TIME ZONE,
    ip_address INET,
    user_agent TEXT,

    CONSTRAINT token_hash_is_sha256 CHECK (octet_length(token_hash) = 32),
    CONSTRAINT expiry_after_creation CHECK (expires_at > created_at AND idle_expires_at > created_at)
);

CREATE INDEX idx_sessions_user_id_live ON sessions(user_id) WHERE revoked_at IS NULL;
CREATE INDEX idx_sessions_expires_at ON sessions(expires_at);

-- Every sign-in attempt, successful or not, by the identifier typed (whether or not an account
-- has it, so the throttle reveals nothing) and the client address.
CREATE TABLE login_attempts (
    id BIGSERIAL PRIMARY KEY,
    identifier VARCHAR(255) NOT NULL,
    ip_address INET,
    succeeded BOOLEAN NOT NULL,
    attempted_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_login_attempts_identifier ON login_attempts(identifier, attempted_at DESC);
CREATE INDEX idx_login_attempts_ip_address ON login_attempts(ip_address, attempted_at DESC);

-- The SHA-256 (hex) of the bearer token the current request presented, or NULL.
CREATE FUNCTION ipa_session_token_hash() RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT decode(nullif(current_setting('app.session_token_hash', true), ''), 'hex') $$;

-- The identifier (email or username) a sign-in request is looking up, or NULL.
CREATE FUNCTION ipa_login_identifier() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.login_identifier', true), '') $$;

GRANT SELECT, INSERT, UPDATE ON sessions TO ipa_app;
GRANT SELECT, INSERT ON login_attempts TO ipa_app;
GRANT USAGE ON SEQUENCE login_attempts_id_seq TO ipa_app;

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE login_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_attempts FORCE ROW LEVEL SECURITY;

-- Signing in reads the one account the identifier names (emails are stored in lower case;
-- usernames compare exactly), and nothing else.
CREATE POLICY users_select_sign_in ON users FOR SELECT
    USING (email = lower(ipa_login_identifier()) OR username = ipa_login_identifier());

-- A request authenticating with a token sees that token's session; a user sees and ends their
-- own sessions; superusers manage all.
CREATE POLICY sessions_select_own_or_presented ON sessions FOR SELECT
    USING (token_hash = ipa_session_token_hash() OR user_id = ipa_current_user_id() OR ipa_is_superuser());
CREATE POLICY sessions_insert_own ON sessions FOR INSERT
    WITH CHECK (user_id = ipa_current_user_id() OR ipa_is_superuser());
CREATE POLICY sessions_update_own_or_presented ON sessions FOR UPDATE
    USING (token_hash = ipa_session_token_hash() OR user_id = ipa_current_user_id() OR ipa_is_superuser())
    WITH CHECK (token_hash = ipa_session_token_hash() OR user_id = ipa_current_user_id() OR ipa_is_superuser());

-- Attempts are written by anyone signing in; the throttle counts those of the identifier being
-- tried; superusers read them all.
CREATE POLICY login_attempts_insert_any ON login_attempts FOR INSERT
    WITH CHECK (true);
CREATE POLICY login_attempts_select_throttle ON login_attempts FOR SELECT
    USING (identifier = ipa_login_identifier() OR ipa_is_superuser());
