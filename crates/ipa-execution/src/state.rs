//! The state machines of a run and of its steps. Every legal move is one arm of a match; anything
//! else is an [`IllegalTransition`] that names the state the run is really in, so a client that
//! asks to resume a running run learns that it is running.

use ipa_kernel::ExecutionStepId;

use crate::{ExecutionStatus, StepStatus};

/// Where a run is, with what a paused run waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunState {
    /// The stored status.
    pub status: ExecutionStatus,
    /// The approval step a paused run waits on; `None` for every other state (a run paused on
    /// request waits for a person to resume it).
    pub awaiting: Option<ExecutionStepId>,
}

impl RunState {
    /// A run in `status`, waiting for nothing.
    pub fn new(status: ExecutionStatus) -> Self {
        Self {
            status,
            awaiting: None,
        }
    }

    /// A run paused until the approval step `step` is decided.
    pub fn awaiting(step: ExecutionStepId) -> Self {
        Self {
            status: ExecutionStatus::Paused,
            awaiting: Some(step),
        }
    }

    /// The state after `action`, or why it cannot happen now.
    pub fn apply(self, action: RunAction) -> Result<Self, IllegalTransition> {
        use ExecutionStatus::{Cancelled, Completed, Failed, Paused, Pending, Running};
        let next = match (self.status, self.awaiting, action) {
            // A worker takes a waiting run.
            (Pending, None, RunAction::Claim) => Self::new(Running),
            // People steer runs that have not finished. A pause takes effect between steps.
            (Pending | Running, None, RunAction::Pause) => Self::new(Paused),
            (Paused, None, RunAction::Resume) => Self::new(Pending),
            (Pending | Running | Paused, _, RunAction::Cancel) => Self::new(Cancelled),
            // A failed run goes again from its failed step.
            (Failed, None, RunAction::Retry) => Self::new(Pending),
            // The engine's moves.
            (Running, None, RunAction::AwaitApproval(step)) => Self::awaiting(step),
            (Paused, Some(waiting), RunAction::Approve(step)) if waiting == step => {
                Self::new(Pending)
            }
            (Paused, Some(waiting), RunAction::Reject(step)) if waiting == step => {
                Self::new(Failed)
            }
            (Running, None, RunAction::Complete) => Self::new(Completed),
            (Running, None, RunAction::Fail) => Self::new(Failed),
            // An approval that runs out of time fails the run it held.
            (Paused, Some(_), RunAction::Fail) => Self::new(Failed),
            _ => {
                return Err(IllegalTransition {
                    action,
                    current: self,
                });
            }
        };
        Ok(next)
    }
}

/// Something that moves a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunAction {
    /// A worker starts (or continues) it.
    Claim,
    /// A person asks it to stop after the current step.
    Pause,
    /// A person lets a paused run go on.
    Resume,
    /// A person stops it for good.
    Cancel,
    /// A person runs a failed run again from its failed step.
    Retry,
    /// The engine reached an approval step: the run waits for a decision.
    AwaitApproval(ExecutionStepId),
    /// An approver approved the step the run waits on.
    Approve(ExecutionStepId),
    /// An approver rejected the step the run waits on.
    Reject(ExecutionStepId),
    /// The engine finished every step.
    Complete,
    /// The engine gave up on the run.
    Fail,
}

impl RunAction {
    /// The action as a person would say it.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Claim => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
            Self::Retry => "retry",
            Self::AwaitApproval(_) => "wait for an approval in",
            Self::Approve(_) | Self::Reject(_) => "decide an approval of",
            Self::Complete => "complete",
            Self::Fail => "fail",
        }
    }
}

/// What a person may do to a run: the [`RunAction`]s that are not the engine's or an approver's.
/// The API and the service speak of these only, so no request can ask storage to claim or
/// complete a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
    /// Stop it for good.
    Cancel,
    /// Stop it after the step in flight.
    Pause,
    /// Let a paused run go on.
    Resume,
    /// Run a failed run again from its failed step.
    Retry,
}

impl Steering {
    /// The run's state machine's action.
    pub fn action(self) -> RunAction {
        match self {
            Self::Cancel => RunAction::Cancel,
            Self::Pause => RunAction::Pause,
            Self::Resume => RunAction::Resume,
            Self::Retry => RunAction::Retry,
        }
    }
}

/// A move the current state does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct IllegalTransition {
    /// What was asked.
    pub action: RunAction,
    /// Where the run is.
    pub current: RunState,
}

impl IllegalTransition {
    /// A sentence saying why, naming the current state.
    pub fn message(&self) -> String {
        let verb = self.action.verb();
        match (self.current.status, self.current.awaiting, self.action) {
            (ExecutionStatus::Paused, Some(_), RunAction::Resume | RunAction::Pause) => format!(
                "cannot {verb} this execution: it is paused waiting for an approval decision; \
                 approve or reject the step instead"
            ),
            (_, _, RunAction::Approve(_) | RunAction::Reject(_)) => format!(
                "cannot decide this step: the execution is {} and does not wait for a decision on \
                 it",
                self.current.status
            ),
            (ExecutionStatus::Failed, _, RunAction::Resume) => {
                format!("cannot {verb} this execution: it is failed; retry it instead")
            }
            (status, _, _) => format!("cannot {verb} this execution: it is {status}"),
        }
    }
}

