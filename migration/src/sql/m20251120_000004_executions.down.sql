DROP TABLE execution_logs;
DROP TABLE execution_steps;
DROP TABLE executions;
DROP FUNCTION calculate_execution_duration();
DROP TYPE log_level;
DROP TYPE step_status;
DROP TYPE execution_status;
