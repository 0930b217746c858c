-- Approvers by policy: a user listed as an approver of a run's approval step may see that run
-- (its steps and log lines follow it) and record a decision on it, by row level security alone.
-- Before, the store raised a superuser context for the whole decision transaction, because the
-- policies knew only owners, starters and superusers.
--
-- Who was asked is kept as rows, not read out of the step's JSON input at each check: a policy
-- that looked into `execution_steps.input_data` would have to read past the steps' own policy
-- (which follows executions, so the two would recurse), and could not be answered from an
-- index. One row per (step, approver), written when the engine begins that step.
CREATE TABLE execution_approvers (
    step_id uuid NOT NULL REFERENCES execution_steps (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    asked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (step_id, user_id)
);
-- The policy below asks "which runs was I asked about": an index-only scan of the caller's rows.
CREATE INDEX idx_execution_approvers_user_execution ON execution_approvers (user_id, execution_id);
-- Deleting a run (or a user) cascades here; these keep those deletes from scanning the table.
CREATE INDEX idx_execution_approvers_execution ON execution_approvers (execution_id);

ALTER TABLE execution_approvers ENABLE ROW LEVEL SECURITY;
ALTER TABLE execution_approvers FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON execution_approvers TO ipa_app;
-- A user reads the requests made of them; superusers (and the engine, which acts as the system)
-- read and write them all. Nobody else writes them: the trigger below does, in the engine's
-- transaction.
CREATE POLICY execution_approvers_own_or_admin ON execution_approvers FOR SELECT
    USING (user_id = ipa_current_user_id() OR ipa_is_superuser());
CREATE POLICY execution_approvers_written_by_the_system ON execution_approvers FOR INSERT
    WITH CHECK (ipa_is_superuser());

-- When the engine begins an approval step, it records in the step's input the approvers it
-- resolved from the definition (`{"approvers": [ids], ...}`); those users are then asked. Ids that
-- are not accounts (the definition was checked when it was published, yet an account may be
-- gone since) are left out rather than failing the engine's write. The trigger is on the step,
-- not on the run's `waiting_step_id`: the engine writes the run's state before the step's input.
CREATE FUNCTION ipa_record_asked_approvers() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO execution_approvers (step_id, user_id, execution_id)
    SELECT NEW.id, u.id, NEW.execution_id
      FROM jsonb_array_elements_text(NEW.input_data -> 'approvers') AS listed (id)
      JOIN users u
        ON u.id = CASE WHEN listed.id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                       THEN listed.id::uuid END
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER execution_steps_record_asked_approvers
    AFTER INSERT OR UPDATE OF input_data ON execution_steps
    FOR EACH ROW
    WHEN (NEW.step_type = 'approval' AND jsonb_typeof(NEW.input_data -> 'approvers') = 'array')
    EXECUTE FUNCTION ipa_record_asked_approvers();

-- The runs already asked about (their approval steps began waiting before this migration).
INSERT INTO execution_approvers (step_id, user_id, execution_id, asked_at)
SELECT s.id, u.id, s.execution_id, coalesce(s.started_at, s.created_at, now())
  FROM execution_steps s
 CROSS JOIN LATERAL jsonb_array_elements_text(
           CASE WHEN jsonb_typeof(s.input_data -> 'approvers') = 'array'
                THEN s.input_data -> 'approvers' ELSE '[]'::jsonb END) AS listed (id)
  JOIN users u
    ON u.id = CASE WHEN listed.id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                   THEN listed.id::uuid END
 WHERE s.step_type = 'approval'
ON CONFLICT DO NOTHING;

-- Whether the caller was asked to decide a step of run `run`. A function, not a subquery in the
-- policy: as a subquery, its plan (a hashed subplan) was built for every statement that touches
-- a run, owners' and starters' included, which cost the start of a run about 7% (pgbench, the
-- start's statements at `--size small`); a call is planned once per session and, as the last arm
-- of the policy below, made only for rows no other arm admits.
CREATE FUNCTION ipa_was_asked_about(run uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM execution_approvers a
                    WHERE a.user_id = ipa_current_user_id() AND a.execution_id = run);
END
$$;
GRANT EXECUTE ON FUNCTION ipa_was_asked_about(uuid) TO ipa_app;

-- A listed approver sees the run they were asked to decide, and its steps and log lines through
-- their policies (which follow executions), and may write the decision; not its workflow or
-- version. (A policy showing the version too put a second subquery on every read of versions,
-- and the planner then read all workflows to answer the versions' own policy inside an OR on
-- every page of runs.) The arm is the last of the run policy's, so it is reached only when the
-- caller neither started the run nor owns its workflow nor is a superuser. The update's new row
-- stays admitted (PostgreSQL checks an UPDATE's new row against the SELECT policies too): the
-- request rows stay after the decision.
ALTER POLICY executions_follow_workflow_or_trigger ON executions
    USING (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
           OR workflow_id IN (SELECT w.id FROM workflows w WHERE w.created_by = ipa_current_user_id())
           OR ipa_was_asked_about(id))
    WITH CHECK (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
                OR workflow_id IN (SELECT w.id FROM workflows w WHERE w.created_by = ipa_current_user_id())
                OR ipa_was_asked_about(id));
-- The run policy covers every command, so being asked must not let one delete a run: deleting
-- stays with those who could before.
CREATE POLICY executions_deleted_by_their_people ON executions AS RESTRICTIVE FOR DELETE
    USING (triggered_by = ipa_current_user_id() OR ipa_is_superuser()
           OR workflow_id IN (SELECT w.id FROM workflows w WHERE w.created_by = ipa_current_user_id()));
