//! The execution engine ([`engine`]): workers that claim ready runs, execute their steps
//! (approvals, webhook calls, LLM agents through [`agent`]) and record every result through the
//! execution context's journal port, which `ipa-store` implements.
//!
//! Every outbound HTTP call (webhook steps, model providers, agent tools) goes through one
//! [`OutboundClient`] ([`outbound`]), which the server builds and hands to the [`Engine`], and is
//! retried by one [`RetryPolicy`] ([`retry`]). Templates are rendered and tool arguments
//! validated with `ipa-template`, which the API shares to check definitions and tools when they
//! are written.

pub mod agent;
pub mod engine;
pub mod outbound;
pub mod retry;

pub use agent::{AgentRunner, MAX_TOOL_ROUNDS, OPENAI_BASE_URL};
pub use engine::webhook::render_request;
pub use engine::{Engine, EngineOptions, Signal};
pub use outbound::{
    MAX_RESPONSE_BYTES, OutboundClient, OutboundFailure, OutboundRequest, OutboundResponse,
};
pub use retry::{RetryPolicy, Retryable};
use serde_json::Value;

/// The most characters of remote text (a provider's, a tool's or a webhook's) quoted in an error
/// or a log line, the note saying it was cut included.
pub(crate) const QUOTE_CHARS: usize = 500;

/// Clipping of quoted remote text, shared with the JSON Schemas' messages.
pub(crate) use ipa_kernel::text::clip;

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
