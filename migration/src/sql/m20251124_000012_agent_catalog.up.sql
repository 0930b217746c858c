-- What the agent catalog needs beyond the seed: the list's index, tool rules in the schema,
-- lookups that see past row level security (ids, types, states and, where the caller may see
-- them, names), and a lock that keeps a new version from naming an agent being deleted.

-- The agent list: newest first, continued after a (created_at, id) position.
CREATE INDEX idx_agents_created_at_id ON agents (created_at DESC, id DESC);

-- What a tool does, in the words the model reads to decide when to call it. The seed has no
-- place for it, and a function offered without a description is rarely called well.
ALTER TABLE agent_tools ADD COLUMN description TEXT;

-- A tool's name is the function name a model calls, and its type one of three. The service
-- checks both first, with clear messages; the constraints hold for every other path.
ALTER TABLE agent_tools ADD CONSTRAINT tool_name_is_function_name
    CHECK (tool_name ~ '^[A-Za-z0-9_-]{1,64}$');
ALTER TABLE agent_tools ADD CONSTRAINT tool_type_known
    CHECK (tool_type IN ('function', 'api', 'plugin'));

-- Every agent reachable from these through group conversations' participants, with whether the
-- caller may see it. Cycles are refused on write, and the lookup must see the whole graph to
-- refuse them: another user's inactive group may include the caller's agent. Only ids, types,
-- states and participant ids come back; names do not.
CREATE FUNCTION ipa_agent_graph(ids uuid[])
    RETURNS TABLE (id uuid, type agent_type, status agent_status, visible boolean, participants uuid[])
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
    caller_sees_all boolean := ipa_is_superuser();
    caller uuid := ipa_current_user_id();
BEGIN
    PERFORM set_config('app.is_superuser', 'true', true);
    RETURN QUERY
        WITH RECURSIVE reached (id) AS (
            SELECT unnest(ids)
            UNION
            SELECT member.value::uuid
              FROM reached
              JOIN agents a ON a.id = reached.id AND a.type = 'autogen'
             CROSS JOIN LATERAL jsonb_array_elements_text(a.configuration -> 'participants') AS member
        )
        SELECT a.id, a.type, coalesce(a.status, 'active'),
               caller_sees_all OR a.created_by = caller OR (caller IS NOT NULL AND a.status = 'active'),
               CASE WHEN a.type = 'autogen'
                    THEN ARRAY(SELECT jsonb_array_elements_text(a.configuration -> 'participants')::uuid)
                    ELSE '{}'::uuid[] END
          FROM agents a JOIN reached ON reached.id = a.id;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
END
$$;

-- What uses an agent: workflows whose current version has a step with it, and group
-- conversations that have it as a participant. Deleting the agent is refused while any exist,
-- whoever owns them, so the lookup sees past row level security; a name comes back only where the
-- caller may see the row.
CREATE FUNCTION ipa_agent_usage(agent uuid)
    RETURNS TABLE (kind text, id uuid, name text)
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
    caller_sees_all boolean := ipa_is_superuser();
    caller uuid := ipa_current_user_id();
BEGIN
    PERFORM set_config('app.is_superuser', 'true', true);
    RETURN QUERY
        SELECT 'workflow', w.id,
               CASE WHEN caller_sees_all OR w.created_by = caller THEN w.name::text END
          FROM workflows w
          JOIN workflow_versions v ON v.id = w.current_version_id
         WHERE v.definition -> 'steps' @> jsonb_build_array(jsonb_build_object('agent_id', agent::text))
        UNION ALL
        SELECT 'group', a.id,
               CASE WHEN caller_sees_all OR a.created_by = caller OR (caller IS NOT NULL AND a.status = 'active')
                    THEN a.name::text END
          FROM agents a
         WHERE a.type = 'autogen' AND a.configuration -> 'participants' @> to_jsonb(agent::text)
         ORDER BY 1, 3, 2;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
END
$$;

GRANT EXECUTE ON FUNCTION ipa_agent_graph(uuid[]), ipa_agent_usage(uuid) TO ipa_app;

-- A new version locks the agents its steps name (FOR KEY SHARE, until it commits), and fails if
-- one is gone. Deleting an agent locks it FOR UPDATE before looking for its users, so the two
-- cannot interleave: either the delete sees the new version and is refused, or the version sees
-- the agent gone.
CREATE FUNCTION ipa_lock_version_agents() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
    named uuid[];
    found integer;
BEGIN
    SELECT coalesce(array_agg(DISTINCT (step ->> 'agent_id')::uuid), '{}')
      INTO named
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(NEW.definition -> 'steps') = 'array'
                                     THEN NEW.definition -> 'steps' ELSE '[]'::jsonb END) AS step
     WHERE step ->> 'type' = 'agent' AND step ? 'agent_id';
    IF cardinality(named) = 0 THEN
        RETURN NEW;
    END IF;
    PERFORM set_config('app.is_superuser', 'true', true);
    WITH locked AS (SELECT a.id FROM agents a WHERE a.id = ANY (named) FOR KEY SHARE)
    SELECT count(*) INTO found FROM locked;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
    IF found < cardinality(named) THEN
        RAISE EXCEPTION 'an agent this version names no longer exists'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER workflow_version_agents_lock
    BEFORE INSERT ON workflow_versions
    FOR EACH ROW
    EXECUTE FUNCTION ipa_lock_version_agents();
