//! The execution engine ([`engine`]): workers that claim ready runs, execute their steps (webhook
//! calls through [`webhook`], approvals, LLM agents through [`agent`]) and record every result through
//! the execution context's journal port, which `ipa-store` implements.
//!
//! It also owns the template language of workflow definitions ([`templates`]): the checker the
//! workflow context uses to compile a version's templates and conditions at publish, and the
//! rendering and evaluation the engine uses while a run executes.
//!
//! And it owns the JSON Schemas of agent tools ([`schemas`]): the checker the agent context uses
//! to compile a tool's parameters schema when the tool is configured, and the validation the
//! engine applies to a language model's tool-call arguments before calling the tool. Both live
//! here because the engine is where schemas and templates are used at run time; the contexts only
//! need the checks, through their ports.

pub mod agent;
pub mod engine;
pub mod schemas;
pub mod templates;
pub mod webhook;

pub use agent::{AgentRunner, MAX_TOOL_ROUNDS, OPENAI_BASE_URL};
pub use engine::{Engine, EngineOptions, Signal};
pub use schemas::{JsonSchemas, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH};
use serde_json::Value;
pub use templates::{RenderError, Templates};

pub use webhook::{
    MAX_RESPONSE_BYTES, WebhookClient, WebhookFailure, WebhookRequest, WebhookResponse,
    render_request,
};

/// The most characters of remote text (a provider's, a tool's or a webhook's) quoted in an error
/// or a log line, the note saying it was cut included.
pub(crate) const QUOTE_CHARS: usize = 500;

/// `text` whole when it has at most `max` characters; otherwise its beginning, `…` and a note
/// saying how long it was (`… (1048729 characters, cut)`), in at most `max` characters all told
/// (the note alone when `max` leaves no room for text). Messages quote what clients and callees
/// sent, which may be any length.
pub(crate) fn clip(text: &str, max: usize) -> String {
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

/// `value` as quoted in a log line: whole when its JSON text has at most [`QUOTE_CHARS`]
/// characters; otherwise, cut by [`clip`], a string alone or the JSON text of anything else.
pub(crate) fn clip_value(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(clip(text, QUOTE_CHARS)),
        Value::Array(_) | Value::Object(_) => {
            let text = value.to_string();
            if text.chars().count() <= QUOTE_CHARS {
                value.clone()
            } else {
                Value::String(clip(&text, QUOTE_CHARS))
            }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clipped_text_says_how_long_it_was_and_fits_its_limit() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("exactly10!", 10), "exactly10!");
        let long = "é".repeat(1_048_729);
        let clipped = clip(&long, QUOTE_CHARS);
        assert!(
            clipped.ends_with("… (1048729 characters, cut)"),
            "{clipped}"
        );
        assert_eq!(clipped.chars().count(), QUOTE_CHARS);
        assert!(clipped.starts_with("éé"));
        // No room for text: the note alone.
        assert_eq!(clip("abcdefghij", 3), "… (10 characters, cut)");
    }

    #[test]
    fn quoted_values_stay_json_when_short() {
        assert_eq!(clip_value(&json!({"a": [1, 2]})), json!({"a": [1, 2]}));
        assert_eq!(clip_value(&json!(7)), json!(7));
        let long = json!({"html": "<p>".repeat(1000)});
        let clipped = clip_value(&long);
        let text = clipped.as_str().unwrap();
        assert!(text.starts_with(r#"{"html":"<p><p>"#), "{text}");
        assert!(text.ends_with("characters, cut)"), "{text}");
        assert_eq!(text.chars().count(), QUOTE_CHARS);
    }
}
