//! The execution service: what people do with runs (start, read, follow, steer, decide an
//! approval) goes through here. Generic over the [`ExecutionRepository`] port; the rules live in
//! the domain ([`crate::start`], [`crate::state`], [`crate::approval`]) and storage applies them
//! under its locks, so the same rules hold whatever keeps the runs.

use ipa_kernel::{
    Actor, ExecutionId, ExecutionStepId, Page, PageRequest, StorageError, WorkflowId,
};

use crate::ExecutionStatus;
use crate::error::{ControlError, DecisionError, ExecutionQueryError, StartError};
use crate::model::{
    DecisionRequest, Execution, ExecutionFilter, ExecutionStep, LogEntry, LogFilter, StartRun,
    Started, StatsPosition, WorkflowStats,
};
use crate::ports::{ExecutionRepository, LogPage};
use crate::state::Steering;

/// Run operations over a repository `R`.
#[derive(Debug)]
pub struct ExecutionService<R> {
    repository: R,
}

impl<R: ExecutionRepository> ExecutionService<R> {
    /// A service over this repository.
    pub fn new(repository: R) -> Self {
        Self { repository }
    }

    /// The repository, for what only its adapter offers (query plans, for operators).
    pub fn repository(&self) -> &R {
        &self.repository
    }

    /// Starts a run of an active workflow's current (or named) version; with an idempotency key
    /// used before, the run that request started.
    pub async fn start(
        &self,
        actor: &Actor,
        workflow: WorkflowId,
        request: &StartRun,
    ) -> Result<Started, StartError> {
        self.repository.start(actor, workflow, request).await
    }

    /// The runs the actor sees that match `filter`, newest first.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, StorageError> {
        self.repository.list(actor, filter, page).await
    }

    /// A run the actor sees, with its steps in order.
    pub async fn get(
        &self,
        actor: &Actor,
        id: ExecutionId,
    ) -> Result<(Execution, Vec<ExecutionStep>), ExecutionQueryError> {
        self.repository.get(actor, id).await
    }

    /// A run's log lines, oldest first.
    pub async fn logs(
        &self,
        actor: &Actor,
        id: ExecutionId,
        filter: LogFilter,
        page: PageRequest<i64>,
    ) -> Result<LogPage, ExecutionQueryError> {
        self.repository.logs(actor, id, filter, page).await
    }

    /// A run's status and the lines after `after`, for following it live.
    pub async fn events(
        &self,
        actor: &Actor,
        id: ExecutionId,
        after: i64,
        limit: u16,
    ) -> Result<(ExecutionStatus, Vec<LogEntry>), ExecutionQueryError> {
        self.repository.events(actor, id, after, limit).await
    }

    /// Cancels, pauses, resumes or retries a run, as its state allows.
    pub async fn steer(
        &self,
        actor: &Actor,
        id: ExecutionId,
        steering: Steering,
    ) -> Result<Execution, ControlError> {
        self.repository.control(actor, id, steering).await
    }

    /// Approves or rejects the approval step a run waits on: decided by
    /// [`crate::ApprovalContext::judge`] under the run's lock, so a listed approver may decide a
    /// run they cannot otherwise see, and nobody else learns it exists.
    pub async fn decide(
        &self,
        actor: &Actor,
        id: ExecutionId,
        step: ExecutionStepId,
        decision: &DecisionRequest,
    ) -> Result<Execution, DecisionError> {
        let verdict = decision.decision;
        self.repository
            .decide(actor, id, step, decision, |context| {
                context.judge(actor, verdict)
            })
            .await
    }

    /// One page of the run figures of the workflows the actor sees, by workflow name.
    pub async fn stats(
        &self,
        actor: &Actor,
        page: PageRequest<StatsPosition>,
    ) -> Result<Page<WorkflowStats, StatsPosition>, StorageError> {
        self.repository.stats(actor, page).await
    }
}

#[cfg(test)]
mod tests {
    //! The service's rules against the in-memory fake of its port ([`crate::fakes`]): which
    //! version a start runs, who sees a run, how people steer it, and that a decision is judged
    //! before anything is written, whoever asks.

