-- Row level security without holes: what a raw-SQL probe as ipa_app (acting for one user, or for
-- no one) found it could still read or move, closed in the schema itself.

-- 1. A run's workflow, version and starter are fixed when it starts; a step stays in its run; a
-- session stays with its account and token. The policies' WITH CHECK alone let a user move his
-- own run under another user's workflow (the pair still satisfies the composite foreign key), or
-- a presented token re-point its session at another account.
CREATE FUNCTION ipa_forbid_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0]
        USING ERRCODE = 'object_not_in_prerequisite_state';
END
$$;

CREATE TRIGGER executions_identity_fixed
    BEFORE UPDATE OF workflow_id, workflow_version_id, triggered_by ON executions
    FOR EACH ROW
    WHEN (OLD.workflow_id IS DISTINCT FROM NEW.workflow_id
          OR OLD.workflow_version_id IS DISTINCT FROM NEW.workflow_version_id
          OR OLD.triggered_by IS DISTINCT FROM NEW.triggered_by)
    EXECUTE FUNCTION ipa_forbid_change('a run''s workflow, version and starter never change; start a new run instead');

CREATE TRIGGER execution_steps_run_fixed
    BEFORE UPDATE OF execution_id ON execution_steps
    FOR EACH ROW
    WHEN (OLD.execution_id IS DISTINCT FROM NEW.execution_id)
    EXECUTE FUNCTION ipa_forbid_change('a step never moves to another run');

CREATE TRIGGER sessions_owner_fixed
    BEFORE UPDATE OF user_id, token_hash ON sessions
    FOR EACH ROW
    WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.token_hash IS DISTINCT FROM NEW.token_hash)
    EXECUTE FUNCTION ipa_forbid_change('a session never changes its account or token; sign in again instead');

-- 2. The statistics view is read only through a view that joins it to workflows, whose policies
-- decide which rows come back. The view runs with its owner's rights (the owner is bound by the
-- forced policies of workflows, which read the request's settings); security_barrier keeps a
-- caller's own conditions from being evaluated before the join has filtered the rows.
REVOKE ALL ON workflow_execution_stats FROM ipa_app;
CREATE VIEW visible_workflow_execution_stats WITH (security_barrier) AS
SELECT s.workflow_id,
       w.name AS workflow_name,
       s.total_executions,
       s.successful_count,
       s.failed_count,
       s.avg_duration_ms
  FROM workflow_execution_stats s
  JOIN workflows w ON w.id = s.workflow_id;
GRANT SELECT ON visible_workflow_execution_stats TO ipa_app;

-- 3. Sign-in attempts: the throttle counts failures from the requesting address across
-- identifiers, and used to do it by reading those rows, other accounts' identifiers included.
-- It now asks a function for the one timestamp it needs. Attempts are written only for the
-- identifier being signed in with, from the request's own address, as failures (the flip to
-- success is login_attempts_mark_success's).
DROP POLICY login_attempts_select_same_address ON login_attempts;
DROP POLICY login_attempts_insert_any ON login_attempts;
CREATE POLICY login_attempts_insert_signing_in ON login_attempts FOR INSERT
    WITH CHECK (ipa_is_superuser()
                OR (identifier = ipa_login_identifier() AND NOT succeeded
                    AND ip_address IS NOT DISTINCT FROM ipa_client_ip()));

-- When the nth most recent failed sign-in from the requesting address, within the last
-- window_seconds, happened (NULL when there were fewer). Only in a sign-in's context; only a
-- timestamp comes back, never an identifier.
CREATE FUNCTION ipa_address_failure_at(window_seconds double precision, nth bigint)
RETURNS timestamptz
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
    address inet := ipa_client_ip();
    found timestamptz;
