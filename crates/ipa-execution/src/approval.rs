//! Deciding an approval: who may see the run to decide it, which step can be decided, who may
//! decide it and what the run becomes. Storage locks the run and reads an [`ApprovalContext`];
//! [`ApprovalContext::judge`] says what happens; storage writes it.

use ipa_kernel::{Actor, UserId};

use crate::StepKind;
use crate::error::DecisionError;
use crate::model::{Decision, ExecutionStep, may_decide};
use crate::state::{RunAction, RunState};

/// What storage knows, under the run's lock, about a run someone wants to decide a step of.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalContext {
    /// Where the run is.
    pub state: RunState,
    /// Who started it.
    pub triggered_by: UserId,
    /// Who owns its workflow, when the caller may see that workflow. A caller who may not is not
    /// its owner, and storage under row level security cannot read it for them: a listed approver
    /// sees the run they were asked to decide, not the workflow behind it.
    pub owner: Option<UserId>,
    /// The step named in the request, when it is one of the run's.
    pub step: Option<ExecutionStep>,
}

/// What a decision does, once judged: the step it decides and the run's next state.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    /// The approval step decided.
    pub step: ExecutionStep,
    /// The run after the decision.
    pub next: RunState,
}

impl ApprovalContext {
    /// The approvers the engine recorded in the step's input when it began waiting; none when the
    /// step names none (or has not begun waiting).
    pub fn approvers(&self) -> Vec<UserId> {
        self.step
            .as_ref()
            .and_then(|step| step.input.as_ref())
            .and_then(|input| input.get("approvers"))
            .and_then(|approvers| serde_json::from_value(approvers.clone()).ok())
            .unwrap_or_default()
    }

    /// Whether `user` may see this run to decide it: its starter, its workflow's owner, a
    /// superuser, or an approver listed on the step named.
    fn visible_to(&self, user: UserId, is_superuser: bool, approvers: &[UserId]) -> bool {
        user == self.triggered_by
            || self.owner == Some(user)
            || is_superuser
            || approvers.contains(&user)
    }

    /// What `actor`'s `decision` does, or why it is refused. A run the actor may not see is
    /// "not found" whatever else is wrong with the request, so a refusal tells nothing about runs
    /// the actor may not see.
    pub fn judge(&self, actor: &Actor, decision: Decision) -> Result<Judged, DecisionError> {
        let user = actor.user_id().ok_or(DecisionError::NotFound)?;
        let approvers = self.approvers();
        if !self.visible_to(user, actor.is_superuser(), &approvers) {
            return Err(DecisionError::NotFound);
        }
        let step = self.step.clone().ok_or(DecisionError::StepNotFound)?;
        if step.kind != StepKind::Approval {
            return Err(DecisionError::NotAnApproval(step.name));
        }
        if !may_decide(user, actor.is_superuser(), &approvers, self.owner) {
            return Err(DecisionError::NotAnApprover);
        }
        let action = match decision {
            Decision::Approve => RunAction::Approve(step.id),
            Decision::Reject => RunAction::Reject(step.id),
        };
        let next = self.state.apply(action)?;
        Ok(Judged { step, next })
    }
}

#[cfg(test)]
mod tests {
    use ipa_kernel::{ClientInfo, ExecutionId, ExecutionStepId};
    use serde_json::json;

    use super::*;
    use crate::{ExecutionStatus, StepStatus};

    fn step(kind: StepKind, approvers: &[UserId]) -> ExecutionStep {
        ExecutionStep {
            id: ExecutionStepId::new_random(),
            execution_id: ExecutionId::new_random(),
            name: "approve".to_owned(),
            index: 0,
            kind,
            status: StepStatus::Running,
            input: Some(json!({"approvers": approvers, "message": "ok?"})),
            output: None,
            error: None,
            started_at: None,
            completed_at: None,
            duration_ms: None,
            retry_count: 0,
        }
    }

    struct People {
        starter: UserId,
        owner: UserId,
        approver: UserId,
        stranger: UserId,
    }

