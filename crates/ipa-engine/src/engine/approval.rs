//! Approval steps: opening one renders its message, records who may decide, and releases the
//! run to wait for a decision (until the step's time limit, when it has one). The decision
//! itself is the API's; a run whose approval timed out is claimed again and failed by
//! [`Engine::open_run`].

use ipa_agent::AgentRepository;
use ipa_execution::{
    ExecutionStep, NewLogLine, RunChange, RunJournal, RunOutcome, StepAction, StepChange,
    StepStatus, step_event,
};
use ipa_workflow::definition::{ApprovalStep, Step};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Engine, Opening, start_and_fail};

impl<J: RunJournal, A: AgentRepository> Engine<J, A> {
    /// Starts an approval step: the run waits for a decision.
    pub(super) fn open_approval(
        &self,
        index: usize,
        step: &Step,
        row: &ExecutionStep,
        approval: &ApprovalStep,
        context: &Value,
        mut logs: Vec<NewLogLine>,
    ) -> Opening {
        let message = match self.templates.render(&approval.message.source, context) {
            Ok(message) => message,
            Err(error) => {
                let message = format!("its message could not be rendered: {error}");
                return start_and_fail(index, row, message, logs);
            }
        };
        let approvers: Vec<_> = approval.approvers.iter().map(|id| id.as_uuid()).collect();
        let decided_by = if approvers.is_empty() {
            "the workflow's owner or a superuser"
        } else {
            "a listed approver"
        };
        let deadline = step.timeout_ms.map(|ms| {
            OffsetDateTime::now_utc()
                + time::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
        });
        logs.push(step_event(
            row,
            StepStatus::Running,
            format!("Step '{}' waits for a decision by {decided_by}", row.name),
            json!({"message": message, "approvers": approvers}),
        ));
        let change = StepChange {
            input: Some(json!({"message": message, "approvers": approvers})),
            ..StepChange::new(row.id, StepAction::Start, 1)
        };
        Opening::stop(RunChange {
            step: Some(change),
            outcome: Some(RunOutcome::AwaitApproval {
                step: row.id,
                deadline,
            }),
            logs,
        })
    }
}
