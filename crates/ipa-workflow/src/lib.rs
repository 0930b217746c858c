//! The workflow context: workflow definitions, their lifecycle and their numbered, immutable
//! versions.
//!
//! - [`definition`]: the steps a version runs, parsed from JSON with every problem reported at
//!   its JSON pointer.
//! - [`workflow`]: a workflow's name, tags and metadata, and the lifecycle's legal transitions
//!   ([`WorkflowStatus::can_become`]).

pub mod definition;
pub mod workflow;

pub use definition::{DefinitionProblem, InvalidDefinition, WorkflowDefinition};
pub use workflow::{Metadata, Tags, WorkflowName, WorkflowValueError};

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
