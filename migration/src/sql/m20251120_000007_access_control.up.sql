-- Who may touch what: the privileges of ipa_app and the row level security policies of every
-- table that holds users' data.
--
-- FORCE makes the policies apply to the tables' owner too (the seed's policies never applied to
-- an application that owns its tables). Every policy reads the actor through ipa_current_user_id()
-- and ipa_is_superuser(): a transaction with no actor sees no rows and gets no error.
-- Policies on one table that read another (EXISTS over workflows, executions, agents) inherit that
-- table's policies, so visibility follows the parent row.

GRANT SELECT, INSERT, UPDATE ON users TO ipa_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON workflows TO ipa_app;
GRANT SELECT, INSERT, DELETE ON workflow_versions TO ipa_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON executions, execution_steps TO ipa_app;
GRANT SELECT, INSERT ON execution_logs TO ipa_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON agents, agent_tools TO ipa_app;
-- The audit log is append-only for the application.
GRANT SELECT, INSERT ON audit_logs TO ipa_app;
GRANT USAGE ON SEQUENCE execution_logs_id_seq, audit_logs_id_seq TO ipa_app;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
ALTER TABLE workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflows FORCE ROW LEVEL SECURITY;
ALTER TABLE workflow_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_versions FORCE ROW LEVEL SECURITY;
ALTER TABLE executions ENABLE ROW LEVEL SECURITY;
ALTER TABLE executions FORCE ROW LEVEL SECURITY;
ALTER TABLE execution_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE execution_steps FORCE ROW LEVEL SECURITY;
ALTER TABLE execution_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE execution_logs FORCE ROW LEVEL SECURITY;
ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE agents FORCE ROW LEVEL SECURITY;
ALTER TABLE agent_tools ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_tools FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_logs FORCE ROW LEVEL SECURITY;

-- users: a user sees and edits their own row; superusers manage everyone. Nobody deletes a user
-- (deactivation is the delete), and only superusers create them.
CREATE POLICY users_select_self_or_admin ON users FOR SELECT
    USING (id = ipa_current_user_id() OR ipa_is_superuser());
CREATE POLICY users_insert_admin ON users FOR INSERT
    WITH CHECK (ipa_is_superuser());
CREATE POLICY users_update_self_or_admin ON users FOR UPDATE
    USING (id = ipa_current_user_id() OR ipa_is_superuser())
    WITH CHECK (id = ipa_current_user_id() OR ipa_is_superuser());

-- workflows: the seed's two policies, reading the actor without failing when it is unset.
CREATE POLICY user_workflows_policy ON workflows
    USING (created_by = ipa_current_user_id())
    WITH CHECK (created_by = ipa_current_user_id());
CREATE POLICY admin_workflows_policy ON workflows
    USING (ipa_is_superuser())
    WITH CHECK (ipa_is_superuser());

-- workflow_versions follow their workflow; a version is written in its author's own name.
CREATE POLICY workflow_versions_follow_workflow ON workflow_versions
    USING (EXISTS (SELECT 1 FROM workflows w WHERE w.id = workflow_versions.workflow_id))
    WITH CHECK (EXISTS (SELECT 1 FROM workflows w WHERE w.id = workflow_versions.workflow_id)
                AND (created_by = ipa_current_user_id() OR ipa_is_superuser()));

-- executions are visible to whoever sees their workflow and to whoever triggered them.
CREATE POLICY executions_follow_workflow_or_trigger ON executions
    USING (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
           OR EXISTS (SELECT 1 FROM workflows w WHERE w.id = executions.workflow_id))
    WITH CHECK (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
                OR EXISTS (SELECT 1 FROM workflows w WHERE w.id = executions.workflow_id));
-- Starting a run: in one's own name, of a workflow one can see.
CREATE POLICY executions_start_visible_workflow ON executions AS RESTRICTIVE FOR INSERT
    WITH CHECK ((triggered_by = ipa_current_user_id() OR ipa_is_superuser())
                AND EXISTS (SELECT 1 FROM workflows w WHERE w.id = executions.workflow_id));

-- Steps and log lines follow their execution.
CREATE POLICY execution_steps_follow_execution ON execution_steps
    USING (EXISTS (SELECT 1 FROM executions e WHERE e.id = execution_steps.execution_id))
    WITH CHECK (EXISTS (SELECT 1 FROM executions e WHERE e.id = execution_steps.execution_id));
CREATE POLICY execution_logs_follow_execution ON execution_logs
    USING (EXISTS (SELECT 1 FROM executions e WHERE e.id = execution_logs.execution_id))
    WITH CHECK (EXISTS (SELECT 1 FROM executions e WHERE e.id = execution_logs.execution_id));

-- agents are a shared catalog: every signed-in user reads the active ones; their creator and
-- superusers read and change them all.
CREATE POLICY agents_select_catalog ON agents FOR SELECT
    USING (ipa_is_superuser() OR created_by = ipa_current_user_id()
           OR (ipa_current_user_id() IS NOT NULL AND status = 'active'));
CREATE POLICY agents_insert_own ON agents FOR INSERT
    WITH CHECK (created_by = ipa_current_user_id() OR ipa_is_superuser());
CREATE POLICY agents_update_own ON agents FOR UPDATE
    USING (created_by = ipa_current_user_id() OR ipa_is_superuser())
    WITH CHECK (created_by = ipa_current_user_id() OR ipa_is_superuser());
CREATE POLICY agents_delete_own ON agents FOR DELETE
    USING (created_by = ipa_current_user_id() OR ipa_is_superuser());

-- agent_tools follow their agent: readable with it, changed by whoever may change it.
CREATE POLICY agent_tools_select_follow_agent ON agent_tools FOR SELECT
    USING (EXISTS (SELECT 1 FROM agents a WHERE a.id = agent_tools.agent_id));
CREATE POLICY agent_tools_write_agent_owner ON agent_tools FOR ALL
    USING (EXISTS (SELECT 1 FROM agents a WHERE a.id = agent_tools.agent_id
                   AND (a.created_by = ipa_current_user_id() OR ipa_is_superuser())))
    WITH CHECK (EXISTS (SELECT 1 FROM agents a WHERE a.id = agent_tools.agent_id
                        AND (a.created_by = ipa_current_user_id() OR ipa_is_superuser())));

-- audit_logs: superusers read everything, a user reads what they did; rows are written in the
-- actor's name (or in no one's, for a failed sign-in).
CREATE POLICY audit_logs_select_own_or_admin ON audit_logs FOR SELECT
    USING (ipa_is_superuser() OR user_id = ipa_current_user_id());
CREATE POLICY audit_logs_insert_as_actor ON audit_logs FOR INSERT
    WITH CHECK (ipa_is_superuser() OR user_id IS NOT DISTINCT FROM ipa_current_user_id());
