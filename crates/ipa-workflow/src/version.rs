//! Workflow versions: numbered from 1 without gaps per workflow, immutable once written. A version
//! keeps the definition document exactly as published; that document is what runs, what is
//! diffed and what a rollback makes current again.

use std::fmt;

use ipa_kernel::{UserId, WorkflowId, WorkflowVersionId};
use serde_json::Value;
use time::OffsetDateTime;

use crate::definition::WorkflowDefinition;

/// A version's number within its workflow: 1, 2, 3... (the schema's `version_number > 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionNumber(u32);

impl VersionNumber {
    /// The first version of every workflow.
    pub const FIRST: Self = Self(1);
    /// The largest number PostgreSQL's `integer` holds.
    pub const MAX: u32 = i32::MAX as u32;

    /// A version number from a request or from storage; `None` unless 1 to [`Self::MAX`].
    pub fn new(number: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&number).then_some(Self(number))
    }

    /// The number.
    pub fn get(&self) -> u32 {
        self.0
    }

    /// The number as PostgreSQL's `integer` stores it: always exact, since numbers stop at
    /// [`Self::MAX`].
    pub fn as_i32(&self) -> i32 {
        i32::try_from(self.0).unwrap_or(i32::MAX)
    }
}

impl fmt::Display for VersionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a version changed, in its author's words: at most 2,000 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSummary(String);

impl ChangeSummary {
    /// The longest summary.
    pub const MAX_CHARS: usize = 2_000;

    /// Parses a summary; an empty one is `None`, a longer one than [`Self::MAX_CHARS`] is refused.
    pub fn parse(raw: &str) -> Result<Option<Self>, TooLongSummary> {
        ipa_kernel::text::optional_text(raw, Self::MAX_CHARS)
            .map(|text| text.map(Self))
            .ok_or(TooLongSummary)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A change summary longer than [`ChangeSummary::MAX_CHARS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a change summary has at most {max} characters", max = ChangeSummary::MAX_CHARS)]
pub struct TooLongSummary;

/// Which version a workflow points at: its id and number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRef {
    /// The version's id.
    pub id: WorkflowVersionId,
    /// Its number.
    pub number: VersionNumber,
}

/// A published version of a workflow, without its definition: what lists show.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionSummary {
    /// Its id.
    pub id: WorkflowVersionId,
    /// The workflow it belongs to.
    pub workflow_id: WorkflowId,
    /// Its number within the workflow.
    pub number: VersionNumber,
    /// What changed, in its author's words.
    pub change_summary: Option<ChangeSummary>,
    /// Who published it.
    pub author: UserId,
    /// When it was published.
    pub created_at: OffsetDateTime,
}

/// A published version of a workflow with its definition.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowVersion {
    /// Everything but the definition.
    pub summary: VersionSummary,
    /// The definition document as published.
    pub definition: Value,
}

/// A version to publish: a definition that parsed, compiled and whose references hold.
#[derive(Clone, Debug, PartialEq)]
pub struct NewVersion {
    /// The definition.
    pub definition: WorkflowDefinition,
    /// What changed.
    pub change_summary: Option<ChangeSummary>,
    /// Whether it becomes the workflow's current version.
    pub make_current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_are_positive_postgres_integers() {
        assert_eq!(VersionNumber::new(0), None);
        assert_eq!(VersionNumber::new(1), Some(VersionNumber::FIRST));
        assert!(VersionNumber::new(i32::MAX as u32).is_some());
        assert_eq!(VersionNumber::new(i32::MAX as u32 + 1), None);
    }

    #[test]
    fn change_summaries_are_trimmed_and_bounded() {
        assert_eq!(ChangeSummary::parse("   "), Ok(None));
        assert_eq!(
            ChangeSummary::parse(" fix url ").unwrap().unwrap().as_str(),
            "fix url"
        );
        assert_eq!(
            ChangeSummary::parse(&"x".repeat(2_001)),
            Err(TooLongSummary)
        );
    }
}
