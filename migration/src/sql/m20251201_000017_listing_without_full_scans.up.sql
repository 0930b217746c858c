-- Listing without full scans: every documented filter of `GET /workflows`, `GET /agents` and
-- `GET /executions` is answered from an index, at any volume.

-- Run visibility, driven by an index. The policy of migration 000007 said "whoever sees the
-- run's workflow" as `EXISTS (SELECT 1 FROM workflows w WHERE w.id = executions.workflow_id)`
-- inside an OR. PostgreSQL cannot turn an EXISTS under OR into a join, so it hashes the set of
-- workflows the caller sees once per statement, and that set came from a sequential scan of
-- `workflows`: workflows' own policy (`created_by = me OR superuser`) is an OR no index serves.
-- At 100,000 workflows that scan cost about 100 ms on every page of runs.
--
-- Seeing a workflow means owning it or being a superuser (policies `user_workflows_policy` and
-- `admin_workflows_policy`), and the superuser arm is already spelled out here, so "sees the
-- workflow" is, for everyone else, "owns it": the subquery now says so, and the index on
-- `(created_by, id)` answers it by an index-only scan of the caller's own workflows. Workflows'
-- own policy still applies inside the subquery, so the policy cannot show more than before. If
-- workflow visibility ever widens (sharing, teams), this policy must widen with it: the leak
-- matrix (`leak_matrix::no_user_reads_or_changes_another_users_rows_through_the_request_role`)
-- and `execution_plans::every_run_filter_is_planned_without_reading_all_workflows_at_200k_runs`
-- in ipa-store's schema tests hold the two together.
CREATE INDEX idx_workflows_owner_id ON workflows (created_by, id);

ALTER POLICY executions_follow_workflow_or_trigger ON executions
    USING (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
           OR workflow_id IN (SELECT w.id FROM workflows w WHERE w.created_by = ipa_current_user_id()))
    WITH CHECK (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
                OR workflow_id IN (SELECT w.id FROM workflows w WHERE w.created_by = ipa_current_user_id()));

-- Substring search by name (`?name=` is `ILIKE '%...%'`): a B-tree cannot serve a pattern with a
-- leading wildcard, a trigram index can (for patterns of three characters or more; shorter ones
-- match so much that a scan is the right plan anyway). pg_trgm ships with PostgreSQL and is a
-- trusted extension: the database's owner may create it without being a superuser. It lives in
-- a schema of its own so that `public` holds only the platform's functions, each of which the
-- leak matrix accounts for; nothing calls the extension's functions, only its operator class.
CREATE SCHEMA IF NOT EXISTS ipa_extensions;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA ipa_extensions;
CREATE INDEX idx_workflows_name_trgm ON workflows USING gin (name ipa_extensions.gin_trgm_ops);
CREATE INDEX idx_agents_name_trgm ON agents USING gin (name ipa_extensions.gin_trgm_ops);
