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
