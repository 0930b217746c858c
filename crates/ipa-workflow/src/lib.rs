//! The workflow context: workflow definitions, their lifecycle and their numbered, immutable
//! versions. Later work adds the aggregates and the definition parser; today it holds the
//! vocabulary the schema stores.

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
