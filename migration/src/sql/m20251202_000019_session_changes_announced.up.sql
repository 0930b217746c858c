-- Session changes announced, so that each server process may remember an authenticated bearer
-- token for a few seconds instead of asking the database on every request, and forget it the
-- moment it stops being good.
--
-- A token stops being good when its session is revoked, shortened or deleted (a user's deletion
-- cascades to their sessions), or when its account is deactivated or gains or loses the
-- superuser flag (which the remembered principal carries). Each of these announces the account's
-- id on the channel `ipa_sessions`; every process listening forgets that account's tokens. A
-- session's touch (its idle expiry pushed forward) is not announced: it lengthens a session, and
-- happens on every authentication that reaches the database.
CREATE FUNCTION ipa_announce_session_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    -- PostgreSQL folds identical notifications of one transaction into one.
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ipa_sessions', OLD.user_id::text);
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('ipa_sessions', NEW.id::text);
    ELSE
        PERFORM pg_notify('ipa_sessions', OLD.user_id::text);
        PERFORM pg_notify('ipa_sessions', NEW.user_id::text);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_announce_change
    AFTER UPDATE ON sessions
    FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
          OR NEW.expires_at < OLD.expires_at
          OR NEW.idle_expires_at < OLD.idle_expires_at
          OR OLD.token_hash IS DISTINCT FROM NEW.token_hash
          OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION ipa_announce_session_change();

CREATE TRIGGER sessions_announce_delete
    AFTER DELETE ON sessions
    FOR EACH ROW
    EXECUTE FUNCTION ipa_announce_session_change();

CREATE TRIGGER users_announce_change
    AFTER UPDATE ON users
    FOR EACH ROW
    WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active
          OR OLD.is_superuser IS DISTINCT FROM NEW.is_superuser)
    EXECUTE FUNCTION ipa_announce_session_change();

-- The authentication also says how long the session stays good at most (until it expires, or
-- until its idle expiry, pushed forward when touched), so a remembered token is never honoured
-- past either. The rest is as in m20251201_000016_authentication_in_one_statement.
DROP FUNCTION ipa_authenticate(bytea, double precision, double precision);
CREATE FUNCTION ipa_authenticate(
    presented_token_hash bytea,
    idle_seconds double precision,
    touch_after_seconds double precision
)
RETURNS TABLE (session_id uuid, user_id uuid, is_superuser boolean, seconds_left double precision)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = public, pg_catalog
AS $$
BEGIN
    PERFORM set_config('role', 'ipa_app', true);
    PERFORM set_config('app.session_token_hash', encode(presented_token_hash, 'hex'), true);
    RETURN QUERY
    WITH found AS (
        SELECT s.id, s.user_id, u.is_superuser IS TRUE AS is_superuser,
               s.last_used_at < now() - make_interval(secs => touch_after_seconds) AS stale,
               s.idle_expires_at, s.expires_at
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
    SELECT f.id, f.user_id, f.is_superuser,
           extract(epoch FROM least(f.expires_at,
                                    CASE WHEN f.stale
                                         THEN now() + make_interval(secs => idle_seconds)
                                         ELSE f.idle_expires_at END) - now())::double precision
      FROM found f;
END
$$;

REVOKE ALL ON FUNCTION ipa_authenticate(bytea, double precision, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ipa_authenticate(bytea, double precision, double precision) TO ipa_app;