BEGIN
    IF address IS NULL OR ipa_login_identifier() IS NULL OR nth < 1 THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.is_superuser', 'true', true);
    SELECT a.attempted_at INTO found
      FROM login_attempts a
     WHERE a.ip_address = address AND NOT a.succeeded
       AND a.attempted_at > now() - window_seconds * interval '1 second'
     ORDER BY a.attempted_at DESC OFFSET nth - 1 LIMIT 1;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
    RETURN found;
END
$$;
GRANT EXECUTE ON FUNCTION ipa_address_failure_at(double precision, bigint) TO ipa_app;

-- Audit rows are written in the actor's name. Without an actor, only the record of a sign-in
-- (a failed one is recorded before anyone is signed in), not rows about anything else.
DROP POLICY audit_logs_insert_as_actor ON audit_logs;
CREATE POLICY audit_logs_insert_as_actor ON audit_logs FOR INSERT
    WITH CHECK (ipa_is_superuser() OR user_id = ipa_current_user_id()
                OR (user_id IS NULL AND ipa_current_user_id() IS NULL AND action = 'login'));

-- 4. The lookups that see past row level security answer only what their caller may know: with
-- no actor, nothing; about users and agents, only the ids asked about; about what uses an agent,
-- only to those who may change it, with ids and names only of what they may see; about a group's
-- graph, the agents the caller may not see stand only for the visible agents they lead to.
CREATE OR REPLACE FUNCTION ipa_user_states(ids uuid[]) RETURNS TABLE (id uuid, is_active boolean)
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
BEGIN
    IF ipa_current_user_id() IS NULL AND NOT ipa_is_superuser() THEN
        RETURN;
    END IF;
    PERFORM set_config('app.is_superuser', 'true', true);
    RETURN QUERY SELECT u.id, u.is_active IS TRUE FROM users u WHERE u.id = ANY (ids);
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
END
$$;

CREATE OR REPLACE FUNCTION ipa_agent_states(ids uuid[]) RETURNS TABLE (id uuid, status agent_status)
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
BEGIN
    IF ipa_current_user_id() IS NULL AND NOT ipa_is_superuser() THEN
        RETURN;
    END IF;
    PERFORM set_config('app.is_superuser', 'true', true);
    RETURN QUERY SELECT a.id, coalesce(a.status, 'active') FROM agents a WHERE a.id = ANY (ids);
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
END
$$;

-- Every agent reachable from these through group conversations' participants. An agent the
-- caller may see comes with its type, status and participants (all readable in its row anyway).
-- One the caller may not see comes with no type or status, and in place of its participants the
-- visible agents it reaches through agents the caller may not see either: enough to refuse a
-- cycle through it, nothing about its own members.
CREATE OR REPLACE FUNCTION ipa_agent_graph(ids uuid[])
    RETURNS TABLE (id uuid, type agent_type, status agent_status, visible boolean, participants uuid[])
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
    caller_sees_all boolean := ipa_is_superuser();
    caller uuid := ipa_current_user_id();
