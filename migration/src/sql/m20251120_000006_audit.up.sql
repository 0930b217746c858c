-- The audit log: the seed's table, really partitioned by month, and one trigger mechanism that
-- records the real actor, client address and user agent of the transaction, with secrets redacted.
CREATE TYPE audit_action AS ENUM (
    'create', 'update', 'delete',
    'login', 'logout',
    'execute', 'cancel'
);

CREATE TABLE audit_logs (
    id BIGSERIAL,
    user_id UUID REFERENCES users(id) ON DELETE SET NULL,
    action audit_action NOT NULL,
    resource_type VARCHAR(100) NOT NULL,  -- 'workflow', 'execution', 'agent'
    resource_id UUID,
    changes JSONB,  -- Data before and after the change
    ip_address INET,
    user_agent TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX idx_audit_logs_user_id ON audit_logs(user_id);
CREATE INDEX idx_audit_logs_resource ON audit_logs(resource_type, resource_id);
CREATE INDEX idx_audit_logs_created_at ON audit_logs(created_at DESC);
CREATE INDEX idx_audit_logs_action ON audit_logs(action);

CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;
CREATE TABLE audit_logs_2025_11 PARTITION OF audit_logs
    FOR VALUES FROM ('2025-11-01 00:00:00+00') TO ('2025-12-01 00:00:00+00');
SELECT ipa_ensure_monthly_partitions('audit_logs', (now() AT TIME ZONE 'UTC')::date, 4);

-- Whether a JSON member name holds a credential, whatever the document it appears in: password
-- hashes, API keys, tokens, authorization headers.
CREATE FUNCTION ipa_is_secret_key(member text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT lower(member) ~ '^(hashed_password|password|passwd|secret|client_secret|api[_-]?key|access[_-]?token|refresh[_-]?token|token|bearer|authorization|proxy-authorization|cookie|private[_-]?key|credentials?)$'
        OR lower(member) ~ '[_-](password|secret|token|api[_-]?key)$'
$$;

-- A copy of a JSON document safe to keep in the audit log: every member whose name holds a
-- credential is replaced by "[REDACTED]", and every object marked secret (one that has a
-- "$secret" member, the form configurations store secrets in) is replaced whole.
CREATE FUNCTION ipa_redact_secrets(doc jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    redacted jsonb;
    entry record;
BEGIN
    CASE jsonb_typeof(doc)
        WHEN 'object' THEN
            IF doc ? '$secret' THEN
                RETURN '{"$secret": "[REDACTED]"}'::jsonb;
            END IF;
            redacted := '{}'::jsonb;
            FOR entry IN SELECT key, value FROM jsonb_each(doc) LOOP
                redacted := redacted || jsonb_build_object(
                    entry.key,
                    CASE WHEN ipa_is_secret_key(entry.key) AND jsonb_typeof(entry.value) <> 'null'
                         THEN '"[REDACTED]"'::jsonb
                         ELSE ipa_redact_secrets(entry.value)
                    END);
            END LOOP;
            RETURN redacted;
        WHEN 'array' THEN
            RETURN (SELECT coalesce(jsonb_agg(ipa_redact_secrets(element) ORDER BY position), '[]'::jsonb)
                      FROM jsonb_array_elements(doc) WITH ORDINALITY AS items(element, position));
        ELSE
            RETURN doc;
    END CASE;
END
$$;

-- The audit trigger for every audited table. Arguments: the resource type, then the columns whose
-- change alone is not worth an audit row (updated_at is always ignored). The actor, address and
-- user agent come from the transaction-local settings the request set, never from the row: the
-- seed's created_by named the creator as the author of every later change.
CREATE FUNCTION ipa_audit_row_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    ignored_columns text[] := array_append(TG_ARGV[1:TG_NARGS - 1], 'updated_at');
    before_row jsonb;
    after_row jsonb;
    performed audit_action;
    row_id uuid;
BEGIN
    IF TG_OP = 'INSERT' THEN
        performed := 'create';
        after_row := to_jsonb(NEW);
        row_id := NEW.id;
    ELSIF TG_OP = 'UPDATE' THEN
        performed := 'update';
        before_row := to_jsonb(OLD);
        after_row := to_jsonb(NEW);
        row_id := NEW.id;
        IF before_row - ignored_columns = after_row - ignored_columns THEN
            RETURN NULL;
        END IF;
    ELSE
        performed := 'delete';
        before_row := to_jsonb(OLD);
        row_id := OLD.id;
    END IF;

    INSERT INTO audit_logs (user_id, action, resource_type, resource_id, changes, ip_address, user_agent)
    VALUES (ipa_current_user_id(), performed, TG_ARGV[0], row_id,
            jsonb_build_object('before', ipa_redact_secrets(before_row),
                               'after', ipa_redact_secrets(after_row)),
            ipa_client_ip(), ipa_user_agent());
    RETURN NULL;
END
$$;

CREATE TRIGGER user_audit_trigger
    AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('user', 'last_login_at');

-- The seed's trigger name, on the shared mechanism.
CREATE TRIGGER workflow_audit_trigger
    AFTER INSERT OR UPDATE OR DELETE ON workflows
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('workflow');

CREATE TRIGGER workflow_version_audit_trigger
    AFTER INSERT OR UPDATE OR DELETE ON workflow_versions
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('workflow_version');

CREATE TRIGGER agent_audit_trigger
    AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('agent');

CREATE TRIGGER agent_tool_audit_trigger
    AFTER INSERT OR UPDATE OR DELETE ON agent_tools
    FOR EACH ROW
    EXECUTE FUNCTION ipa_audit_row_change('agent_tool');
