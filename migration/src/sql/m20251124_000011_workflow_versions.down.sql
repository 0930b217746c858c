DROP TRIGGER agent_tool_audit_delete_trigger ON agent_tools;
DROP TRIGGER agent_tool_audit_trigger ON agent_tools;
CREATE TRIGGER agent_tool_audit_trigger
    AFTER INSERT OR UPDATE OR DELETE ON agent_tools
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('agent_tool');
DROP TRIGGER workflow_version_audit_delete_trigger ON workflow_versions;
DROP TRIGGER workflow_version_audit_trigger ON workflow_versions;
CREATE TRIGGER workflow_version_audit_trigger
    AFTER INSERT OR UPDATE OR DELETE ON workflow_versions
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('workflow_version');
DROP FUNCTION ipa_audit_child_delete();
DROP FUNCTION ipa_agent_states(uuid[]);
DROP FUNCTION ipa_user_states(uuid[]);
DROP INDEX idx_workflows_created_at_id;
ALTER TABLE workflows DROP CONSTRAINT active_needs_current_version;