    use ipa_kernel::{ClientInfo, UserId, WorkflowVersionId};
    use ipa_workflow::{VersionNumber, WorkflowStatus};
    use serde_json::Map;

    use super::*;
    use crate::StepKind;
    use crate::fakes::{FakeExecutions, FakeWorkflow};
    use crate::model::{Decision, IdempotencyKey};
    use crate::state::RunState;

    fn as_user(user: UserId) -> Actor {
        Actor::user(user, false, ClientInfo::default())
    }

    fn number(n: u32) -> VersionNumber {
        VersionNumber::new(n).unwrap()
    }

    fn run_request(version: Option<u32>, key: Option<&str>) -> StartRun {
        StartRun {
            input: Map::new(),
            version_number: version.map(number),
            idempotency_key: key.map(|key| IdempotencyKey::parse(key).unwrap()),
        }
    }

    /// A service over a fake holding one workflow of `owner`, in `status`, with two versions (the
    /// first current): version 1 has an approval step, version 2 a webhook step.
    fn with_workflow(
        owner: UserId,
        status: WorkflowStatus,
    ) -> (ExecutionService<FakeExecutions>, WorkflowId) {
        let (one, two) = (
            WorkflowVersionId::new_random(),
            WorkflowVersionId::new_random(),
        );
        let repository = FakeExecutions::default();
        let workflow = repository.add_workflow(FakeWorkflow {
            owner,
            status,
            current: Some(one),
            versions: vec![
                (
                    number(1),
                    one,
                    vec![("approve".to_owned(), StepKind::Approval)],
                ),
                (number(2), two, vec![("call".to_owned(), StepKind::Webhook)]),
            ],
        });
        (ExecutionService::new(repository), workflow)
    }

    #[tokio::test]
    async fn a_start_runs_the_current_version_or_the_one_named_of_an_active_workflow_only() {
        let owner = UserId::new_random();
        let (service, workflow) = with_workflow(owner, WorkflowStatus::Active);
        let actor = as_user(owner);
        let current = service
            .start(&actor, workflow, &run_request(None, None))
            .await
            .unwrap();
        assert_eq!(current.execution.version_number, Some(number(1)));
        let named = service
            .start(&actor, workflow, &run_request(Some(2), None))
            .await
            .unwrap();
        assert_eq!(named.execution.version_number, Some(number(2)));
        let (_, steps) = service.get(&actor, named.execution.id).await.unwrap();
        assert_eq!(
            steps.iter().map(|s| s.kind).collect::<Vec<_>>(),
            [StepKind::Webhook]
        );
        assert!(matches!(
            service.start(&actor, workflow, &run_request(Some(9), None)).await,
            Err(StartError::VersionNotFound(n)) if n == number(9)
        ));

        let (drafts, draft) = with_workflow(owner, WorkflowStatus::Draft);
        assert!(matches!(
            drafts.start(&actor, draft, &run_request(None, None)).await,
            Err(StartError::WorkflowNotActive(WorkflowStatus::Draft))
        ));
    }

    #[tokio::test]
    async fn a_repeated_key_returns_the_same_run_and_a_changed_body_is_refused() {
        let owner = UserId::new_random();
        let (service, workflow) = with_workflow(owner, WorkflowStatus::Active);
        let actor = as_user(owner);
        let first = service
            .start(&actor, workflow, &run_request(None, Some("k1")))
            .await
            .unwrap();
        let again = service
            .start(&actor, workflow, &run_request(None, Some("k1")))
            .await
            .unwrap();
        assert!(!first.replayed && again.replayed);
        assert_eq!(first.execution.id, again.execution.id);
        assert!(matches!(
            service
                .start(&actor, workflow, &run_request(Some(2), Some("k1")))
                .await,
            Err(StartError::IdempotencyMismatch)
        ));
    }

