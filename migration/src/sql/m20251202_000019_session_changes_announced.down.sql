DROP TRIGGER users_announce_change ON users;
DROP TRIGGER sessions_announce_delete ON sessions;
DROP TRIGGER sessions_announce_change ON sessions;
DROP FUNCTION ipa_announce_session_change();

DROP FUNCTION ipa_authenticate(bytea, double precision, double precision);
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
