-- Authenticating a bearer token in one statement: the session lookup and, when the session was
-- last used more than `touch_after_seconds` ago, pushing its idle expiry forward, in one call,
-- so that a request's authentication costs one round trip instead of a transaction of four.
--
-- The function runs as its caller (never as its owner) and first becomes `ipa_app`, as every
-- request's work does, so a pool connected as the owner may call it outside a transaction and it
-- still acts with the application role's rights, under the same policies as the statements it
-- replaces: it sets `app.session_token_hash` transaction-locally, which is what lets it see that
-- one session and its user (`sessions_select_own_or_presented`,
-- `sessions_update_own_or_presented`, `users_select_session_bearer`). Outside an explicit
-- transaction the role and the setting end with the statement. The touch is a data-modifying
-- CTE over the row found, so a session is touched at most once per `touch_after_seconds` and
-- never after it ended.
CREATE FUNCTION ipa_authenticate(
    presented_token_hash bytea,
    idle_seconds double precision,
    touch_after_seconds double precision
)
RETURNS TABLE (session_id uuid, user_id uuid, is_superuser boolean)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = public, pg_catalog
AS $$
BEGIN
    PERFORM set_config('role', 'ipa_app', true);
    PERFORM set_config('app.session_token_hash', encode(presented_token_hash, 'hex'), true);
    RETURN QUERY
    WITH found AS (
        SELECT s.id, s.user_id, u.is_superuser IS TRUE AS is_superuser,
               s.last_used_at < now() - make_interval(secs => touch_after_seconds) AS stale
          FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = presented_token_hash AND s.revoked_at IS NULL
           AND s.expires_at > now() AND s.idle_expires_at > now()
           AND u.is_active IS TRUE
    ), touched AS (
        UPDATE sessions t
           SET last_used_at = now(),
               idle_expires_at = least(now() + make_interval(secs => idle_seconds), t.expires_at)
          FROM found f
         WHERE t.id = f.id AND f.stale
    )
    SELECT f.id, f.user_id, f.is_superuser FROM found f;
END
$$;

REVOKE ALL ON FUNCTION ipa_authenticate(bytea, double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ipa_authenticate(bytea, double precision, double precision) TO ipa_app;
