-- Authentication: each request that presents a bearer token reads the token's session and the
-- account behind it before any actor is known; sign-in throttles per client address and marks
-- its attempts successful; deactivation ends sessions whatever path deactivates.

-- A request presenting a token sees the one account that token's session belongs to.
CREATE POLICY users_select_session_bearer ON users FOR SELECT
    USING (id IN (SELECT s.user_id FROM sessions s WHERE s.token_hash = ipa_session_token_hash()));

-- The throttle counts recent failures from the requesting address, across identifiers.
CREATE POLICY login_attempts_select_same_address ON login_attempts FOR SELECT
    USING (ip_address = ipa_client_ip());

-- An attempt is recorded as failed before its password is checked (so concurrent attempts count
-- it) and marked successful afterwards. Only that flip is allowed: attempts are never erased or
-- otherwise rewritten.
GRANT UPDATE (succeeded) ON login_attempts TO ipa_app;
CREATE POLICY login_attempts_mark_success ON login_attempts FOR UPDATE
    USING (identifier = ipa_login_identifier() AND NOT succeeded)
    WITH CHECK (identifier = ipa_login_identifier() AND succeeded);

-- Deactivating an account ends all of its sessions in the same transaction, whether the API, the
-- command line or an operator's SQL deactivates it.
CREATE FUNCTION ipa_revoke_sessions_of_deactivated_user() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE sessions SET revoked_at = now()
     WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER revoke_sessions_on_deactivation
    AFTER UPDATE OF is_active ON users
    FOR EACH ROW
    WHEN (OLD.is_active IS DISTINCT FROM false AND NEW.is_active IS false)
    EXECUTE FUNCTION ipa_revoke_sessions_of_deactivated_user();

-- The user list: newest first with keyset pagination, and search by email or username prefix
-- (the seed's plain b-tree indexes cannot serve LIKE 'prefix%' under a non-C collation).
CREATE INDEX idx_users_created_at_id ON users(created_at DESC, id DESC);
CREATE INDEX idx_users_email_prefix ON users(email text_pattern_ops);
CREATE INDEX idx_users_username_prefix ON users(username text_pattern_ops);
