REVOKE EXECUTE ON FUNCTION ipa_address_failure_at(double precision, bigint, double precision)
    FROM ipa_app;
DROP FUNCTION ipa_address_failure_at(double precision, bigint, double precision);
CREATE FUNCTION ipa_address_failure_at(window_seconds double precision, nth bigint)
RETURNS timestamptz
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
    address inet := ipa_client_ip();
    found timestamptz;
BEGIN
    IF address IS NULL OR ipa_login_identifier() IS NULL OR nth < 1 THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.is_superuser', 'true', true);
    SELECT a.attempted_at INTO found
      FROM login_attempts a
     WHERE a.ip_address = address AND NOT a.succeeded
       AND a.attempted_at > now() - window_seconds * interval '1 second'
     ORDER BY a.attempted_at DESC OFFSET nth - 1 LIMIT 1;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
    RETURN found;
END
$$;
GRANT EXECUTE ON FUNCTION ipa_address_failure_at(double precision, bigint) TO ipa_app;

DROP POLICY login_attempts_insert_signing_in ON login_attempts;
CREATE POLICY login_attempts_insert_signing_in ON login_attempts FOR INSERT
    WITH CHECK (ipa_is_superuser()
                OR (identifier = ipa_login_identifier() AND NOT succeeded
                    AND ip_address IS NOT DISTINCT FROM ipa_client_ip()));

DROP POLICY login_attempts_settle ON login_attempts;
CREATE POLICY login_attempts_mark_success ON login_attempts FOR UPDATE
    USING (identifier = ipa_login_identifier() AND NOT succeeded)
    WITH CHECK (identifier = ipa_login_identifier() AND succeeded);

-- Unsettled attempts were never known to fail; the older schema has no other place for them.
-- Forced row level security binds the owner too, and no policy lets anyone erase attempts.
ALTER TABLE login_attempts NO FORCE ROW LEVEL SECURITY;
DELETE FROM login_attempts WHERE succeeded IS NULL;
ALTER TABLE login_attempts FORCE ROW LEVEL SECURITY;
ALTER TABLE login_attempts ALTER COLUMN succeeded SET NOT NULL;
