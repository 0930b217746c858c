DROP INDEX idx_users_username_prefix;
DROP INDEX idx_users_email_prefix;
DROP INDEX idx_users_created_at_id;
DROP TRIGGER revoke_sessions_on_deactivation ON users;
DROP FUNCTION ipa_revoke_sessions_of_deactivated_user();
DROP POLICY login_attempts_mark_success ON login_attempts;
REVOKE UPDATE (succeeded) ON login_attempts FROM ipa_app;
DROP POLICY login_attempts_select_same_address ON login_attempts;
DROP POLICY users_select_session_bearer ON users;
