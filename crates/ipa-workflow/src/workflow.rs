//! The workflow aggregate: its values (name, description, tags, metadata), its lifecycle's
//! transitions, and the changes and filters clients express over it.

use ipa_kernel::json::serialized_within;
use ipa_kernel::{Keyset, UserId, WorkflowId};
use serde_json::Value;
use time::OffsetDateTime;

use crate::WorkflowStatus;
use crate::error::LifecycleError;
use crate::version::VersionRef;

/// Why a workflow's value was refused; each names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowValueError {
    /// Not a usable name.
    #[error(
        "a workflow name must have 1 to 255 characters after trimming and no control characters"
    )]
    Name,
    /// A tag at this position is empty or too long.
    #[error("tag {0} must have 1 to {max} characters after trimming", max = Tags::MAX_TAG_CHARS)]
    Tag(usize),
    /// Too many distinct tags.
    #[error("a workflow has at most {max} tags", max = Tags::MAX_TAGS)]
    TooManyTags,
    /// Metadata that is not a JSON object, or is too large.
    #[error("metadata must be a JSON object of at most {max} bytes", max = Metadata::MAX_BYTES)]
    Metadata,
    /// A description that is too long.
    #[error("a description has at most {max} characters", max = Description::MAX_CHARS)]
    Description,
    /// A name search that is empty, too long or holds a control character.
    #[error("a name search has 1 to 255 characters after trimming, and no control characters")]
    NameFragment,
}

/// A workflow's description: free text of at most 10,000 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// The longest description.
    pub const MAX_CHARS: usize = 10_000;

    /// Parses a description; surrounding whitespace is kept out, an empty one is `None`.
    pub fn parse(raw: &str) -> Result<Option<Self>, WorkflowValueError> {
        ipa_kernel::text::optional_text(raw, Self::MAX_CHARS)
            .map(|text| text.map(Self))
            .ok_or(WorkflowValueError::Description)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Part of a workflow name to search for (case-insensitive substring): held to the rule of
/// names (trimmed, 1 to 255 characters, no control characters), since only such text can match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameFragment(String);

impl NameFragment {
    /// Parses a search term.
    pub fn parse(raw: &str) -> Result<Self, WorkflowValueError> {
        ipa_kernel::text::required_text(raw, ipa_kernel::text::NAME_MAX_CHARS)
            .map(Self)
            .ok_or(WorkflowValueError::NameFragment)
    }

    /// The term.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A workflow: what a team runs, owned by the user who created it.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    /// Its identifier.
    pub id: WorkflowId,
    /// Its name.
    pub name: WorkflowName,
    /// What it is for.
    pub description: Option<Description>,
    /// Who created it and owns it.
    pub owner: UserId,
    /// Where it is in its life.
    pub status: WorkflowStatus,
    /// The version runs use by default.
    pub current_version: Option<VersionRef>,
    /// Its tags.
    pub tags: Tags,
    /// Its metadata.
    pub metadata: Metadata,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Workflow {
    /// Its position in lists, which are ordered newest first.
    pub fn keyset(&self) -> Keyset {
        Keyset::new(self.created_at, self.id.as_uuid())
    }

    /// The workflow with `changes` applied, if the lifecycle allows them: the status may only
    /// follow [`WorkflowStatus::can_become`] (staying put is allowed and changes nothing), and a
    /// workflow becomes active only with a current version.
    pub fn apply(&self, changes: &WorkflowChanges) -> Result<Workflow, LifecycleError> {
        let mut next = self.clone();
        if let Some(status) = changes.status
            && status != self.status
        {
            if !self.status.can_become(status) {
                return Err(LifecycleError::IllegalTransition {
                    from: self.status,
                    to: status,
                });
            }
            if status == WorkflowStatus::Active && self.current_version.is_none() {
                return Err(LifecycleError::NoCurrentVersion);
            }
            next.status = status;
        }
        if let Some(name) = &changes.name {
            next.name = name.clone();
        }
        if let Some(description) = &changes.description {
            next.description = description.clone();
        }
        if let Some(tags) = &changes.tags {
            next.tags = tags.clone();
        }
        if let Some(metadata) = &changes.metadata {
            next.metadata = metadata.clone();
        }
        Ok(next)
    }
}

/// A workflow to create: it starts as a draft with no version.
#[derive(Clone, Debug, PartialEq)]
pub struct NewWorkflow {
    /// Its name.
    pub name: WorkflowName,
    /// What it is for.
    pub description: Option<Description>,
    /// Its tags.
    pub tags: Tags,
    /// Its metadata.
    pub metadata: Metadata,
}

/// Changes to a workflow; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkflowChanges {
    /// A new name.
    pub name: Option<WorkflowName>,
    /// A new description (`Some(None)` clears it).
    pub description: Option<Option<Description>>,
    /// A new status.
    pub status: Option<WorkflowStatus>,
    /// New tags, replacing the old.
    pub tags: Option<Tags>,
    /// New metadata, replacing the old.
    pub metadata: Option<Metadata>,
}

/// Which workflows to list. Every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkflowFilter {
    /// Only this status.
    pub status: Option<WorkflowStatus>,
    /// Only workflows carrying all of these tags.
    pub tags: Tags,
    /// Only workflows whose metadata contains this object.
    pub metadata: Option<Metadata>,
    /// Only names containing this, in any case.
    pub name: Option<NameFragment>,
    /// Only this owner's workflows (meaningful to superusers; others see only their own anyway).
    pub owner: Option<UserId>,
}

