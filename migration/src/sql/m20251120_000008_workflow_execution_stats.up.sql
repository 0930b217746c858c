-- The seed's dashboard view, verbatim. It has no row level security of its own: the API reads it
-- only joined to workflows, whose policies decide which rows a user sees. The server refreshes
-- it CONCURRENTLY on a schedule, which the unique index makes possible.
CREATE MATERIALIZED VIEW workflow_execution_stats AS
SELECT
    workflow_id,
    COUNT(*) as total_executions,
    COUNT(*) FILTER (WHERE status = 'completed') as successful_count,
    COUNT(*) FILTER (WHERE status = 'failed') as failed_count,
    AVG(duration_ms) as avg_duration_ms
FROM executions
GROUP BY workflow_id;

CREATE UNIQUE INDEX workflow_execution_stats_workflow_id_idx ON workflow_execution_stats(workflow_id);

GRANT SELECT ON workflow_execution_stats TO ipa_app;
