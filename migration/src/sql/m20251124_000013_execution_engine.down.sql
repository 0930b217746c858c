DROP TRIGGER execution_logs_notify ON execution_logs;
DROP FUNCTION ipa_notify_execution_log();
DROP TRIGGER executions_notify_status ON executions;
DROP TRIGGER executions_notify_insert ON executions;
DROP FUNCTION ipa_notify_execution_status();
DROP INDEX idx_execution_logs_execution_id_id;
DROP INDEX idx_execution_steps_execution_index;
DROP INDEX idx_executions_claimable;
DROP INDEX idx_executions_created_at_id;
DROP INDEX idx_executions_idempotency;
ALTER TABLE executions
    DROP CONSTRAINT waiting_only_when_paused,
    DROP CONSTRAINT recoveries_non_negative,
    DROP CONSTRAINT idempotency_key_bounded,
    DROP COLUMN wake_at,
    DROP COLUMN waiting_step_id,
    DROP COLUMN recoveries,
    DROP COLUMN lease_expires_at,
    DROP COLUMN lease_owner,
    DROP COLUMN idempotency_request,
    DROP COLUMN idempotency_key;
