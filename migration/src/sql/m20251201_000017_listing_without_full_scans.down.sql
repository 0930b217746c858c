DROP INDEX idx_agents_name_trgm;
DROP INDEX idx_workflows_name_trgm;
-- Fails, leaving everything in place, if something else came to depend on pg_trgm or was put in
-- its schema.
DROP EXTENSION IF EXISTS pg_trgm;
DROP SCHEMA IF EXISTS ipa_extensions;

ALTER POLICY executions_follow_workflow_or_trigger ON executions
    USING (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
           OR EXISTS (SELECT 1 FROM workflows w WHERE w.id = executions.workflow_id))
    WITH CHECK (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
                OR EXISTS (SELECT 1 FROM workflows w WHERE w.id = executions.workflow_id));

DROP INDEX idx_workflows_owner_id;