/// A workflow's name: trimmed, 1 to 255 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowName(String);

impl WorkflowName {
    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, WorkflowValueError> {
        ipa_kernel::text::required_text(raw, ipa_kernel::text::NAME_MAX_CHARS)
            .map(Self)
            .ok_or(WorkflowValueError::Name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A workflow's tags: each trimmed and 1 to 64 characters, duplicates removed (first kept), at
/// most 32.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(Vec<String>);

impl Tags {
    /// The most tags a workflow has.
    pub const MAX_TAGS: usize = 32;
    /// The longest tag.
    pub const MAX_TAG_CHARS: usize = 64;

    /// Parses tags as given, in order.
    pub fn parse(raw: &[String]) -> Result<Self, WorkflowValueError> {
        let mut tags: Vec<String> = Vec::new();
        for (index, tag) in raw.iter().enumerate() {
            let trimmed = tag.trim();
            if trimmed.is_empty()
                || trimmed.chars().count() > Self::MAX_TAG_CHARS
                || trimmed.chars().any(char::is_control)
            {
                return Err(WorkflowValueError::Tag(index));
            }
            if !tags.iter().any(|seen| seen == trimmed) {
                // Refused as soon as the bound is passed: a client's list may be huge, and
                // de-duplication is quadratic.
                if tags.len() == Self::MAX_TAGS {
                    return Err(WorkflowValueError::TooManyTags);
                }
                tags.push(trimmed.to_owned());
            }
        }
        Ok(Self(tags))
    }

    /// The tags.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A workflow's metadata: a JSON object of at most 64 KiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata(Value);

impl Metadata {
    /// The largest metadata document, serialised.
    pub const MAX_BYTES: usize = 64 * 1024;

    /// Parses metadata.
    pub fn parse(value: Value) -> Result<Self, WorkflowValueError> {
        if value.is_object() && serialized_within(&value, Self::MAX_BYTES) {
            Ok(Self(value))
        } else {
            Err(WorkflowValueError::Metadata)
        }
    }

    /// The document.
    pub fn as_value(&self) -> &Value {
        &self.0
    }
}

impl Default for Metadata {
    fn default() -> Self {
        Self(Value::Object(serde_json::Map::new()))
    }
}

impl WorkflowStatus {
    /// Whether a workflow may go from this status to `next`: draft to active or archived, active
    /// to archived, archived back to active. Staying put is not a transition.
    pub fn can_become(self, next: WorkflowStatus) -> bool {
        matches!(
            (self, next),
            (Self::Draft, Self::Active)
                | (Self::Draft, Self::Archived)
                | (Self::Active, Self::Archived)
                | (Self::Archived, Self::Active)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            WorkflowName::parse("  Refunds ").unwrap().as_str(),
            "Refunds"
        );
        assert!(WorkflowName::parse("   ").is_err());
        assert!(WorkflowName::parse(&"x".repeat(256)).is_err());
        assert!(WorkflowName::parse("a\u{7}b").is_err());
        assert!(WorkflowName::parse(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_bounded() {
        let tags = Tags::parse(&[" finance ".into(), "ops".into(), "finance".into()]).unwrap();
        assert_eq!(tags.as_slice(), ["finance", "ops"]);
        assert_eq!(
            Tags::parse(&["ok".into(), "  ".into()]),
            Err(WorkflowValueError::Tag(1))
        );
        let many: Vec<String> = (0..33).map(|n| format!("t{n}")).collect();
        assert_eq!(Tags::parse(&many), Err(WorkflowValueError::TooManyTags));
    }

    #[test]
    fn metadata_is_a_bounded_object() {
        assert!(Metadata::parse(json!({"team": "billing"})).is_ok());
        assert!(Metadata::parse(json!([1, 2])).is_err());
        assert!(Metadata::parse(json!("text")).is_err());
        assert!(Metadata::parse(json!({"blob": "x".repeat(70_000)})).is_err());
        // The limit is on the compact JSON text, and exact.
        let filler = Metadata::MAX_BYTES - r#"{"b":""}"#.len();
        assert!(Metadata::parse(json!({"b": "x".repeat(filler)})).is_ok());
        assert!(Metadata::parse(json!({"b": "x".repeat(filler + 1)})).is_err());
        assert_eq!(Metadata::default().as_value(), &json!({}));
    }

    #[test]
    fn the_lifecycle_allows_exactly_four_transitions() {
        use WorkflowStatus::{Active, Archived, Draft};
        let allowed: Vec<(WorkflowStatus, WorkflowStatus)> = WorkflowStatus::ALL
            .iter()
            .flat_map(|from| WorkflowStatus::ALL.iter().map(move |to| (*from, *to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Draft, Active),
                (Draft, Archived),
                (Active, Archived),
                (Archived, Active)
            ]
        );
    }

    fn draft() -> Workflow {
        Workflow {
            id: WorkflowId::new_random(),
            name: WorkflowName::parse("Refunds").unwrap(),
            description: None,
            owner: UserId::new_random(),
            status: WorkflowStatus::Draft,
            current_version: None,
            tags: Tags::default(),
            metadata: Metadata::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn activating_needs_a_current_version() {
        let to_active = WorkflowChanges {
            status: Some(WorkflowStatus::Active),
            ..WorkflowChanges::default()
        };
        let workflow = draft();
        assert_eq!(
            workflow.apply(&to_active),
            Err(LifecycleError::NoCurrentVersion)
        );
        let versioned = Workflow {
            current_version: Some(VersionRef {
                id: ipa_kernel::WorkflowVersionId::new_random(),
                number: crate::VersionNumber::FIRST,
            }),
            ..workflow
        };
        assert_eq!(
            versioned.apply(&to_active).unwrap().status,
            WorkflowStatus::Active
        );
    }

    #[test]
    fn illegal_transitions_name_both_ends_and_staying_put_is_allowed() {
        let archived = Workflow {
            status: WorkflowStatus::Archived,
            ..draft()
        };
        let to_draft = WorkflowChanges {
            status: Some(WorkflowStatus::Draft),
            ..WorkflowChanges::default()
        };
        assert_eq!(
            archived.apply(&to_draft),
            Err(LifecycleError::IllegalTransition {
                from: WorkflowStatus::Archived,
                to: WorkflowStatus::Draft
            })
        );
        let stay = WorkflowChanges {
            status: Some(WorkflowStatus::Archived),
            name: Some(WorkflowName::parse("Renamed").unwrap()),
            ..WorkflowChanges::default()
        };
        let renamed = archived.apply(&stay).unwrap();
        assert_eq!(renamed.name.as_str(), "Renamed");
        assert_eq!(renamed.status, WorkflowStatus::Archived);
    }

    #[test]
    fn descriptions_and_name_searches_are_bounded() {
        assert_eq!(Description::parse("  ").unwrap(), None);
        assert_eq!(
            Description::parse(" why ").unwrap().unwrap().as_str(),
            "why"
        );
        assert!(Description::parse(&"x".repeat(10_001)).is_err());
        assert!(NameFragment::parse(" ").is_err());
        assert_eq!(NameFragment::parse(" fund ").unwrap().as_str(), "fund");
        assert!(NameFragment::parse("fu\u{1}nd").is_err());
    }

    proptest! {
        #[test]
        fn parsed_tags_are_unique_trimmed_and_never_more_than_given(raw in prop::collection::vec("[ a-z]{0,10}", 0..40)) {
            if let Ok(tags) = Tags::parse(&raw) {
                let tags = tags.as_slice();
                prop_assert!(tags.len() <= raw.len() && tags.len() <= Tags::MAX_TAGS);
                for (index, tag) in tags.iter().enumerate() {
                    prop_assert_eq!(tag.trim(), tag.as_str());
                    prop_assert!(!tags[index + 1..].contains(tag));
                }
            }
        }
    }
}
