//! The values a workflow is made of (name, tags, metadata) and its lifecycle's transitions.

use serde_json::Value;

use crate::WorkflowStatus;

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
}

/// A workflow's name: trimmed, 1 to 255 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowName(String);

impl WorkflowName {
    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, WorkflowValueError> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if (1..=255).contains(&length) && !trimmed.chars().any(char::is_control) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(WorkflowValueError::Name)
        }
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
}

/// A workflow's metadata: a JSON object of at most 64 KiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata(Value);

impl Metadata {
    /// The largest metadata document, serialised.
    pub const MAX_BYTES: usize = 64 * 1024;

    /// Parses metadata.
    pub fn parse(value: Value) -> Result<Self, WorkflowValueError> {
        let small = serde_json::to_vec(&value)
            .map(|bytes| bytes.len() <= Self::MAX_BYTES)
            .unwrap_or(false);
        if value.is_object() && small {
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