BEGIN
    IF caller IS NULL AND NOT caller_sees_all THEN
        RETURN;
    END IF;
    PERFORM set_config('app.is_superuser', 'true', true);
    RETURN QUERY
        WITH RECURSIVE reached (id) AS (
            SELECT unnest(ids)
            UNION
            SELECT member.value::uuid
              FROM reached
              JOIN agents a ON a.id = reached.id AND a.type = 'autogen'
             CROSS JOIN LATERAL jsonb_array_elements_text(a.configuration -> 'participants') AS member
        ), node AS (
            SELECT a.id AS agent, a.type AS agent_type, coalesce(a.status, 'active') AS agent_status,
                   (caller_sees_all OR a.created_by = caller OR a.status = 'active') AS seen,
                   CASE WHEN a.type = 'autogen'
                        THEN ARRAY(SELECT jsonb_array_elements_text(a.configuration -> 'participants')::uuid)
                        ELSE '{}'::uuid[] END AS members
              FROM agents a JOIN reached ON reached.id = a.id
        ), hidden_reach (origin, target) AS (
            SELECT n.agent, m.member
              FROM node n CROSS JOIN LATERAL unnest(n.members) AS m(member)
             WHERE NOT n.seen
            UNION
            SELECT h.origin, m.member
              FROM hidden_reach h
              JOIN node n ON n.agent = h.target AND NOT n.seen
             CROSS JOIN LATERAL unnest(n.members) AS m(member)
        )
        SELECT n.agent,
               CASE WHEN n.seen THEN n.agent_type END,
               CASE WHEN n.seen THEN n.agent_status END,
               n.seen,
               CASE WHEN n.seen THEN n.members
                    ELSE ARRAY(SELECT DISTINCT h.target
                                 FROM hidden_reach h JOIN node v ON v.agent = h.target AND v.seen
                                WHERE h.origin = n.agent)
               END
          FROM node n
         -- An agent the caller may not see comes back only when asked about or named by one he
         -- may see.
         WHERE n.seen OR n.agent = ANY (ids)
            OR EXISTS (SELECT 1 FROM node v WHERE v.seen AND n.agent = ANY (v.members));
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
END
$$;

-- What uses an agent, answered only to whoever may change it (its creator, a superuser): the
-- ids and names of what the caller may see, a row with neither for each of the rest.
CREATE OR REPLACE FUNCTION ipa_agent_usage(agent uuid)
    RETURNS TABLE (kind text, id uuid, name text)
    LANGUAGE plpgsql
AS $$
DECLARE
    caller_is_superuser text := current_setting('app.is_superuser', true);
    caller_sees_all boolean := ipa_is_superuser();
    caller uuid := ipa_current_user_id();
BEGIN
    IF NOT caller_sees_all
       AND (caller IS NULL
            OR NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = agent AND a.created_by = caller)) THEN
        RETURN;
    END IF;
    PERFORM set_config('app.is_superuser', 'true', true);
    RETURN QUERY
        SELECT 'workflow', CASE WHEN caller_sees_all OR w.created_by = caller THEN w.id END,
               CASE WHEN caller_sees_all OR w.created_by = caller THEN w.name::text END
          FROM workflows w
          JOIN workflow_versions v ON v.id = w.current_version_id
         WHERE v.definition -> 'steps' @> jsonb_build_array(jsonb_build_object('agent_id', agent::text))
        UNION ALL
        SELECT 'group',
               CASE WHEN caller_sees_all OR a.created_by = caller OR a.status = 'active' THEN a.id END,
               CASE WHEN caller_sees_all OR a.created_by = caller OR a.status = 'active'
                    THEN a.name::text END
          FROM agents a
         WHERE a.type = 'autogen' AND a.configuration -> 'participants' @> to_jsonb(agent::text)
         ORDER BY 1, 3, 2;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
END
$$;

