//! What the execution context keeps and shows: runs, their steps and log lines, the requests that
//! start and steer them, and the filters that find them.

use ipa_kernel::{ExecutionId, ExecutionStepId, Keyset, UserId, WorkflowId, WorkflowVersionId};
use ipa_workflow::VersionNumber;
use serde_json::Value;
use time::OffsetDateTime;

use crate::state::RunState;
use crate::{ExecutionStatus, LogLevel, StepKind, StepStatus};

/// One run of a workflow version.
#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    /// Its id.
    pub id: ExecutionId,
    /// The workflow run.
    pub workflow_id: WorkflowId,
    /// The version run.
    pub workflow_version_id: WorkflowVersionId,
    /// That version's number (`None` when the version is not visible to the reader).
    pub version_number: Option<VersionNumber>,
    /// Who started it.
    pub triggered_by: UserId,
    /// Where it is.
    pub state: RunState,
    /// The input it was started with.
    pub input: Value,
    /// The output of its last completed step, once it has completed.
    pub output: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// When a worker first started it.
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    pub completed_at: Option<OffsetDateTime>,
    /// How long it took, start to finish.
    pub duration_ms: Option<i64>,
    /// How many times a person retried it.
    pub retry_count: i32,
    /// How many times it was picked up again after its worker was lost.
    pub recoveries: i32,
    /// When it was started.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Execution {
    /// Where a newest-first list continues after this run.
    pub fn keyset(&self) -> Keyset {
        Keyset::new(self.created_at, self.id.as_uuid())
    }
}

/// One step of a run, created with the run so the plan is visible before it executes.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionStep {
    /// Its id.
    pub id: ExecutionStepId,
    /// Its run.
    pub execution_id: ExecutionId,
    /// The step's name in the definition.
    pub name: String,
    /// Its position, from 0.
    pub index: i32,
    /// What it does.
    pub kind: StepKind,
    /// Where it is.
    pub status: StepStatus,
    /// What it was given (the rendered request, prompt or approval message).
    pub input: Option<Value>,
    /// What it produced.
    pub output: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it (last) started.
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    pub completed_at: Option<OffsetDateTime>,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// Attempts beyond the first.
    pub retry_count: i32,
}

/// One log line of a run. Log lines are also the run's event stream: status changes of the run
/// and of its steps are log lines too, with an `event` in their context.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Its id: increasing in the order a run's lines were written.
    pub id: i64,
    /// Its run.
    pub execution_id: ExecutionId,
    /// Its step, if it is about one.
    pub step_id: Option<ExecutionStepId>,
    /// Its severity.
    pub level: LogLevel,
    /// What happened.
    pub message: String,
    /// Structured detail.
    pub context: Value,
    /// When.
    pub created_at: OffsetDateTime,
}

/// A log line to write.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLogLine {
    /// Its step, if it is about one.
    pub step_id: Option<ExecutionStepId>,
    /// Its severity.
    pub level: LogLevel,
    /// What happened.
    pub message: String,
    /// Structured detail (never a secret).
    pub context: Value,
}

impl NewLogLine {
    /// A line at `level` about the run as a whole.
    pub fn run(level: LogLevel, message: impl Into<String>, context: Value) -> Self {
        Self {
            step_id: None,
            level,
            message: message.into(),
            context,
        }
    }

    /// A line at `level` about `step`.
    pub fn step(
        step: ExecutionStepId,
        level: LogLevel,
        message: impl Into<String>,
        context: Value,
    ) -> Self {
        Self {
            step_id: Some(step),
            level,
            message: message.into(),
            context,
        }
    }
}

/// The `event` a status change's log line carries in its context: the run's own changes.
pub const RUN_EVENT: &str = "execution";
/// The `event` of a step's status change.
pub const STEP_EVENT: &str = "step";

/// The line that records the run becoming `status`.
pub fn run_event(status: ExecutionStatus, message: impl Into<String>, detail: Value) -> NewLogLine {
    let level = match status {
        ExecutionStatus::Failed => LogLevel::Error,
        _ => LogLevel::Info,
    };
    let mut context = serde_json::json!({"event": RUN_EVENT, "status": status.as_str()});
    merge(&mut context, detail);
    NewLogLine::run(level, message, context)
}

/// The line that records `step` becoming `status`.
pub fn step_event(
    step: &ExecutionStep,
    status: StepStatus,
    message: impl Into<String>,
    detail: Value,
) -> NewLogLine {
    let level = match status {
        StepStatus::Failed => LogLevel::Error,
        _ => LogLevel::Info,
    };
    let mut context = serde_json::json!({
        "event": STEP_EVENT,
        "status": status.as_str(),
        "step": step.name,
        "step_index": step.index,
    });
    merge(&mut context, detail);
    NewLogLine::step(step.id, level, message, context)
}

fn merge(into: &mut Value, detail: Value) {
    if let (Value::Object(into), Value::Object(detail)) = (into, detail) {
        for (key, value) in detail {
            into.entry(key).or_insert(value);
        }
    }
}

/// A client's key that makes starting a run safe to repeat: 1 to 255 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key, if `raw` is one.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = (1..=255).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| Self(raw.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request to start a run.
#[derive(Clone, Debug, PartialEq)]
pub struct StartRun {
    /// The run's input (a JSON object).
    pub input: serde_json::Map<String, Value>,
    /// The version to run; the workflow's current version when absent.
    pub version_number: Option<VersionNumber>,
    /// Makes the request safe to repeat.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A started run, and whether an earlier request with the same idempotency key started it.
#[derive(Clone, Debug, PartialEq)]
pub struct Started {
    /// The run.
    pub execution: Execution,
    /// `true` when this is the run an earlier request with the same key started.
    pub replayed: bool,
}

ipa_kernel::label_enum!(
    /// An approver's answer.
    Decision, "decision" {
        /// The run goes on.
        Approve => "approve",
        /// The run fails.
        Reject => "reject",
    }
);

/// A decision on an approval step.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionRequest {
    /// Approve or reject.
    pub decision: Decision,
    /// Why (shown in the step's output and the audit row).
    pub comment: Option<String>,
}

