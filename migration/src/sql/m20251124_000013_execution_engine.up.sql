-- What the engine and the executions API need beyond the seed: a worker's lease on a run, the
-- approval a paused run waits on, idempotent starts, the indexes behind claiming and listing,
-- and the notifications that wake workers and live event streams.

ALTER TABLE executions
    -- Starting a run is safe to repeat: a client's key, per user, and the request it came with.
    ADD COLUMN idempotency_key TEXT,
    ADD COLUMN idempotency_request JSONB,
    -- The worker holding the run, until when. A lease that runs out means the worker was lost.
    ADD COLUMN lease_owner TEXT,
    ADD COLUMN lease_expires_at TIMESTAMP WITH TIME ZONE,
    -- How many times the run was picked up again after losing its worker (bounded by the engine).
    ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0,
    -- The approval step a paused run waits on, and when that wait times out.
    ADD COLUMN waiting_step_id UUID REFERENCES execution_steps(id) ON DELETE SET NULL,
    ADD COLUMN wake_at TIMESTAMP WITH TIME ZONE,
    ADD CONSTRAINT idempotency_key_bounded
        CHECK (idempotency_key IS NULL OR char_length(idempotency_key) BETWEEN 1 AND 255),
    ADD CONSTRAINT recoveries_non_negative CHECK (recoveries >= 0),
    ADD CONSTRAINT waiting_only_when_paused CHECK (waiting_step_id IS NULL OR status = 'paused');

CREATE UNIQUE INDEX idx_executions_idempotency ON executions (triggered_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Newest-first keyset pages of GET /executions.
CREATE INDEX idx_executions_created_at_id ON executions (created_at DESC, id DESC);
-- What workers claim: waiting or held runs, and approvals that may time out. Finished runs,
-- the bulk of the table, are not in it.
CREATE INDEX idx_executions_claimable ON executions (created_at)
    WHERE status IN ('pending', 'running') OR waiting_step_id IS NOT NULL;

-- A run has one step per position.
CREATE UNIQUE INDEX idx_execution_steps_execution_index ON execution_steps (execution_id, step_index);

-- A run's log lines in the order they were written: log pages and event streams.
CREATE INDEX idx_execution_logs_execution_id_id ON execution_logs (execution_id, id);

-- Workers listen on ipa_executions ('<status>:<id>') to claim new work at once and to interrupt a
-- step whose run was cancelled; event streams listen on ipa_execution_logs ('<execution id>').
-- Notifications are sent at commit, so a listener never reads ahead of the data.
CREATE FUNCTION ipa_notify_execution_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ipa_executions', NEW.status::text || ':' || NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER executions_notify_insert
    AFTER INSERT ON executions
    FOR EACH ROW
    EXECUTE FUNCTION ipa_notify_execution_status();

CREATE TRIGGER executions_notify_status
    AFTER UPDATE OF status ON executions
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION ipa_notify_execution_status();

CREATE FUNCTION ipa_notify_execution_log() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- One notification per run and transaction: PostgreSQL folds identical ones.
    PERFORM pg_notify('ipa_execution_logs', NEW.execution_id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER execution_logs_notify
    AFTER INSERT ON execution_logs
    FOR EACH ROW
    EXECUTE FUNCTION ipa_notify_execution_log();
