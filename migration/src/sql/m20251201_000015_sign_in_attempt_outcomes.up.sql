-- A sign-in attempt is recorded when it is admitted, before its password is checked, so that
-- concurrent guesses count each other. Until the check settles it, its outcome is unknown: NULL.
-- The throttle counts an unsettled attempt only while it may still be in progress; one that a
-- failure of the platform never settled (the database went away, an internal error) stops
-- counting then, so an outage cannot lock anyone out.
ALTER TABLE login_attempts ALTER COLUMN succeeded DROP NOT NULL;

-- Settling is the one change allowed, once: unknown to succeeded or failed. Attempts are never
-- erased or otherwise rewritten.
DROP POLICY login_attempts_mark_success ON login_attempts;
CREATE POLICY login_attempts_settle ON login_attempts FOR UPDATE
    USING (identifier = ipa_login_identifier() AND succeeded IS NULL)
    WITH CHECK (identifier = ipa_login_identifier() AND succeeded IS NOT NULL);

-- Attempts are written only for the identifier being signed in with, from the request's own
-- address, unsettled or failed: never as a success, which would end the identifier's lockout.
DROP POLICY login_attempts_insert_signing_in ON login_attempts;
CREATE POLICY login_attempts_insert_signing_in ON login_attempts FOR INSERT
    WITH CHECK (ipa_is_superuser()
                OR (identifier = ipa_login_identifier() AND succeeded IS NOT TRUE
                    AND ip_address IS NOT DISTINCT FROM ipa_client_ip()));

-- When the nth most recent failed sign-in from the requesting address, within the last
-- window_seconds, happened (NULL when there were fewer). A failure is a settled failed attempt,
-- or an unsettled one younger than unsettled_seconds. Only in a sign-in's context; only a
-- timestamp comes back, never an identifier.
REVOKE EXECUTE ON FUNCTION ipa_address_failure_at(double precision, bigint) FROM ipa_app;
DROP FUNCTION ipa_address_failure_at(double precision, bigint);
CREATE FUNCTION ipa_address_failure_at(
    window_seconds double precision, nth bigint, unsettled_seconds double precision)
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
     WHERE a.ip_address = address
       AND (a.succeeded IS FALSE
            OR (a.succeeded IS NULL
                AND a.attempted_at > now() - unsettled_seconds * interval '1 second'))
       AND a.attempted_at > now() - window_seconds * interval '1 second'
     ORDER BY a.attempted_at DESC OFFSET nth - 1 LIMIT 1;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
    RETURN found;
END
$$;
GRANT EXECUTE ON FUNCTION ipa_address_failure_at(double precision, bigint, double precision)
    TO ipa_app;
