//! Bounded free text: the trimming and length rules every context's names and descriptions
//! share, so a "name" means the same thing everywhere, and the clipping of text quoted back in a
//! message ([`clip`]), so a message never carries more than a few hundred characters of what a
//! client or a callee sent.

/// The longest name of anything (a workflow, an agent, a person) and of a search term for one:
/// the schema's `VARCHAR(255)`.
pub const NAME_MAX_CHARS: usize = 255;

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

/// `text` whole when it has at most `max` characters; otherwise its beginning, `…` and a note
/// saying how long it was (`… (1048729 characters, cut)`), in at most `max` characters all told
/// (the note alone when `max` leaves no room for text). Messages quote what clients and callees
/// sent, which may be any length.
pub fn clip(text: &str, max: usize) -> String {
    let Some((end, _)) = text.char_indices().nth(max) else {
        return text.to_owned();
    };
    // Counted only past the cut: the text is long, and its length is part of the note.
    let total = max + text[end..].chars().count();
    let note = format!("… ({total} characters, cut)");
    let keep = max.saturating_sub(note.chars().count());
    let end = text
        .char_indices()
        .nth(keep)
        .map_or(text.len(), |(at, _)| at);
    format!("{}{note}", &text[..end])
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

    #[test]
    fn clipped_text_says_how_long_it_was_and_fits_its_limit() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("exactly10!", 10), "exactly10!");
        let long = "é".repeat(1_048_729);
        let clipped = clip(&long, 500);
        assert!(
            clipped.ends_with("… (1048729 characters, cut)"),
            "{clipped}"
        );
        assert_eq!(clipped.chars().count(), 500);
        assert!(clipped.starts_with("éé"));
        // No room for text: the note alone.
        assert_eq!(clip("abcdefghij", 3), "… (10 characters, cut)");
    }
}
