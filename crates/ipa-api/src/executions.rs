//! Runs of workflows: start one (idempotently), list and read them with their steps and log
//! lines, follow one live as Server-Sent Events, steer it (cancel, pause, resume, retry), decide
//! its approvals, and the per-workflow figures. A run is visible to who started it, to its
//! workflow's owner and to superusers (and, to decide it, to its step's listed approvers);
//! anyone else gets the same 404 as for a missing run.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::stream::{self, Stream};
use ipa_execution::{
    ControlError, Decision, DecisionError, DecisionRequest, Execution, ExecutionFilter,
    ExecutionQueryError, ExecutionStatus, ExecutionStep, IdempotencyKey, IllegalTransition,
    LogEntry, LogFilter, LogLevel, StartError, StartRun, StatsPosition, Steering, StepStatus,
    WorkflowStats,
};
use ipa_kernel::{Actor, ExecutionId, ExecutionStepId, UserId, WorkflowId};
use ipa_store::{EXECUTION_LOGS_CHANNEL, Notification};
use ipa_workflow::VersionNumber;
use poem::web::Data;
use poem::web::sse::Event;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::ApiTags;
use crate::auth::BearerAuth;
use crate::error::{ApiError, ErrorBody};
use crate::paging::{encode_cursor, keyset_cursor, page_request, page_request_with};
use crate::state::AppState;
use crate::state::Executions;

mirror_enum!(
    /// Where a run is: `pending` -> `running` -> `completed` | `failed`; `paused` (on request,
    /// or waiting for an approval) and `cancelled` on the way.
    ExecutionStatusDto as "ExecutionStatus" <=> ExecutionStatus {
        /// Waiting for a worker.
        Pending,
        /// A worker is running it.
        Running,
        /// Stopped between steps on request, or waiting for an approval decision.
        Paused,
        /// Finished successfully.
        Completed,
        /// Finished with an error; can be retried.
        Failed,
        /// Stopped for good on request.
        Cancelled,
    }
);

mirror_enum!(
    /// Where a step is.
    StepStatusDto as "StepStatus" <=> StepStatus {
        /// Not started.
        Pending,
        /// Running (an approval step: waiting for its decision).
        Running,
        /// Finished successfully.
        Completed,
        /// Finished with an error.
        Failed,
        /// Not run: its condition was false.
        Skipped,
    }
);

mirror_enum!(
    /// How severe a log line is, from `debug` to `critical`.
    LogLevelDto as "LogLevel" <=> LogLevel {
        /// Detail for diagnosing.
        Debug,
        /// Normal progress.
        Info,
        /// Something unexpected the run survived (a failed attempt that is retried).
        Warning,
        /// A failure.
        Error,
        /// A failure that needs a person.
        Critical,
    }
);

mirror_enum!(
    /// An approver's answer.
    DecisionDto as "Decision" <=> Decision {
        /// The run goes on.
        Approve,
        /// The step and the run fail.
        Reject,
    }
);

/// A run of a workflow version.
#[derive(Object)]
#[oai(rename = "Execution")]
struct ExecutionView {
    /// The run's id.
    id: Uuid,
    /// The workflow run.
    workflow_id: Uuid,
    /// The version run.
    workflow_version_id: Uuid,
    /// That version's number.
    version_number: Option<i32>,
    /// Who started it.
    triggered_by: Uuid,
    /// Where it is.
    status: ExecutionStatusDto,
    /// The approval step a paused run waits on.
    waiting_step_id: Option<Uuid>,
    /// The input it was started with.
    input: Value,
    /// Once completed: the output of every completed step, by step name.
    output: Option<Value>,
    /// Why it failed.
    error: Option<String>,
    /// When a worker first started it.
    started_at: Option<OffsetDateTime>,
    /// When it finished.
    completed_at: Option<OffsetDateTime>,
    /// How long it took, in milliseconds.
    duration_ms: Option<i64>,
    /// How many times it was retried.
    retry_count: i32,
    /// How many times it was picked up again after its worker was lost.
    recoveries: i32,
    /// When it was started.
    created_at: OffsetDateTime,
    /// When it last changed.
    updated_at: OffsetDateTime,
}

