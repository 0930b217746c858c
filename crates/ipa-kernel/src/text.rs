//! Bounded free text from clients: the trimming and length rules every context's names and
//! descriptions share, so a "name" means the same thing everywhere.

/// `raw` trimmed, if it has 1 to `max_chars` characters and no control characters: the rule of
/// every name.
pub fn required_text(raw: &str, max_chars: usize) -> Option<String> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    ((1..=max_chars).contains(&length) && !trimmed.chars().any(char::is_control))
        .then(|| trimmed.to_owned())
}

/// `raw` trimmed: `Some(None)` when nothing is left, `Some(Some(text))` when it has at most
/// `max_chars` characters, `None` when it is longer. The rule of descriptions and summaries
/// (which may hold line breaks).
pub fn optional_text(raw: &str, max_chars: usize) -> Option<Option<String>> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > max_chars {
        None
    } else if trimmed.is_empty() {
        Some(None)
    } else {
        Some(Some(trimmed.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(required_text("  a b ", 3), Some("a b".to_owned()));
        assert_eq!(required_text("   ", 3), None);
        assert_eq!(required_text("abcd", 3), None);
        assert_eq!(required_text("a\u{7}b", 3), None);
        assert_eq!(required_text("été", 3), Some("été".to_owned()));
    }

    #[test]
    fn optional_text_tells_empty_from_too_long() {
        assert_eq!(optional_text(" \n ", 3), Some(None));
        assert_eq!(
            optional_text(" ab\ncd ", 5),
            Some(Some("ab\ncd".to_owned()))
        );
        assert_eq!(optional_text("abcd", 3), None);
    }
}
