DROP POLICY users_select_sign_in ON users;
DROP TABLE login_attempts;
DROP TABLE sessions;
DROP FUNCTION ipa_login_identifier();
DROP FUNCTION ipa_session_token_hash();