impl From<Execution> for ExecutionView {
    fn from(execution: Execution) -> Self {
        Self {
            id: execution.id.as_uuid(),
            workflow_id: execution.workflow_id.as_uuid(),
            workflow_version_id: execution.workflow_version_id.as_uuid(),
            version_number: execution.version_number.map(|number| number.as_i32()),
            triggered_by: execution.triggered_by.as_uuid(),
            status: execution.state.status.into(),
            waiting_step_id: execution.state.awaiting.map(|id| id.as_uuid()),
            input: execution.input,
            output: execution.output,
            error: execution.error,
            started_at: execution.started_at,
            completed_at: execution.completed_at,
            duration_ms: execution.duration_ms,
            retry_count: execution.retry_count,
            recoveries: execution.recoveries,
            created_at: execution.created_at,
            updated_at: execution.updated_at,
        }
    }
}

/// One step of a run.
#[derive(Object)]
#[oai(rename = "ExecutionStep")]
struct StepView {
    /// The step's id (for approval decisions).
    id: Uuid,
    /// Its name in the definition.
    name: String,
    /// Its position, from 0.
    index: i32,
    /// `webhook`, `approval` or `agent`.
    #[oai(rename = "type")]
    step_type: String,
    /// Where it is.
    status: StepStatusDto,
    /// What it was given: a webhook's rendered request (header names only), an approval's
    /// message and approvers.
    input: Option<Value>,
    /// What it produced: a webhook's response body, an approval's decision.
    output: Option<Value>,
    /// Why it failed.
    error: Option<String>,
    /// When it (last) started.
    started_at: Option<OffsetDateTime>,
    /// When it finished.
    completed_at: Option<OffsetDateTime>,
    /// How long it took, in milliseconds.
    duration_ms: Option<i64>,
    /// Attempts beyond the first.
    retry_count: i32,
}

impl From<ExecutionStep> for StepView {
    fn from(step: ExecutionStep) -> Self {
        Self {
            id: step.id.as_uuid(),
            name: step.name,
            index: step.index,
            step_type: step.kind.as_str().to_owned(),
            status: step.status.into(),
            input: step.input,
            output: step.output,
            error: step.error,
            started_at: step.started_at,
            completed_at: step.completed_at,
            duration_ms: step.duration_ms,
            retry_count: step.retry_count,
        }
    }
}

/// A run with its steps.
#[derive(Object)]
#[oai(rename = "ExecutionDetail")]
struct ExecutionDetail {
    /// The run.
    #[oai(flatten)]
    execution: ExecutionView,
    /// Its steps, in order (created with the run, so the plan shows before it executes).
    steps: Vec<StepView>,
}

/// A log line of a run. Status changes are log lines too: their `context.event` is `execution`
/// or `step`, with the new `status`.
#[derive(Object)]
#[oai(rename = "ExecutionLog")]
struct LogView {
    /// Its id: increasing in the order the run's lines were written (the event id of the event
    /// stream).
    id: i64,
    /// The run.
    execution_id: Uuid,
    /// The step it is about.
    step_id: Option<Uuid>,
    /// Its severity.
    level: LogLevelDto,
    /// What happened.
    message: String,
    /// Structured detail: attempt numbers, status codes, durations, events.
    context: Value,
    /// When.
    created_at: OffsetDateTime,
}

impl From<LogEntry> for LogView {
    fn from(line: LogEntry) -> Self {
        Self {
            id: line.id,
            execution_id: line.execution_id.as_uuid(),
            step_id: line.step_id.map(|id| id.as_uuid()),
            level: line.level.into(),
            message: line.message,
            context: line.context,
            created_at: line.created_at,
        }
    }
}