impl ExecutionStatus {
    /// Whether the run has ended (until a person retries a failed one).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl StepStatus {
    /// The step's status after `action`, or `None` when the step cannot make that move.
    pub fn apply(self, action: StepAction) -> Option<Self> {
        use StepStatus::{Completed, Failed, Pending, Running, Skipped};
        match (self, action) {
            // A step that was running when its worker died starts again: it never completed.
            (Pending | Running, StepAction::Start) => Some(Running),
            (Running, StepAction::Complete) => Some(Completed),
            (Running, StepAction::Fail) => Some(Failed),
            (Pending, StepAction::Skip) => Some(Skipped),
            // Retrying a run puts its failed step back in line (its attempts are kept).
            (Failed, StepAction::Reset) => Some(Pending),
            _ => None,
        }
    }

    /// Whether the step is done with for this run (its output, if any, is final).
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped)
    }
}

/// Something that moves a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepAction {
    /// A worker begins (or, after losing its worker, begins again) the step.
    Start,
    /// The step succeeded (for an approval: it was approved).
    Complete,
    /// The step failed for good (attempts spent, rejected, timed out, interrupted).
    Fail,
    /// Its condition was false.
    Skip,
    /// Its run is retried from it.
    Reset,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExecutionStatus::*;

    fn step() -> ExecutionStepId {
        ExecutionStepId::new_random()
    }

    #[test]
    fn the_happy_path_and_the_engine_moves() {
        let run = RunState::new(Pending).apply(RunAction::Claim).unwrap();
        assert_eq!(run, RunState::new(Running));
        let waiting = step();
        let paused = run.apply(RunAction::AwaitApproval(waiting)).unwrap();
        assert_eq!(paused, RunState::awaiting(waiting));
        assert_eq!(
            paused.apply(RunAction::Approve(waiting)).unwrap(),
            RunState::new(Pending)
        );
        assert_eq!(
            paused.apply(RunAction::Reject(waiting)).unwrap(),
            RunState::new(Failed)
        );
        assert_eq!(
            paused.apply(RunAction::Fail).unwrap(),
            RunState::new(Failed)
        );
        assert_eq!(
            run.apply(RunAction::Complete).unwrap(),
            RunState::new(Completed)
        );
        assert_eq!(run.apply(RunAction::Fail).unwrap(), RunState::new(Failed));
    }

    #[test]
    fn people_steer_unfinished_runs() {
        for status in [Pending, Running] {
            let paused = RunState::new(status).apply(RunAction::Pause).unwrap();
            assert_eq!(paused, RunState::new(Paused));
            assert_eq!(
                paused.apply(RunAction::Resume).unwrap(),
                RunState::new(Pending)
            );
        }
        for state in [
            RunState::new(Pending),
            RunState::new(Running),
            RunState::new(Paused),
            RunState::awaiting(step()),
        ] {
            assert_eq!(
                state.apply(RunAction::Cancel).unwrap(),
                RunState::new(Cancelled)
            );
        }
        assert_eq!(
            RunState::new(Failed).apply(RunAction::Retry).unwrap(),
            RunState::new(Pending)
        );
    }

    #[test]
    fn illegal_moves_name_the_current_state() {
        let cases = [
            (
                RunState::new(Completed),
                RunAction::Cancel,
                "it is completed",
            ),
            (
                RunState::new(Cancelled),
                RunAction::Retry,
                "it is cancelled",
            ),
            (RunState::new(Running), RunAction::Resume, "it is running"),
            (
                RunState::new(Completed),
                RunAction::Retry,
                "it is completed",
            ),
            (RunState::new(Failed), RunAction::Resume, "retry it instead"),
            (RunState::new(Paused), RunAction::Pause, "it is paused"),
            (
                RunState::awaiting(step()),
                RunAction::Resume,
                "approve or reject",
            ),
            (
                RunState::awaiting(step()),
                RunAction::Pause,
                "approve or reject",
            ),
            (
                RunState::new(Running),
                RunAction::Approve(step()),
                "is running and does not wait",
            ),
            (RunState::new(Paused), RunAction::Claim, "it is paused"),
        ];
        for (state, action, expected) in cases {
            let error = state.apply(action).unwrap_err();
            assert_eq!(error.current, state);
            assert!(
                error.to_string().contains(expected),
                "{action:?} from {state:?}: {error}"
            );
        }
    }

    #[test]
    fn a_decision_must_be_for_the_step_the_run_waits_on() {
        let waiting = RunState::awaiting(step());
        assert!(waiting.apply(RunAction::Approve(step())).is_err());
        assert!(waiting.apply(RunAction::Reject(step())).is_err());
    }

    #[test]
    fn step_moves() {
        use StepAction::*;
        assert_eq!(StepStatus::Pending.apply(Start), Some(StepStatus::Running));
        assert_eq!(StepStatus::Running.apply(Start), Some(StepStatus::Running));
        assert_eq!(
            StepStatus::Running.apply(Complete),
            Some(StepStatus::Completed)
        );
        assert_eq!(StepStatus::Running.apply(Fail), Some(StepStatus::Failed));
        assert_eq!(StepStatus::Pending.apply(Skip), Some(StepStatus::Skipped));
        assert_eq!(StepStatus::Failed.apply(Reset), Some(StepStatus::Pending));
        assert_eq!(StepStatus::Completed.apply(Start), None);
        assert_eq!(StepStatus::Completed.apply(Reset), None);
        assert_eq!(StepStatus::Skipped.apply(Complete), None);
        assert!(StepStatus::Completed.is_settled() && StepStatus::Skipped.is_settled());
        assert!(!StepStatus::Failed.is_settled());
    }
}
