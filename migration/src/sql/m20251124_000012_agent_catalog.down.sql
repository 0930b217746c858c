DROP TRIGGER workflow_version_agents_lock ON workflow_versions;
DROP FUNCTION ipa_lock_version_agents();
DROP FUNCTION ipa_agent_usage(uuid);
DROP FUNCTION ipa_agent_graph(uuid[]);
ALTER TABLE agent_tools DROP CONSTRAINT tool_type_known;
ALTER TABLE agent_tools DROP CONSTRAINT tool_name_is_function_name;
ALTER TABLE agent_tools DROP COLUMN description;
DROP INDEX idx_agents_created_at_id;