/// A page of runs.
#[derive(Object)]
#[oai(rename = "ExecutionPage")]
struct ExecutionPage {
    /// The runs, newest first.
    items: Vec<ExecutionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// A page of log lines.
#[derive(Object)]
#[oai(rename = "ExecutionLogPage")]
struct LogPageView {
    /// The lines, oldest first.
    items: Vec<LogView>,
    /// Pass as `cursor` for the next page; absent when there are no more lines yet.
    next_cursor: Option<String>,
}

/// What to run.
#[derive(Object)]
#[oai(rename = "StartExecutionRequest")]
struct StartRequest {
    /// The run's input, a JSON object available to templates as `input`. Default `{}`.
    input: Option<Value>,
    /// The version to run; default: the workflow's current version.
    version_number: Option<i32>,
}

/// A decision on an approval step.
#[derive(Object)]
#[oai(rename = "ApprovalDecisionRequest")]
struct DecisionBody {
    /// `approve` lets the run go on; `reject` fails the step and the run.
    decision: DecisionDto,
    /// Why (kept in the step's output and the audit log), at most 10,000 characters.
    comment: Option<String>,
}

/// A workflow's run figures.
#[derive(Object)]
#[oai(rename = "WorkflowStats")]
struct StatsView {
    /// The workflow.
    workflow_id: Uuid,
    /// Its name.
    workflow_name: String,
    /// Runs counted.
    total_executions: i64,
    /// Of which completed.
    successful_count: i64,
    /// Of which failed.
    failed_count: i64,
    /// Mean duration of finished runs, in milliseconds.
    avg_duration_ms: Option<f64>,
}

impl From<WorkflowStats> for StatsView {
    fn from(stats: WorkflowStats) -> Self {
        Self {
            workflow_id: stats.workflow_id.as_uuid(),
            workflow_name: stats.workflow_name,
            total_executions: stats.total_executions,
            successful_count: stats.successful_count,
            failed_count: stats.failed_count,
            avg_duration_ms: stats.avg_duration_ms,
        }
    }
}

#[derive(ApiResponse)]
enum StartedExecution {
    /// The run was started.
    #[oai(status = 201)]
    Created(Json<ExecutionView>),
    /// The run an earlier request with the same `Idempotency-Key` and body started.
    #[oai(status = 200)]
    Replayed(Json<ExecutionView>),
}

#[derive(ApiResponse)]
enum OneExecution {
    /// The run.
    #[oai(status = 200)]
    Ok(Json<ExecutionView>),
}

#[derive(ApiResponse)]
enum ExecutionWithSteps {
    /// The run and its steps.
    #[oai(status = 200)]
    Ok(Json<ExecutionDetail>),
}

#[derive(ApiResponse)]
enum ExecutionList {
    /// A page of runs.
    #[oai(status = 200)]
    Page(Json<ExecutionPage>),
}

#[derive(ApiResponse)]
enum LogList {
    /// A page of log lines.
    #[oai(status = 200)]
    Page(Json<LogPageView>),
}

#[derive(ApiResponse)]
enum Events {
    /// The run's events, oldest first: each has the log line's id as its `id`, `execution`,
    /// `step` or `log` as its type, and the log line as its data. The stream ends after the
    /// run's final status.
    #[oai(status = 200)]
    Stream(EventStream<BoxedEvents>),
}

/// One page of workflows' run figures.
#[derive(Object)]
struct StatsPage {
    /// The figures, by workflow name, then id.
    items: Vec<StatsView>,
    /// Pass as `cursor` to read the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum StatsList {
    /// A page of the figures of the workflows the caller sees.
    #[oai(status = 200)]
    Page(Json<StatsPage>),
}

type BoxedEvents = std::pin::Pin<Box<dyn Stream<Item = LogView> + Send>>;

/// The longest approval comment accepted.
pub(crate) const MAX_COMMENT_CHARS: usize = 10_000;

/// How often an event stream looks for new lines when no notification comes.
const EVENTS_POLL: Duration = Duration::from_secs(1);

/// Lines an event stream reads at once.
const EVENTS_BATCH: u16 = 200;

fn illegal(error: &IllegalTransition) -> ApiError {
    let mut body = ErrorBody::new("invalid_transition", error.message());
    body.current_status = Some(error.current.status.as_str().to_owned());
    ApiError::Conflict(Json(body))
}

fn query_error(error: ExecutionQueryError) -> ApiError {
    match error {
        ExecutionQueryError::NotFound => ApiError::not_found("No execution with this id."),
        ExecutionQueryError::Storage(error) => ApiError::storage(&error),
    }
}

fn control_error(error: ControlError) -> ApiError {
    match error {
        ControlError::NotFound => ApiError::not_found("No execution with this id."),
        ControlError::Illegal(error) => illegal(&error),
        ControlError::Storage(error) => ApiError::storage(&error),
    }
}

/// Executions and their live events.
pub struct ExecutionsApi;

#[OpenApi(tag = "ApiTags::Executions")]
impl ExecutionsApi {
    /// Starts a run of the workflow (which must be active), of its current version unless
    /// `version_number` says otherwise. With an `Idempotency-Key`, repeating the request returns
    /// the same run (200) instead of starting another; the same key with a different body is
    /// `422 idempotency_key_reused`. Recorded in the audit log as `execute`.
    #[oai(
        path = "/workflows/:id/executions",
        method = "post",
        operation_id = "startExecution"
    )]
    async fn start(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The workflow's id.
        id: Path<Uuid>,
        /// A key of 1 to 255 visible ASCII characters that makes the request safe to repeat.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: Json<StartRequest>,
    ) -> Result<StartedExecution, ApiError> {
        let body = body.0;
        let idempotency_key = idempotency_key
            .0
            .map(|raw| {
                IdempotencyKey::parse(&raw).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "`Idempotency-Key` must be 1 to 255 visible ASCII characters (no spaces).",
                    )
                })
            })
            .transpose()?;
        let input = match body.input {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(input)) => input,
            Some(_) => {
                return Err(ApiError::unprocessable(
                    "invalid_field",
                    "`input` must be a JSON object; its members are available to templates as \
                     `input.<name>`.",
                    "/input",
                ));
            }
        };
        let version_number = match body.version_number {
            None => None,
            Some(number) => Some(
                u32::try_from(number)
                    .ok()
                    .and_then(VersionNumber::new)
                    .ok_or_else(|| {
                        ApiError::unprocessable(
                            "invalid_field",
                            "`version_number` must be 1 or more.",
                            "/version_number",
                        )
                    })?,
            ),
        };
        let request = StartRun {
            input,
            version_number,
            idempotency_key,
        };
        let started = state
            .executions
            .start(&auth.0.actor(), WorkflowId::from_uuid(id.0), &request)
            .await
            .map_err(|error| match error {
                StartError::WorkflowNotFound => ApiError::not_found("No workflow with this id."),
                StartError::WorkflowNotActive(_) => {
                    ApiError::conflict("workflow_not_active", error.to_string(), None)
                }
                StartError::NoCurrentVersion => {
                    ApiError::conflict("no_current_version", error.to_string(), None)
                }
                StartError::VersionNotFound(_) => ApiError::unprocessable(
                    "version_not_found",
                    error.to_string(),
                    "/version_number",
                ),
                StartError::IdempotencyMismatch => {
                    ApiError::unprocessable("idempotency_key_reused", error.to_string(), "")
                }
                StartError::Storage(error) => ApiError::storage(&error),
            })?;
        let view = ExecutionView::from(started.execution);
        Ok(if started.replayed {
            StartedExecution::Replayed(Json(view))
        } else {
            StartedExecution::Created(Json(view))
        })
    }

    /// Lists the runs the caller sees, newest first. Every filter given must hold.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/executions", method = "get", operation_id = "listExecutions")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only runs of this workflow.
        workflow_id: Query<Option<Uuid>>,
        /// Only runs in this status.
        status: Query<Option<ExecutionStatusDto>>,
        /// Only runs started by this user.
        triggered_by: Query<Option<Uuid>>,
        /// Only runs started at or after this time (RFC 3339).
        created_after: Query<Option<OffsetDateTime>>,
        /// Only runs started before this time (RFC 3339).
        created_before: Query<Option<OffsetDateTime>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<ExecutionList, ApiError> {
        let page = page_request(limit.0, cursor.0)?;
        let filter = ExecutionFilter {
            workflow: workflow_id.0.map(WorkflowId::from_uuid),
            status: status.0.map(ExecutionStatus::from),
            triggered_by: triggered_by.0.map(UserId::from_uuid),
            created_from: created_after.0,
            created_before: created_before.0,
        };
        let executions = state
            .executions
            .list(&auth.0.actor(), &filter, page)
            .await
            .map_err(|error| ApiError::storage(&error))?;
        Ok(ExecutionList::Page(Json(ExecutionPage {
            next_cursor: executions.next.map(keyset_cursor),
            items: executions
                .items
                .into_iter()
                .map(ExecutionView::from)
                .collect(),
        })))
    }

    /// One run, with its steps.
    #[oai(
        path = "/executions/:id",
        method = "get",
        operation_id = "getExecution"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The run's id.
        id: Path<Uuid>,
    ) -> Result<ExecutionWithSteps, ApiError> {
        let (execution, steps) = state
            .executions
            .get(&auth.0.actor(), ExecutionId::from_uuid(id.0))
            .await
            .map_err(query_error)?;
        Ok(ExecutionWithSteps::Ok(Json(ExecutionDetail {
            execution: execution.into(),
            steps: steps.into_iter().map(StepView::from).collect(),
        })))
    }

    /// A run's log lines, oldest first.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/executions/:id/logs",
        method = "get",
        operation_id = "listExecutionLogs"
    )]
    async fn logs(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The run's id.
        id: Path<Uuid>,
        /// Only lines at this level or more severe.
        min_level: Query<Option<LogLevelDto>>,
        /// Only lines about this step.
        step_id: Query<Option<Uuid>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<LogList, ApiError> {
        let page = page_request_with(limit.0, cursor.0, |text| text.parse::<i64>().ok())?;
        let filter = LogFilter {
            min_level: min_level.0.map(LogLevel::from),
            step: step_id.0.map(ExecutionStepId::from_uuid),
        };
        let lines = state
            .executions
            .logs(&auth.0.actor(), ExecutionId::from_uuid(id.0), filter, page)
            .await
            .map_err(query_error)?;
        Ok(LogList::Page(Json(LogPageView {
            next_cursor: lines.next.map(|id| encode_cursor(&id.to_string())),
            items: lines.items.into_iter().map(LogView::from).collect(),
        })))
    }

    /// The run's events as they happen (Server-Sent Events): status changes of the run and its
    /// steps, and log lines. A client that reconnects with `Last-Event-ID` gets every event after
    /// that one; a new client gets the run's history first. The stream ends when the run ends.
    #[oai(
        path = "/executions/:id/events",
        method = "get",
        operation_id = "streamExecutionEvents"
    )]
    async fn events(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The run's id.
        id: Path<Uuid>,
        /// The id of the last event received, to resume after it.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<i64>>,
    ) -> Result<Events, ApiError> {
        let actor = auth.0.actor();
        let id = ExecutionId::from_uuid(id.0);
        // Fail before the stream starts for a run the caller cannot see.
        state
            .executions
            .events(&actor, id, i64::MAX, 1)
            .await
            .map_err(query_error)?;
        let follower = Follower {
            executions: state.executions.clone(),
            actor,
            id,
            after: last_event_id.0.unwrap_or(0),
            buffered: VecDeque::new(),
            finished: false,
            wake: state.notifications.subscribe(),
        };
        let stream: BoxedEvents = Box::pin(stream::unfold(follower, Follower::next));
        Ok(Events::Stream(
            EventStream::new(stream)
                .keep_alive(Duration::from_secs(15))
                .to_event(|line| {
                    let kind = line
                        .context
                        .get("event")
                        .and_then(Value::as_str)
                        .unwrap_or("log")
                        .to_owned();
                    // The data is the log line exactly as `GET /executions/{id}/logs` shows it.
                    Event::message(line.to_json_string())
                        .id(line.id.to_string())
                        .event_type(kind)
                }),
        ))
    }

    /// Cancels a run that has not finished; the step in flight is interrupted. Recorded in the
    /// audit log as `cancel`.
    #[oai(
        path = "/executions/:id/cancel",
        method = "post",
        operation_id = "cancelExecution"
    )]
    async fn cancel(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The run's id.
        id: Path<Uuid>,
    ) -> Result<OneExecution, ApiError> {
        control(&state, &auth.0.actor(), id.0, Steering::Cancel).await
    }

    /// Pauses a pending or running run: a running one stops after the step in flight.
    #[oai(
        path = "/executions/:id/pause",
        method = "post",
        operation_id = "pauseExecution"
    )]
    async fn pause(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The run's id.
        id: Path<Uuid>,
    ) -> Result<OneExecution, ApiError> {
        control(&state, &auth.0.actor(), id.0, Steering::Pause).await
    }

    /// Resumes a run paused on request (a run waiting for an approval needs a decision instead).
    #[oai(
        path = "/executions/:id/resume",
        method = "post",
        operation_id = "resumeExecution"
    )]
    async fn resume(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The run's id.
        id: Path<Uuid>,
    ) -> Result<OneExecution, ApiError> {
        control(&state, &auth.0.actor(), id.0, Steering::Resume).await
    }

    /// Retries a failed run from its failed step (completed steps are not run again);
    /// `retry_count` goes up by one.
    #[oai(
        path = "/executions/:id/retry",
        method = "post",
        operation_id = "retryExecution"
    )]
    async fn retry(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The run's id.
        id: Path<Uuid>,
    ) -> Result<OneExecution, ApiError> {
        control(&state, &auth.0.actor(), id.0, Steering::Retry).await
    }

    /// Decides the approval step the run waits on: `approve` lets it go on, `reject` fails it.
    /// The step's listed approvers decide; when it lists none, the workflow's owner or a
    /// superuser. Recorded in the audit log.
    #[oai(
        path = "/executions/:id/steps/:step_id/decision",
        method = "post",
        operation_id = "decideApproval"
    )]
    async fn decide(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The run's id.
        id: Path<Uuid>,
        /// The approval step's id.
        step_id: Path<Uuid>,
        body: Json<DecisionBody>,
    ) -> Result<OneExecution, ApiError> {
        let body = body.0;
        let comment = body
            .comment
            .map(|comment| comment.trim().to_owned())
            .filter(|comment| !comment.is_empty());
        if comment
            .as_ref()
            .is_some_and(|comment| comment.chars().count() > MAX_COMMENT_CHARS)
        {
            return Err(ApiError::unprocessable(
                "invalid_field",
                format!("`comment` is at most {MAX_COMMENT_CHARS} characters."),
                "/comment",
            ));
        }
        let decision = DecisionRequest {
            decision: body.decision.into(),
            comment,
        };
        let execution = state
            .executions
            .decide(
                &auth.0.actor(),
                ExecutionId::from_uuid(id.0),
                ExecutionStepId::from_uuid(step_id.0),
                &decision,
            )
            .await
            .map_err(|error| match error {
                DecisionError::NotFound => ApiError::not_found("No execution with this id."),
                DecisionError::StepNotFound => ApiError::NotFound(Json(ErrorBody::new(
                    "step_not_found",
                    "The execution has no step with this id.",
                ))),
                DecisionError::NotAnApproval(_) => {
                    ApiError::conflict("not_an_approval", error.to_string(), None)
                }
                DecisionError::NotAnApprover => ApiError::forbidden(
                    "You may not decide this step: it lists its approvers and you are not one \
                     of them (or, listing none, only the workflow's owner or a superuser may).",
                ),
                DecisionError::Illegal(error) => illegal(&error),
                DecisionError::Storage(error) => ApiError::storage(&error),
            })?;
        Ok(OneExecution::Ok(Json(execution.into())))
    }

    /// Run figures of the caller's workflows (a superuser's: every workflow's), by workflow name,
    /// one page at a time, from a view refreshed every minute: counts may lag behind the newest
    /// runs.
    #[oai(
        path = "/stats/workflows",
        method = "get",
        operation_id = "workflowStats"
    )]
    async fn stats(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<StatsList, ApiError> {
        let page = page_request_with(limit.0, cursor.0, StatsPosition::from_text)?;
        let stats = state
            .executions
            .stats(&auth.0.actor(), page)
            .await
            .map_err(|error| ApiError::storage(&error))?;
        let next_cursor = stats
            .next
            .map(|position| encode_cursor(&position.to_text()));
        Ok(StatsList::Page(Json(StatsPage {
            items: stats.items.into_iter().map(StatsView::from).collect(),
            next_cursor,
        })))
    }
}

