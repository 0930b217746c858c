//! Starting a run: whether a workflow may be run now, and which of its versions a request runs.
//! Storage reads the workflow under a lock and applies [`version_to_run`] before writing the run.

use ipa_kernel::WorkflowVersionId;
use ipa_workflow::{VersionNumber, WorkflowStatus};

use crate::error::StartError;

/// The version a start request runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionToRun {
    /// The workflow's current version.
    Current(WorkflowVersionId),
    /// The version the request named (storage still has to find it).
    Numbered(VersionNumber),
}

/// Which version a request naming `requested` (or none) runs, for a workflow in `status` whose
/// current version is `current`: only active workflows run; a named version wins over the current
/// one; without either there is nothing to run.
pub fn version_to_run(
    status: WorkflowStatus,
    current: Option<WorkflowVersionId>,
    requested: Option<VersionNumber>,
) -> Result<VersionToRun, StartError> {
    if status != WorkflowStatus::Active {
        return Err(StartError::WorkflowNotActive(status));
    }
    match (requested, current) {
        (Some(number), _) => Ok(VersionToRun::Numbered(number)),
        (None, Some(current)) => Ok(VersionToRun::Current(current)),
        (None, None) => Err(StartError::NoCurrentVersion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_workflows_run() {
        let current = Some(WorkflowVersionId::new_random());
        for status in [WorkflowStatus::Draft, WorkflowStatus::Archived] {
            assert!(matches!(
                version_to_run(status, current, None),
                Err(StartError::WorkflowNotActive(found)) if found == status
            ));
        }
    }

    #[test]
    fn a_named_version_wins_over_the_current_one() {
        let current = WorkflowVersionId::new_random();
        let two = VersionNumber::new(2).unwrap();
        assert_eq!(
            version_to_run(WorkflowStatus::Active, Some(current), Some(two)).unwrap(),
            VersionToRun::Numbered(two)
        );
        assert_eq!(
            version_to_run(WorkflowStatus::Active, Some(current), None).unwrap(),
            VersionToRun::Current(current)
        );
        assert_eq!(
            version_to_run(WorkflowStatus::Active, None, Some(two)).unwrap(),
            VersionToRun::Numbered(two)
        );
        assert!(matches!(
            version_to_run(WorkflowStatus::Active, None, None),
            Err(StartError::NoCurrentVersion)
        ));
    }
}
