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