async fn control(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    steering: Steering,
) -> Result<OneExecution, ApiError> {
    let execution = state
        .executions
        .steer(actor, ExecutionId::from_uuid(id), steering)
        .await
        .map_err(control_error)?;
    Ok(OneExecution::Ok(Json(execution.into())))
}

/// Follows one run's log lines for an event stream.
struct Follower {
    executions: std::sync::Arc<Executions>,
    actor: Actor,
    id: ExecutionId,
    after: i64,
    buffered: VecDeque<LogEntry>,
    finished: bool,
    wake: broadcast::Receiver<Notification>,
}

impl Follower {
    /// The next event, waiting for it; `None` once the run has ended and every line was sent
    /// (or the run can no longer be read).
    async fn next(mut self) -> Option<(LogView, Self)> {
        loop {
            if let Some(line) = self.buffered.pop_front() {
                return Some((line.into(), self));
            }
            if self.finished {
                return None;
            }
            let (status, lines) = match self
                .executions
                .events(&self.actor, self.id, self.after, EVENTS_BATCH)
                .await
            {
                Ok(read) => read,
                // The end of the stream means the run ended: while the database cannot be
                // reached, keep the stream open (keep-alives go on) and read again.
                Err(ExecutionQueryError::Storage(error)) if error.is_unavailable() => {
                    tracing::debug!(execution = %self.id.as_uuid(), %error, "an event stream waits for the database");
                    self.wait().await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(execution = %self.id.as_uuid(), %error, "an event stream stopped");
                    return None;
                }
            };
            let full = lines.len() == usize::from(EVENTS_BATCH);
            if let Some(last) = lines.last() {
                self.after = last.id;
            }
            // The status was read before the lines: once it is final, every line is in.
            self.finished = status.is_finished() && !full;
            if lines.is_empty() && !self.finished {
                self.wait().await;
            }
            self.buffered.extend(lines);
        }
    }

    /// Waits for a notification about this run, or the poll interval.
    async fn wait(&mut self) {
        let id = self.id.as_uuid().to_string();
        let notified = async {
            loop {
                match self.wake.recv().await {
                    Ok(notification)
                        if notification.channel == EXECUTION_LOGS_CHANNEL
                            && notification.payload == id =>
                    {
                        return;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(EVENTS_POLL, notified).await;
    }
}
