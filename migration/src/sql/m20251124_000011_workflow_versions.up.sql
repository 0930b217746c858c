-- What publishing, listing and deleting workflows need beyond the seed: the lifecycle's rule in the
-- schema, the list's index, reference checks that see past row level security (ids and states
-- only), and one audit row for a removal that cascades.

-- A workflow becomes active only with a version to run. The service checks it first, with a
-- clear message; the constraint holds for every other path.
ALTER TABLE workflows ADD CONSTRAINT active_needs_current_version
    CHECK (status IS DISTINCT FROM 'active' OR current_version_id IS NOT NULL);

-- The workflow list: newest first, continued after a (created_at, id) position.
CREATE INDEX idx_workflows_created_at_id ON workflows (created_at DESC, id DESC);

-- Which of these users exist, and whether each is active. A definition names its approvers by id,
-- and its author may not see other accounts (users are visible to themselves and superusers), so
-- the lookup raises a superuser context for its own duration and restores the caller's, as
-- ipa_ensure_monthly_partitions does. Only ids the caller already holds and one flag come back.
CREATE FUNCTION ipa_user_states(ids uuid[]) RETURNS TABLE (id uuid, is_active boolean)
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
BEGIN
    PERFORM set_config('app.is_superuser', 'true', true);
    RETURN QUERY SELECT u.id, u.is_active IS TRUE FROM users u WHERE u.id = ANY (ids);
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
END
$$;

-- Which of these agents exist, and their status: an inactive agent of another user is hidden
-- from the catalog, yet exists and may be named.
CREATE FUNCTION ipa_agent_states(ids uuid[]) RETURNS TABLE (id uuid, status agent_status)
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
BEGIN
    PERFORM set_config('app.is_superuser', 'true', true);
    RETURN QUERY SELECT a.id, coalesce(a.status, 'active') FROM agents a WHERE a.id = ANY (ids);
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
END
$$;

GRANT EXECUTE ON FUNCTION ipa_user_states(uuid[]), ipa_agent_states(uuid[]) TO ipa_app;

-- Deleting a workflow (an agent) cascades to its versions (tools). The parent's delete row already
-- holds the removal, so a child's delete is audited only when its parent still exists, that is
-- when the child alone was deleted. Arguments: the resource type, the parent table, the column
-- naming the parent.
CREATE FUNCTION ipa_audit_child_delete() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    parent_exists boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE id = $1)', TG_ARGV[1])
        INTO parent_exists
        USING (to_jsonb(OLD) ->> TG_ARGV[2])::uuid;
    IF parent_exists THEN
        INSERT INTO audit_logs (user_id, action, resource_type, resource_id, changes, ip_address, user_agent)
        VALUES (ipa_current_user_id(), 'delete', TG_ARGV[0], OLD.id,
                jsonb_build_object('before', ipa_redact_secrets(to_jsonb(OLD)), 'after', NULL),
                ipa_client_ip(), ipa_user_agent());
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER workflow_version_audit_trigger ON workflow_versions;
CREATE TRIGGER workflow_version_audit_trigger
    AFTER INSERT OR UPDATE ON workflow_versions
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('workflow_version');
CREATE TRIGGER workflow_version_audit_delete_trigger
    AFTER DELETE ON workflow_versions
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_child_delete('workflow_version', 'workflows', 'workflow_id');

DROP TRIGGER agent_tool_audit_trigger ON agent_tools;
CREATE TRIGGER agent_tool_audit_trigger
    AFTER INSERT OR UPDATE ON agent_tools
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('agent_tool');
CREATE TRIGGER agent_tool_audit_delete_trigger
    AFTER DELETE ON agent_tools
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_child_delete('agent_tool', 'agents', 'agent_id');
