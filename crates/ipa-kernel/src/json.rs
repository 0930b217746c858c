//! Bounded measures of client JSON documents: how large a value is, found without writing more
//! of it than the limit allows, so refusing a huge document costs no more than the limit.

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

#[cfg(test)]
mod tests {
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
