#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`definition`]: the steps a version runs, parsed from JSON with every problem reported at
//!   its JSON pointer, and the [`TemplateChecker`] port that compiles their templates.
//! - [`workflow`]: the workflow aggregate, its values (name, description, tags, metadata) and
//!   the lifecycle's legal transitions ([`WorkflowStatus::can_become`]).
//! - [`version`]: version numbers and the versions themselves.
//! - [`ports`]: the repository the context needs; [`service`]: the operations over it.
//! - [`error`]: one error per operation.

pub mod definition;
pub mod error;
#[cfg(test)]
mod fakes;
pub mod ports;
pub mod service;
pub mod version;
pub mod workflow;

pub use definition::{
    DefinitionCheck, DefinitionProblem, EarlierSteps, InvalidDefinition, StepNames, TemplateCheck,
    TemplateChecker, TemplateKind, WorkflowDefinition,
};
pub use error::{
    DeleteWorkflowError, LifecycleError, PublishError, UpdateWorkflowError, VersionError,
    WorkflowQueryError,
};
pub use ports::{AgentAvailability, ReferenceStates, WorkflowRepository};
pub use service::{PublishRequest, WorkflowService};
pub use version::{
    ChangeSummary, NewVersion, TooLongSummary, VersionNumber, VersionRef, VersionSummary,
    WorkflowVersion,
};
pub use workflow::{
    Description, Metadata, NameFragment, NewWorkflow, Tags, Workflow, WorkflowChanges,
    WorkflowFilter, WorkflowName, WorkflowValueError,
};

ipa_kernel::label_enum!(
    /// Where a workflow is in its life. Stored as the `workflow_status` enum.
    WorkflowStatus, "workflow status" {
        /// Being written; cannot be run.
        Draft => "draft",
        /// Runnable.
        Active => "active",
        /// Retired; kept for history.
        Archived => "archived",
    }
);
