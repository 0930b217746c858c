DROP FUNCTION ipa_ensure_monthly_partitions(regclass, date, integer);
DROP FUNCTION update_updated_at_column();
DROP FUNCTION ipa_user_agent();
DROP FUNCTION ipa_client_ip();
DROP FUNCTION ipa_is_superuser();
DROP FUNCTION ipa_current_user_id();
REVOKE USAGE ON SCHEMA public FROM ipa_app;

-- The role is shared by every database of the cluster: drop it only when no other database
-- still grants it anything.
DO $$
BEGIN
    DROP ROLE ipa_app;
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'role ipa_app is still used by another database; kept';
END
$$;
