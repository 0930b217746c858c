-- Partitions lose the row security copied onto them (the parents keep theirs).
DO $$
DECLARE
    part record;
    policy record;
BEGIN
    FOR part IN SELECT i.inhrelid::regclass AS rel FROM pg_catalog.pg_inherits i
                 WHERE i.inhparent IN ('execution_logs'::regclass, 'audit_logs'::regclass) LOOP
        FOR policy IN SELECT p.polname FROM pg_catalog.pg_policy p WHERE p.polrelid = part.rel LOOP
            EXECUTE format('DROP POLICY %I ON %s', policy.polname, part.rel);
        END LOOP;
        EXECUTE format('REVOKE ALL ON %s FROM ipa_app', part.rel);
        EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', part.rel);
        EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', part.rel);
    END LOOP;
END
$$;

-- The earlier definitions, verbatim.
CREATE OR REPLACE FUNCTION ipa_ensure_monthly_partitions(parent regclass, from_month date, months integer)
RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    parent_schema text;
    parent_name text;
    partition_name text;
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

    PERFORM set_config('app.is_superuser', 'true', true);
    FOR i IN 0 .. months - 1 LOOP
        month_start := (date_trunc('month', from_month) + make_interval(months => i))::date;
        partition_name := format('%s_%s', parent_name, to_char(month_start, 'YYYY_MM'));
        CONTINUE WHEN to_regclass(format('%I.%I', parent_schema, partition_name)) IS NOT NULL;

        lower_bound := month_start::timestamp AT TIME ZONE 'UTC';
        upper_bound := (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       parent_schema, partition_name, parent);
        IF to_regclass(format('%I.%I', parent_schema, parent_name || '_default')) IS NOT NULL THEN
            EXECUTE format('WITH moved AS (DELETE FROM %I.%I WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
                           'INSERT INTO %I.%I SELECT * FROM moved',
                           parent_schema, parent_name || '_default', parent_schema, partition_name)
                USING lower_bound, upper_bound;
        END IF;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                       parent, parent_schema, partition_name, lower_bound, upper_bound);
        created := created + 1;
    END LOOP;
    PERFORM set_config('app.is_superuser', coalesce(caller_is_superuser, ''), true);
    RETURN created;
END
$$;

CREATE OR REPLACE FUNCTION ipa_user_states(ids uuid[]) RETURNS TABLE (id uuid, is_active boolean)
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

CREATE OR REPLACE FUNCTION ipa_agent_states(ids uuid[]) RETURNS TABLE (id uuid, status agent_status)
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

CREATE OR REPLACE FUNCTION ipa_agent_graph(ids uuid[])
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

CREATE OR REPLACE FUNCTION ipa_agent_usage(agent uuid)
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

DROP FUNCTION ipa_copy_row_security(regclass, regclass);

REVOKE EXECUTE ON FUNCTION ipa_address_failure_at(double precision, bigint) FROM ipa_app;
DROP FUNCTION ipa_address_failure_at(double precision, bigint);
DROP POLICY login_attempts_insert_signing_in ON login_attempts;
CREATE POLICY login_attempts_insert_any ON login_attempts FOR INSERT
    WITH CHECK (true);
CREATE POLICY login_attempts_select_same_address ON login_attempts FOR SELECT
    USING (ip_address = ipa_client_ip());

DROP POLICY audit_logs_insert_as_actor ON audit_logs;
CREATE POLICY audit_logs_insert_as_actor ON audit_logs FOR INSERT
    WITH CHECK (ipa_is_superuser() OR user_id IS NOT DISTINCT FROM ipa_current_user_id());

DROP VIEW visible_workflow_execution_stats;
GRANT SELECT ON workflow_execution_stats TO ipa_app;

DROP TRIGGER sessions_owner_fixed ON sessions;
DROP TRIGGER execution_steps_run_fixed ON execution_steps;
DROP TRIGGER executions_identity_fixed ON executions;
DROP FUNCTION ipa_forbid_change();
