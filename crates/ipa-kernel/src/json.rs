//! Client JSON documents: bounded measures (how large a value is, found without writing more of
//! it than the limit allows, so refusing a huge document costs no more than the limit), and the
//! words messages use to point at a member and name a value's type without quoting it.

use std::io;

use serde_json::Value;

/// Whether `value` serializes to at most `limit` bytes of compact JSON. Stops writing as soon as
/// it would not, so measuring a large value costs no more than the limit.
pub fn serialized_within(value: &Value, limit: usize) -> bool {
    /// A writer that only counts, and fails past its budget.
    struct Budget(usize);

    impl io::Write for Budget {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 = self
                .0
                .checked_sub(buf.len())
                .ok_or_else(|| io::Error::other("over budget"))?;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    serde_json::to_writer(Budget(limit), value).is_ok()
}

/// `base` (a JSON pointer) extended by one member name, escaped per RFC 6901 (`~` as `~0`, `/` as
/// `~1`).
pub fn child_pointer(base: &str, member: &str) -> String {
    format!("{base}/{}", member.replace('~', "~0").replace('/', "~1"))
}

/// The JSON type of `value` with its article ("a string", "an object", "null"), for messages that
/// must not quote the value itself.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn member_names_are_escaped_in_pointers() {
        assert_eq!(child_pointer("/a", "b/c~d"), "/a/b~1c~0d");
        assert_eq!(child_pointer("", "x"), "/x");
        assert_eq!(type_name(&Value::Bool(true)), "a boolean");
    }
    use super::*;
    use serde_json::json;

    #[test]
    fn the_limit_is_the_compact_size_inclusive() {
        let value = json!({"a": [1, 2]});
        let size = value.to_string().len();
        assert!(serialized_within(&value, size));
        assert!(!serialized_within(&value, size - 1));
        assert!(serialized_within(&json!(null), 4));
        assert!(!serialized_within(&json!("x".repeat(1_000_000)), 10));
    }
}
