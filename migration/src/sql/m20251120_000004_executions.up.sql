-- Executions, their steps and their log lines: the seed's tables. Departures: an execution's
-- version must belong to its workflow, and execution_logs is really partitioned by month.
CREATE TYPE execution_status AS ENUM (
    'pending',      -- waiting to run
    'running',      -- running
    'paused',       -- paused
    'completed',    -- completed successfully
    'failed',       -- failed
    'cancelled'     -- cancelled
);

CREATE TABLE executions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow_id UUID NOT NULL REFERENCES workflows(id) ON DELETE RESTRICT,
    workflow_version_id UUID NOT NULL REFERENCES workflow_versions(id) ON DELETE RESTRICT,
    triggered_by UUID NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    status execution_status DEFAULT 'pending',
    input_data JSONB DEFAULT '{}',
    output_data JSONB,
    error_message TEXT,
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    duration_ms INTEGER,
    retry_count INTEGER DEFAULT 0,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT duration_positive CHECK (duration_ms >= 0),
    CONSTRAINT retry_count_non_negative CHECK (retry_count >= 0),
    CONSTRAINT completed_after_started CHECK (completed_at IS NULL OR completed_at >= started_at),
    -- The version run must be a version of the workflow named.
    CONSTRAINT fk_executions_version_of_workflow
        FOREIGN KEY (workflow_id, workflow_version_id)
        REFERENCES workflow_versions (workflow_id, id)
        ON DELETE RESTRICT
);

CREATE INDEX idx_executions_workflow_id ON executions(workflow_id);
CREATE INDEX idx_executions_triggered_by ON executions(triggered_by);
CREATE INDEX idx_executions_status ON executions(status);
CREATE INDEX idx_executions_created_at ON executions(created_at DESC);
CREATE INDEX idx_executions_completed_at ON executions(completed_at DESC) WHERE completed_at IS NOT NULL;
-- The seed's covering index for listing a workflow's executions.
CREATE INDEX idx_executions_list ON executions(workflow_id, created_at DESC)
    INCLUDE (status, triggered_by);

CREATE TYPE step_status AS ENUM (
    'pending',
    'running',
    'completed',
    'failed',
    'skipped'
);

CREATE TABLE execution_steps (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    execution_id UUID NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    step_name VARCHAR(255) NOT NULL,
    step_index INTEGER NOT NULL,
    step_type VARCHAR(100) NOT NULL,  -- 'agent', 'webhook', 'approval', etc.
    status step_status DEFAULT 'pending',
    input_data JSONB,
    output_data JSONB,
    error_message TEXT,
    started_at TIMESTAMP WITH TIME ZONE,
    completed_at TIMESTAMP WITH TIME ZONE,
    duration_ms INTEGER,
    retry_count INTEGER DEFAULT 0,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    CONSTRAINT step_index_non_negative CHECK (step_index >= 0),
    CONSTRAINT duration_positive CHECK (duration_ms >= 0)
);

CREATE INDEX idx_execution_steps_execution_id ON execution_steps(execution_id);
CREATE INDEX idx_execution_steps_status ON execution_steps(status);
CREATE INDEX idx_execution_steps_step_index ON execution_steps(execution_id, step_index);

CREATE TYPE log_level AS ENUM ('debug', 'info', 'warning', 'error', 'critical');

-- The seed declared partitions of a table that was not partitioned, which PostgreSQL refuses.
-- A partitioned table's primary key must include the partition key, hence (id, created_at).
CREATE TABLE execution_logs (
    id BIGSERIAL,
    execution_id UUID NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    execution_step_id UUID REFERENCES execution_steps(id) ON DELETE CASCADE,
    level log_level NOT NULL,
    message TEXT NOT NULL,
    context JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),

    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX idx_execution_logs_execution_id ON execution_logs(execution_id);
CREATE INDEX idx_execution_logs_step_id ON execution_logs(execution_step_id);
CREATE INDEX idx_execution_logs_level ON execution_logs(level);
CREATE INDEX idx_execution_logs_created_at ON execution_logs(created_at DESC);

-- No row is ever refused for lack of a partition.
CREATE TABLE execution_logs_default PARTITION OF execution_logs DEFAULT;
-- The seed's partition (bounds in UTC, not the session's time zone), then this month and the
-- next three. The server keeps creating months ahead while it runs.
CREATE TABLE execution_logs_2025_11 PARTITION OF execution_logs
    FOR VALUES FROM ('2025-11-01 00:00:00+00') TO ('2025-12-01 00:00:00+00');
SELECT ipa_ensure_monthly_partitions('execution_logs', (now() AT TIME ZONE 'UTC')::date, 4);

CREATE TRIGGER update_executions_updated_at
    BEFORE UPDATE ON executions
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER update_execution_steps_updated_at
    BEFORE UPDATE ON execution_steps
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();

-- The seed's duration function and triggers, verbatim.
CREATE OR REPLACE FUNCTION calculate_execution_duration()
RETURNS TRIGGER AS $$
BEGIN
    IF NEW.completed_at IS NOT NULL AND NEW.started_at IS NOT NULL THEN
        NEW.duration_ms = EXTRACT(EPOCH FROM (NEW.completed_at - NEW.started_at)) * 1000;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER calculate_execution_duration_trigger
    BEFORE UPDATE ON executions
    FOR EACH ROW
    WHEN (NEW.completed_at IS NOT NULL AND OLD.completed_at IS NULL)
    EXECUTE FUNCTION calculate_execution_duration();

CREATE TRIGGER calculate_execution_step_duration_trigger
    BEFORE UPDATE ON execution_steps
    FOR EACH ROW
    WHEN (NEW.completed_at IS NOT NULL AND OLD.completed_at IS NULL)
    EXECUTE FUNCTION calculate_execution_duration();