    #[tokio::test]
    async fn people_steer_runs_they_see_as_the_state_machine_allows() {
        let owner = UserId::new_random();
        let (service, workflow) = with_workflow(owner, WorkflowStatus::Active);
        let actor = as_user(owner);
        let run = service
            .start(&actor, workflow, &run_request(None, None))
            .await
            .unwrap();
        let id = run.execution.id;
        assert!(matches!(
            service
                .steer(&as_user(UserId::new_random()), id, Steering::Cancel)
                .await,
            Err(ControlError::NotFound)
        ));
        let paused = service.steer(&actor, id, Steering::Pause).await.unwrap();
        assert_eq!(paused.state, RunState::new(ExecutionStatus::Paused));
        assert!(matches!(
            service.steer(&actor, id, Steering::Retry).await,
            Err(ControlError::Illegal(_))
        ));
        let resumed = service.steer(&actor, id, Steering::Resume).await.unwrap();
        assert_eq!(resumed.state, RunState::new(ExecutionStatus::Pending));
        let (status, lines) = service.events(&actor, id, 0, 10).await.unwrap();
        assert_eq!((status, lines.len()), (ExecutionStatus::Pending, 3));
    }

    #[tokio::test]
    async fn a_listed_approver_sees_and_decides_the_run_they_are_asked_about() {
        let (owner, approver) = (UserId::new_random(), UserId::new_random());
        let (service, workflow) = with_workflow(owner, WorkflowStatus::Active);
        let run = service
            .start(&as_user(owner), workflow, &run_request(None, None))
            .await
            .unwrap();
        let id = run.execution.id;
        let approver = as_user(approver);
        // Not before being asked.
        assert!(matches!(
            service.get(&approver, id).await,
            Err(ExecutionQueryError::NotFound)
        ));
        let step = service
            .repository()
            .await_approval(id, 0, &[approver.user_id().unwrap()]);
        assert_eq!(service.get(&approver, id).await.unwrap().0.id, id);
        let approve = DecisionRequest {
            decision: Decision::Approve,
            comment: None,
        };
        let decided = service.decide(&approver, id, step, &approve).await.unwrap();
        assert_eq!(decided.state, RunState::new(ExecutionStatus::Pending));
        assert_eq!(service.repository().decisions_written(), 1);
        // Decided once: the run no longer waits on it.
        assert!(matches!(
            service.decide(&approver, id, step, &approve).await,
            Err(DecisionError::Illegal(_))
        ));
        assert_eq!(service.repository().decisions_written(), 1);
    }

    #[tokio::test]
    async fn a_refused_decision_writes_nothing() {
        let (owner, approver) = (UserId::new_random(), UserId::new_random());
        let (service, workflow) = with_workflow(owner, WorkflowStatus::Active);
        let owner = as_user(owner);
        let run = service
            .start(&owner, workflow, &run_request(None, None))
            .await
            .unwrap();
        let id = run.execution.id;
        let step = service.repository().await_approval(id, 0, &[approver]);
        let reject = DecisionRequest {
            decision: Decision::Reject,
            comment: Some("no".to_owned()),
        };
        assert!(matches!(
            service.decide(&owner, id, step, &reject).await,
            Err(DecisionError::NotAnApprover)
        ));
        assert!(matches!(
            service
                .decide(&as_user(UserId::new_random()), id, step, &reject)
                .await,
            Err(DecisionError::NotFound)
        ));
        assert_eq!(service.repository().decisions_written(), 0);
        let (execution, _) = service.get(&owner, id).await.unwrap();
        assert_eq!(execution.state, RunState::awaiting(step));
    }

    #[tokio::test]
    async fn runs_are_listed_to_their_starter_and_their_workflows_owner() {
        let owner = UserId::new_random();
        let (service, workflow) = with_workflow(owner, WorkflowStatus::Active);
        for _ in 0..3 {
            service
                .start(&as_user(owner), workflow, &run_request(None, None))
                .await
                .unwrap();
        }
        let filter = ExecutionFilter {
            workflow: Some(workflow),
            ..ExecutionFilter::default()
        };
        let page = service
            .list(&as_user(owner), &filter, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(page.items.len(), 3);
        assert!(
            page.items
                .windows(2)
                .all(|w| w[0].created_at > w[1].created_at)
        );
        let stranger = service
            .list(
                &as_user(UserId::new_random()),
                &filter,
                PageRequest::default(),
            )
            .await
            .unwrap();
        assert!(stranger.items.is_empty());
        let stats = service
            .stats(&as_user(owner), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(
            stats.items.iter().map(|s| s.total_executions).sum::<i64>(),
            3
        );
        assert_eq!(stats.next, None);
    }
}
