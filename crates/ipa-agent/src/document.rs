//! Reading JSON configuration documents member by member, collecting every problem with its JSON
//! pointer instead of stopping at the first, so a client fixes a configuration in one round trip.
//! At most [`MAX_PROBLEMS`] are listed, then one more saying how many were left out.

use serde_json::{Map, Value};

use crate::ports::DocumentProblem;

/// The most problems listed for one document: past it a list helps nobody, and a document full
/// of mistakes would make a very large answer.
pub const MAX_PROBLEMS: usize = 100;

/// Problems found so far in one document: the first [`MAX_PROBLEMS`], and how many more.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    listed: Vec<DocumentProblem>,
    omitted: usize,
}

impl Problems {
    /// Records a problem at `pointer`.
    pub(crate) fn add(&mut self, pointer: &str, message: impl Into<String>) {
        if self.listed.len() < MAX_PROBLEMS {
            self.listed.push(DocumentProblem {
                pointer: pointer.to_owned(),
                message: message.into(),
            });
        } else {
            self.omitted += 1;
        }
    }

    /// Records problems reported relative to the document at `prefix`.
    pub(crate) fn extend_at(&mut self, prefix: &str, problems: Vec<DocumentProblem>) {
        for problem in problems {
            self.add(&format!("{prefix}{}", problem.pointer), problem.message);
        }
    }

    /// How many so far, listed or not: compare before and after reading a part to know whether
    /// it had any.
    pub(crate) fn count(&self) -> usize {
        self.listed.len() + self.omitted
    }

    /// `value` when no problem was found, else the problems listed and, past
    /// [`MAX_PROBLEMS`], one more (at `""`) counting the others.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, Vec<DocumentProblem>> {
        match value {
            Some(value) if self.count() == 0 => Ok(value),
            _ => Err(self.into_vec()),
        }
    }

    /// The problems listed, then one counting those that were not.
    pub(crate) fn into_vec(self) -> Vec<DocumentProblem> {
        let mut listed = self.listed;
        if self.omitted > 0 {
            listed.push(DocumentProblem {
                pointer: String::new(),
                message: format!(
                    "{} more problems are not listed; fix these first",
                    self.omitted
                ),
            });
        }
        listed
    }
}

/// `base` extended by one member name, escaped per RFC 6901; the JSON type of a value, for
/// messages.
pub(crate) use ipa_kernel::json::{child_pointer as child, type_name};

/// An object's members, read one by one; members nobody asked for are reported by
/// [`Object::finish`], so a misspelt setting is an error rather than silently ignored.
pub(crate) struct Object<'a> {
    members: &'a Map<String, Value>,
    pointer: String,
    known: Vec<&'static str>,
}

impl<'a> Object<'a> {
    /// `value` as an object at `pointer`, or a problem saying what it should be.
    pub(crate) fn read(
        value: &'a Value,
        pointer: &str,
        what: &str,
        problems: &mut Problems,
    ) -> Option<Self> {
        match value.as_object() {
            Some(members) => Some(Self {
                members,
                pointer: pointer.to_owned(),
                known: Vec::new(),
            }),
            None => {
                problems.add(
                    pointer,
                    format!("{what} must be a JSON object, not {}", type_name(value)),
                );
                None
            }
        }
    }

    /// The pointer of member `key`.
    pub(crate) fn at(&self, key: &str) -> String {
        child(&self.pointer, key)
    }

    /// Member `key`, if present (and not null).
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.members.get(key).filter(|value| !value.is_null())
    }

    /// Member `key`, which must be present.
    pub(crate) fn required(
        &mut self,
        key: &'static str,
        problems: &mut Problems,
    ) -> Option<&'a Value> {
        let value = self.get(key);
        if value.is_none() {
            problems.add(&self.at(key), format!("`{key}` is required"));
        }
        value
    }

    /// String member `key`, which must be present.
    pub(crate) fn required_str(
        &mut self,
        key: &'static str,
        problems: &mut Problems,
    ) -> Option<&'a str> {
        let value = self.required(key, problems)?;
        self.as_str(key, value, problems)
    }

    /// String member `key`, if present.
    pub(crate) fn optional_str(
        &mut self,
        key: &'static str,
        problems: &mut Problems,
    ) -> Option<&'a str> {
        let value = self.get(key)?;
        self.as_str(key, value, problems)
    }

    fn as_str(&self, key: &str, value: &'a Value, problems: &mut Problems) -> Option<&'a str> {
        let text = value.as_str();
        if text.is_none() {
            problems.add(
                &self.at(key),
                format!("`{key}` must be a string, not {}", type_name(value)),
            );
        }
        text
    }

    /// Whole-number member `key` in `range`, `default` when absent.
    pub(crate) fn integer_or(
        &mut self,
        key: &'static str,
        range: std::ops::RangeInclusive<u32>,
        default: u32,
        problems: &mut Problems,
    ) -> Option<u32> {
        let Some(value) = self.get(key) else {
            return Some(default);
        };
        let number = value
            .as_u64()
            .and_then(|number| u32::try_from(number).ok())
            .filter(|number| range.contains(number));
        if number.is_none() {
            problems.add(
                &self.at(key),
                format!(
                    "`{key}` must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            );
        }
        number
    }

    /// Reports every member that was not asked for.
    pub(crate) fn finish(self, problems: &mut Problems) {
        let mut unknown: Vec<&String> = self
            .members
            .keys()
            .filter(|key| !self.known.contains(&key.as_str()))
            .collect();
        unknown.sort();
        let expected = {
            let mut known = self.known.clone();
            known.sort_unstable();
            known.dedup();
            known.join(", ")
        };
        for key in unknown {
            problems.add(
                &child(&self.pointer, key),
                format!("unknown member `{key}`; expected: {expected}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_members_are_reported_with_what_was_expected() {
        let mut problems = Problems::default();
        let value = json!({"base_url": "x", "baseurl": "y"});
        let mut object = Object::read(&value, "/provider", "provider", &mut problems).unwrap();
        assert_eq!(object.optional_str("base_url", &mut problems), Some("x"));
        object.finish(&mut problems);
        let problems = problems.finish(Some(())).unwrap_err();
        assert_eq!(problems[0].pointer, "/provider/baseurl");
        assert!(problems[0].message.contains("expected: base_url"));
    }

    #[test]
    fn problems_past_the_cap_are_counted_not_listed() {
        let mut problems = Problems::default();
        for index in 0..250 {
            problems.add(&format!("/{index}"), "bad");
        }
        assert_eq!(problems.count(), 250);
        let listed = problems.finish(Some(())).unwrap_err();
        assert_eq!(listed.len(), MAX_PROBLEMS + 1);
        assert_eq!(listed[MAX_PROBLEMS - 1].pointer, "/99");
        assert_eq!(listed[MAX_PROBLEMS].pointer, "");
        assert_eq!(
            listed[MAX_PROBLEMS].message,
            "150 more problems are not listed; fix these first"
        );
    }

    #[test]
    fn pointers_escape_member_names() {
        assert_eq!(child("/headers", "a/b~c"), "/headers/a~1b~0c");
    }
}