-- 5. Partitions carry their parent's row security. Read directly, a partition applies only its
-- own policies: without them the owner read every row through it. This copies the parent's
-- ENABLE and FORCE, its policies (dropping the partition's others) and its grants onto a
-- partition; ipa_ensure_monthly_partitions calls it for every partition it creates.
--
-- A policy's expression names the parent where it refers to the row from a subquery
-- (execution_logs.execution_id); on the partition it must name the partition.
CREATE FUNCTION ipa_copy_row_security(parent regclass, part regclass) RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    parent_name text;
    part_name text;
    qualifier text;
    policy record;
    privilege record;
BEGIN
    SELECT c.relname INTO parent_name FROM pg_catalog.pg_class c WHERE c.oid = parent;
    SELECT c.relname INTO part_name FROM pg_catalog.pg_class c WHERE c.oid = part;
    qualifier := '\m' || parent_name || '\.';
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', part);
    FOR policy IN SELECT p.polname FROM pg_catalog.pg_policy p WHERE p.polrelid = part LOOP
        EXECUTE format('DROP POLICY %I ON %s', policy.polname, part);
    END LOOP;
    FOR policy IN
        SELECT p.polname, p.polpermissive, p.polcmd,
               (SELECT string_agg(CASE WHEN r.role = 0 THEN 'PUBLIC' ELSE r.role::regrole::text END, ', ')
                  FROM unnest(p.polroles) AS r(role)) AS roles,
               pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual,
               pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
          FROM pg_catalog.pg_policy p WHERE p.polrelid = parent ORDER BY p.polname
    LOOP
        EXECUTE format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s',
            policy.polname, part,
            CASE WHEN policy.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
            CASE policy.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                               WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
            policy.roles,
            coalesce(' USING (' || regexp_replace(policy.qual, qualifier, part_name || '.', 'g') || ')', ''),
            coalesce(' WITH CHECK (' || regexp_replace(policy.with_check, qualifier, part_name || '.', 'g') || ')', ''));
    END LOOP;
    FOR privilege IN
        SELECT a.grantee, a.privilege_type
          FROM pg_catalog.pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
         WHERE c.oid = parent AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON %s TO %s', privilege.privilege_type, part,
                       CASE WHEN privilege.grantee = 0 THEN 'PUBLIC' ELSE privilege.grantee::regrole::text END);
    END LOOP;
END
$$;

-- The partition-creating function of the foundation, now securing what it creates. Rows moved
-- out of the DEFAULT partition are moved by the owner with that partition's forced row security
-- lifted for the moment of the move (audit_logs has no DELETE policy, by design, so under it the
-- move would delete nothing and the attach would fail).
CREATE OR REPLACE FUNCTION ipa_ensure_monthly_partitions(parent regclass, from_month date, months integer)
RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    parent_schema text;
    parent_name text;
    partition_name text;
    default_partition regclass;
    month_start date;
    lower_bound timestamptz;
    upper_bound timestamptz;
    created integer := 0;
    caller_is_superuser text := current_setting('app.is_superuser', true);
BEGIN
    IF months < 1 THEN
        RAISE EXCEPTION 'months must be at least 1, got %', months;
    END IF;
    SELECT n.nspname, c.relname INTO parent_schema, parent_name
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = parent AND c.relkind = 'p';
    IF parent_name IS NULL THEN
        RAISE EXCEPTION '% is not a partitioned table', parent;
    END IF;
    default_partition := to_regclass(format('%I.%I', parent_schema, parent_name || '_default'));

    PERFORM set_config('app.is_superuser', 'true', true);
    FOR i IN 0 .. months - 1 LOOP
        month_start := (date_trunc('month', from_month) + make_interval(months => i))::date;
        partition_name := format('%s_%s', parent_name, to_char(month_start, 'YYYY_MM'));
        CONTINUE WHEN to_regclass(format('%I.%I', parent_schema, partition_name)) IS NOT NULL;

        lower_bound := month_start::timestamp AT TIME ZONE 'UTC';
        upper_bound := (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       parent_schema, partition_name, parent);
        IF default_partition IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', default_partition);
            EXECUTE format('WITH moved AS (DELETE FROM %s WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
                           'INSERT INTO %I.%I SELECT * FROM moved',
                           default_partition, parent_schema, partition_name)
                USING lower_bound, upper_bound;
            EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', default_partition);
        END IF;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                       parent, parent_schema, partition_name, lower_bound, upper_bound);
        PERFORM ipa_copy_row_security(parent, format('%I.%I', parent_schema, partition_name)::regclass);
        created := created + 1;
    END LOOP;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
    RETURN created;
END
$$;

-- The partitions that exist already, the DEFAULT ones included.
SELECT ipa_copy_row_security(i.inhparent::regclass, i.inhrelid::regclass)
  FROM pg_catalog.pg_inherits i
 WHERE i.inhparent IN ('execution_logs'::regclass, 'audit_logs'::regclass);
