-- Foundation: the role requests act as, and the helper functions every later migration uses.
--
-- Requests never run as the owner of the tables: the server switches each request's transaction
-- to `ipa_app` (set_config('role', 'ipa_app', true)), a role that owns nothing, is not a
-- superuser and cannot bypass row level security. The role is cluster-wide, so it may already
-- exist (another database of the same cluster); its privileges are granted per database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ipa_app') THEN
        CREATE ROLE ipa_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
END
$$;

-- The owner must be a member of ipa_app to switch to it. Granting needs ADMIN on the role from
-- PostgreSQL 16 on, so an owner that an operator already made a member is left as it is.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'ipa_app', 'MEMBER') THEN
        EXECUTE format('GRANT ipa_app TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO ipa_app;

-- The acting user of the current transaction, or NULL when no actor was set (the seed's
-- current_setting('app.current_user_id') raises instead). No context means no rows.
CREATE FUNCTION ipa_current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.current_user_id', true), '')::uuid $$;

-- Whether the acting user is a platform superuser; false when unset.
CREATE FUNCTION ipa_is_superuser() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('app.is_superuser', true), '')::boolean, false) $$;

-- The client address of the current request. A malformed value must never make a write fail,
-- so it reads as NULL.
CREATE FUNCTION ipa_client_ip() RETURNS inet
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN nullif(current_setting('app.client_ip', true), '')::inet;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN NULL;
END
$$;

-- The user agent of the current request, or NULL.
CREATE FUNCTION ipa_user_agent() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.user_agent', true), '') $$;

-- The seed's trigger function, verbatim.
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- Creates the monthly partitions (UTC months) of a table partitioned by range on created_at,
-- `months` of them starting with the month of `from_month`. Partitions that exist are left
-- alone. Rows the DEFAULT partition already holds for a new month are moved into it first:
-- otherwise attaching the partition would fail. Returns how many partitions it created.
--
-- Attaching validates the parent's foreign keys against the moved rows with a query run as the
-- owner, to which the forced row level security applies: without a superuser context it would
-- see no users and refuse every row. The context is raised for the duration and then restored.
CREATE FUNCTION ipa_ensure_monthly_partitions(parent regclass, from_month date, months integer)
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