/// Whether `user` (a superuser or not) may decide an approval step whose listed approvers are
/// `approvers`, in a workflow owned by `owner` (when known to the caller): the listed approvers,
/// else the owner or a superuser.
pub fn may_decide(
    user: UserId,
    is_superuser: bool,
    approvers: &[UserId],
    owner: Option<UserId>,
) -> bool {
    if approvers.is_empty() {
        owner == Some(user) || is_superuser
    } else {
        approvers.contains(&user)
    }
}

/// Which runs a list shows; every filter is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionFilter {
    /// Runs of this workflow.
    pub workflow: Option<WorkflowId>,
    /// Runs in this status.
    pub status: Option<ExecutionStatus>,
    /// Runs started by this user.
    pub triggered_by: Option<UserId>,
    /// Runs started at or after this time.
    pub created_from: Option<OffsetDateTime>,
    /// Runs started before this time.
    pub created_before: Option<OffsetDateTime>,
}

/// Which log lines a page shows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogFilter {
    /// Lines at this level or more severe.
    pub min_level: Option<LogLevel>,
    /// Lines about this step.
    pub step: Option<ExecutionStepId>,
}

/// A workflow's run figures, from the periodically refreshed statistics view.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowStats {
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// Its name.
    pub workflow_name: String,
    /// Runs counted.
    pub total_executions: i64,
    /// Of which completed.
    pub successful_count: i64,
    /// Of which failed.
    pub failed_count: i64,
    /// Mean duration of the runs that finished, in milliseconds.
    pub avg_duration_ms: Option<f64>,
}

/// Where a page of workflow figures ends. The figures are listed by workflow name, then by id
/// (names are not unique), and a page continues after this position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsPosition {
    workflow_name: String,
    workflow_id: WorkflowId,
}

impl StatsPosition {
    /// The position of `stats`' row.
    pub fn of(stats: &WorkflowStats) -> Self {
        Self {
            workflow_name: stats.workflow_name.clone(),
            workflow_id: stats.workflow_id,
        }
    }

    /// The workflow's name.
    pub fn workflow_name(&self) -> &str {
        &self.workflow_name
    }

    /// The workflow's id.
    pub fn workflow_id(&self) -> WorkflowId {
        self.workflow_id
    }

    /// A compact text form (`<id without hyphens>.<name>`), which the API wraps into an opaque
    /// cursor. The id comes first because it has a fixed length and no dot.
    pub fn to_text(&self) -> String {
        format!(
            "{}.{}",
            self.workflow_id.as_uuid().simple(),
            self.workflow_name
        )
    }

    /// Reads [`StatsPosition::to_text`]'s form; `None` for anything else, including a name longer
    /// than a workflow's name may be.
    pub fn from_text(text: &str) -> Option<Self> {
        let (id, name) = text.split_once('.')?;
        if id.len() != 32 || name.chars().count() > STATS_NAME_MAX_CHARS {
            return None;
        }
        let id = uuid::Uuid::try_parse(id).ok()?;
        Some(Self {
            workflow_name: name.to_owned(),
            workflow_id: WorkflowId::from_uuid(id),
        })
    }
}

/// The longest workflow name (`workflows.name` is `VARCHAR(255)`), which bounds a position.
const STATS_NAME_MAX_CHARS: usize = 255;

#[cfg(test)]
mod tests {

    #[test]
    fn stats_positions_round_trip_through_text() {
        let position = StatsPosition {
            workflow_name: "Refunds. Q3 (EU)".to_owned(),
            workflow_id: WorkflowId::new_random(),
        };
        assert_eq!(
            StatsPosition::from_text(&position.to_text()),
            Some(position)
        );
        let long = format!("{}.{}", uuid::Uuid::nil().simple(), "x".repeat(256));
        for junk in [
            "",
            ".",
            "abc.def",
            "not-a-uuid-at-all-but-32-chars-x.name",
            &long,
        ] {
            assert_eq!(StatsPosition::from_text(junk), None, "{junk}");
        }
    }
    use super::*;

    #[test]
    fn idempotency_keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::parse("order-42/refund").is_some());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse("with space").is_none());
        assert!(IdempotencyKey::parse("é").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
    }

    #[test]
    fn listed_approvers_decide_else_the_owner_or_a_superuser() {
        let (owner, approver, other) = (
            UserId::new_random(),
            UserId::new_random(),
            UserId::new_random(),
        );
        let known = Some(owner);
        assert!(may_decide(owner, false, &[], known));
        assert!(may_decide(other, true, &[], known));
        assert!(!may_decide(other, false, &[], known));
        assert!(!may_decide(other, false, &[], None));
        assert!(may_decide(other, true, &[], None));
        assert!(may_decide(approver, false, &[approver], known));
        assert!(may_decide(approver, false, &[approver], None));
        assert!(!may_decide(owner, false, &[approver], known));
        assert!(!may_decide(other, true, &[approver], known));
    }

    #[test]
    fn event_lines_carry_their_event() {
        let line = run_event(
            ExecutionStatus::Failed,
            "failed",
            serde_json::json!({"error": "x"}),
        );
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.context["event"], RUN_EVENT);
        assert_eq!(line.context["status"], "failed");
        assert_eq!(line.context["error"], "x");
    }
}
