DROP POLICY executions_decided_by_asked_approvers ON executions;
DROP POLICY executions_visible_to_asked_approvers ON executions;
DROP TRIGGER execution_steps_record_asked_approvers ON execution_steps;
DROP FUNCTION ipa_record_asked_approvers();
DROP TABLE execution_approvers;
