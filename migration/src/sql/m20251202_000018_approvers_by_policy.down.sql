DROP POLICY executions_deleted_by_their_people ON executions;
ALTER POLICY executions_follow_workflow_or_trigger ON executions
    USING (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
           OR workflow_id IN (SELECT w.id FROM workflows w WHERE w.created_by = ipa_current_user_id()))
    WITH CHECK (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
                OR workflow_id IN (SELECT w.id FROM workflows w WHERE w.created_by = ipa_current_user_id()));
DROP FUNCTION ipa_was_asked_about(uuid);
DROP TRIGGER execution_steps_record_asked_approvers ON execution_steps;
DROP FUNCTION ipa_record_asked_approvers();
DROP TABLE execution_approvers;
