DROP TABLE users;
DROP FUNCTION ipa_guard_user_privileges();