    fn people() -> People {
        People {
            starter: UserId::new_random(),
            owner: UserId::new_random(),
            approver: UserId::new_random(),
            stranger: UserId::new_random(),
        }
    }

    fn context(people: &People, step: Option<ExecutionStep>) -> ApprovalContext {
        let state = step
            .as_ref()
            .map_or(RunState::new(ExecutionStatus::Running), |step| {
                RunState::awaiting(step.id)
            });
        ApprovalContext {
            state,
            triggered_by: people.starter,
            owner: Some(people.owner),
            step,
        }
    }

    fn as_user(user: UserId, is_superuser: bool) -> Actor {
        Actor::user(user, is_superuser, ClientInfo::default())
    }

    #[test]
    fn a_listed_approver_decides_though_the_run_is_not_theirs() {
        let people = people();
        let waiting = step(StepKind::Approval, &[people.approver]);
        let context = context(&people, Some(waiting.clone()));
        let judged = context
            .judge(&as_user(people.approver, false), Decision::Approve)
            .unwrap();
        assert_eq!(judged.step, waiting);
        assert_eq!(judged.next, RunState::new(ExecutionStatus::Pending));
        let rejected = context
            .judge(&as_user(people.approver, false), Decision::Reject)
            .unwrap();
        assert_eq!(rejected.next, RunState::new(ExecutionStatus::Failed));
    }

    #[test]
    fn who_sees_the_run_but_is_not_listed_is_refused_as_not_an_approver() {
        let people = people();
        let context = context(&people, Some(step(StepKind::Approval, &[people.approver])));
        for (user, superuser) in [
            (people.owner, false),
            (people.starter, false),
            (people.stranger, true),
        ] {
            assert!(matches!(
                context.judge(&as_user(user, superuser), Decision::Approve),
                Err(DecisionError::NotAnApprover)
            ));
        }
    }

    #[test]
    fn a_stranger_learns_nothing_about_the_run() {
        let people = people();
        let stranger = as_user(people.stranger, false);
        // Whatever is wrong besides, the answer is the same as for a run that does not exist.
        for step in [
            Some(step(StepKind::Approval, &[people.approver])),
            Some(step(StepKind::Webhook, &[])),
            None,
        ] {
            assert!(matches!(
                context(&people, step).judge(&stranger, Decision::Approve),
                Err(DecisionError::NotFound)
            ));
        }
        assert!(matches!(
            context(&people, None).judge(&Actor::system(), Decision::Approve),
            Err(DecisionError::NotFound)
        ));
    }

    #[test]
    fn without_listed_approvers_the_owner_or_a_superuser_decides() {
        let people = people();
        let context = context(&people, Some(step(StepKind::Approval, &[])));
        assert!(
            context
                .judge(&as_user(people.owner, false), Decision::Approve)
                .is_ok()
        );
        assert!(
            context
                .judge(&as_user(people.stranger, true), Decision::Approve)
                .is_ok()
        );
        assert!(matches!(
            context.judge(&as_user(people.starter, false), Decision::Approve),
            Err(DecisionError::NotAnApprover)
        ));
    }

    #[test]
    fn only_the_approval_step_the_run_waits_on_can_be_decided() {
        let people = people();
        let owner = as_user(people.owner, false);
        assert!(matches!(
            context(&people, None).judge(&owner, Decision::Approve),
            Err(DecisionError::StepNotFound)
        ));
        assert!(matches!(
            context(&people, Some(step(StepKind::Webhook, &[]))).judge(&owner, Decision::Approve),
            Err(DecisionError::NotAnApproval(name)) if name == "approve"
        ));
        // An approval step of the run that it does not wait on (decided already, or not reached).
        let mut decided = context(&people, Some(step(StepKind::Approval, &[])));
        decided.state = RunState::new(ExecutionStatus::Pending);
        assert!(matches!(
            decided.judge(&owner, Decision::Approve),
            Err(DecisionError::Illegal(_))
        ));
    }
}
