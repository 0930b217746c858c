//! Reading what a model provider answered, liberally: OpenAI, Azure OpenAI and the many
//! OpenAI-compatible servers (vLLM, Ollama, LiteLLM, llama.cpp, TGI, Together, Groq...) each
//! leave out, add or spell differently some part of a chat completion.
//!
//! This module owns what an answer must hold to be used (a first choice whose message has content
//! or tool calls) and the defaults for everything else: no `id`, `object`, `created` or `model`
//! is needed; `usage` may lack any count (a missing total is the sum of the parts); unknown
//! `finish_reason` values are kept as text; a tool call needs only a function name (its id is
//! generated when missing, since the result must name it; `arguments` may be JSON text or a JSON
//! value); JSON is read whatever the content type it came with. An answer that cannot be used
//! says why in the provider's own words when it gave some (an `error` object in a 2xx answer), and
//! a model that returned nothing because of a content filter or a refusal says so. Remote text in
//! these reasons is clipped ([`crate::clip`]).
//!
//! The wire types are this module's own serde types, every field optional and read leniently (a
//! member of an unexpected type counts as absent), rather than `async-openai`'s response type,
//! which refuses whatever the OpenAI specification does not allow.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::calls::provider_message;
use super::record::Usage;
use crate::QUOTE_CHARS;
use crate::outbound::OutboundResponse;

/// What one model call answered, as far as it could be read.
#[derive(Debug, PartialEq)]
pub(crate) struct Reply {
    /// The tokens counted, when the answer says.
    pub usage: Option<Usage>,
    /// Why the model stopped, as the provider spells it.
    pub finish_reason: Option<String>,
    /// The model's turn, or why it cannot be used: a clause following the provider's name
    /// ("answered without any choice").
    pub turn: Result<Turn, String>,
}

/// A model's usable turn.
#[derive(Debug, PartialEq)]
pub(crate) enum Turn {
    /// It answered in words.
    Answer(String),
    /// It called functions (with words beside them, perhaps).
    Calls {
        /// What it said with the calls.
        content: Option<String>,
        /// The calls, in order.
        calls: Vec<ToolCall>,
    },
}

/// A function call asked for by a model.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ToolCall {
    /// The call's id: the provider's, or generated when it gave none (or one already used in the
    /// same answer).
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments as JSON text (a JSON value given in their place is written as text; none
    /// is `{}`).
    pub arguments: String,
}

/// Reads a chat-completions answer (a 2xx response).
pub(crate) fn read_completion(response: &OutboundResponse) -> Reply {
    let body = match json_body(response) {
        Ok(body) => body,
        Err(reason) => {
            return Reply {
                usage: None,
                finish_reason: None,
                turn: Err(reason),
            };
        }
    };
    let wire: WireCompletion = WireCompletion::deserialize(&body).unwrap_or_default();
    let usage = wire.usage.map(|usage| {
        Usage::new(
            usage.prompt_tokens.unwrap_or(0),
            usage.completion_tokens.unwrap_or(0),
            usage.total_tokens,
        )
    });
    let choice = wire.choices.and_then(|choices| choices.into_iter().next());
    let Some(choice) = choice else {
        return Reply {
            usage,
            finish_reason: None,
            turn: Err(no_choice(response.status, &body)),
        };
    };
    let finish_reason = choice.finish_reason;
    let message = choice.message.unwrap_or_default();
    let content = message.content.as_ref().and_then(content_text);
    let calls = tool_calls(message.tool_calls.unwrap_or_default());
    let turn = if !calls.is_empty() {
        Ok(Turn::Calls { content, calls })
    } else if let Some(content) = content {
        Ok(Turn::Answer(content))
    } else {
        Err(no_content(
            message.refusal.as_deref(),
            finish_reason.as_deref(),
        ))
    };
    Reply {
        usage,
        finish_reason,
        turn,
    }
}

/// The JSON object of a 2xx answer, whatever content type it came with; or why there is none.
pub(crate) fn json_body(response: &OutboundResponse) -> Result<Value, String> {
    let parsed;
    let body = match &response.body {
        Value::Null => return Err(format!("answered HTTP {} with no body", response.status)),
        // A body over the client's cap was cut: whatever it was, it cannot be read whole.
        body if response.truncated => {
            let text = match body {
                Value::String(text) => crate::clip(text.trim(), QUOTE_CHARS),
                other => crate::clip(&other.to_string(), QUOTE_CHARS),
            };
            return Err(format!(
                "answered HTTP {} with a body larger than the {} bytes read, which cannot be a \
                 usable answer: {text}",
                response.status, response.bytes
            ));
        }
        // Served as text (`text/plain`, `text/html`...): JSON all the same, perhaps.
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                parsed = value;
                &parsed
            }
            Err(_) => {
                return Err(format!(
                    "answered HTTP {} with text that is not JSON: {}",
                    response.status,
                    crate::clip(text.trim(), QUOTE_CHARS)
                ));
            }
        },
        other => other,
    };
    if body.is_object() {
        Ok(body.clone())
    } else {
        Err(format!(
            "answered HTTP {} with JSON that is not an object: {}",
            response.status,
            crate::clip(&body.to_string(), QUOTE_CHARS)
        ))
    }
}

/// An `error` member in a 2xx answer, in the provider's own words: `Some` when there is one.
pub(crate) fn embedded_error(status: u16, body: &Value) -> Option<String> {
    let error = body.get("error").filter(|error| !error.is_null())?;
    let text =
        provider_message(body).unwrap_or_else(|| crate::clip(&error.to_string(), QUOTE_CHARS));
    Some(format!("answered HTTP {status} with an error: {text}"))
}

/// Why an answer has no first choice.
fn no_choice(status: u16, body: &Value) -> String {
    if let Some(error) = embedded_error(status, body) {
        return error;
    }
    match body.get("choices") {
        Some(Value::Array(choices)) if choices.is_empty() => {
            "answered with an empty list of choices".to_owned()
        }
        Some(_) => format!(
            "answered with `choices` that is not a list of choices: {}",
            crate::clip(&body.to_string(), QUOTE_CHARS)
        ),
        None => format!(
            "answered JSON that is not a chat completion (it has no `choices`): {}",
            crate::clip(&body.to_string(), QUOTE_CHARS)
        ),
    }
}

/// Why a first message with neither content nor tool calls cannot be used.
fn no_content(refusal: Option<&str>, finish_reason: Option<&str>) -> String {
    if let Some(refusal) = refusal.map(str::trim).filter(|text| !text.is_empty()) {
        return format!("refused to answer: {}", crate::clip(refusal, QUOTE_CHARS));
    }
    match finish_reason {
        Some("content_filter") => "returned no content: the provider's content filter withheld \
                                   the answer (finish_reason `content_filter`)"
            .to_owned(),
        Some("length") => "returned no content before reaching the answer limit \
                           (finish_reason `length`); raise the agent's max_tokens"
            .to_owned(),
        Some(reason) => format!(
            "answered with neither content nor tool calls (finish_reason `{}`)",
            crate::clip(reason, 60)
        ),
        None => "answered with neither content nor tool calls".to_owned(),
    }
}

/// A message's content as text: a string, or the text parts of a list of parts; `None` when
/// there is no text.
fn content_text(content: &Value) -> Option<String> {
    let text = match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(text) => Some(text.as_str()),
                part => part.get("text").and_then(Value::as_str),
            })
            .collect(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// The function calls among `wire`, with an id each, distinct within the answer.
fn tool_calls(wire: Vec<WireToolCall>) -> Vec<ToolCall> {
    let mut seen = HashSet::new();
    let mut calls = Vec::with_capacity(wire.len());
    for call in wire {
        // Other kinds of calls (`custom` tools) are never offered; a call with a `function`
        // is one whatever its `type` says.
        let Some(function) = call.function else {
            continue;
        };
        let id = call
            .id
            .filter(|id| !id.is_empty() && !seen.contains(id))
            .unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple()));
        seen.insert(id.clone());
        let arguments = match function.arguments {
            None | Some(Value::Null) => "{}".to_owned(),
            Some(Value::String(text)) => text,
            Some(value) => value.to_string(),
        };
        calls.push(ToolCall {
            id,
            name: function.name.unwrap_or_default(),
            arguments,
        });
    }
    calls
}

/// `Some(value)` when the member reads as a `T`, `None` when it is absent, null or of another
/// shape: one odd member never makes a whole answer unreadable.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// A token count: an integer, or a whole number written as a float (`12.0`).
fn count<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    Ok(value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|float| float.is_finite() && *float >= 0.0 && float.fract() == 0.0)
            // Checked whole and non-negative; saturates past u64::MAX.
            .map(|float| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let whole = float as u64;
                whole
            })
    }))
}

#[derive(Debug, Default, Deserialize)]
struct WireCompletion {
    #[serde(default, deserialize_with = "lenient")]
    choices: Option<Vec<WireChoice>>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default, deserialize_with = "lenient")]
    message: Option<WireMessage>,
    #[serde(default, deserialize_with = "lenient")]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default, deserialize_with = "lenient")]
    refusal: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    function: Option<WireFunction>,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    #[serde(default, deserialize_with = "lenient")]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default, deserialize_with = "count")]
    prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    completion_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    total_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(body: Value) -> OutboundResponse {
        OutboundResponse {
            status: 200,
            body,
            truncated: false,
            bytes: 0,
            retry_after: None,
        }
    }

    fn read(body: Value) -> Reply {
        read_completion(&response(body))
    }

    fn reason(body: Value) -> String {
        read(body).turn.unwrap_err()
    }

    #[test]
    fn only_a_choice_with_content_is_needed() {
        let reply = read(json!({"choices": [{"message": {"content": "Hi."}}]}));
        assert_eq!(
            reply,
            Reply {
                usage: None,
                finish_reason: None,
                turn: Ok(Turn::Answer("Hi.".to_owned())),
            }
        );
    }

    #[test]
    fn odd_members_are_kept_or_ignored_never_refused() {
        let reply = read(json!({
            "id": 7, "object": null, "created": "yesterday", "service_tier": "on_demand",
            "system_fingerprint": null, "x_groq": {"id": "req_1"},
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "eos_token",
                         "message": {"role": "assistant", "content": "Done.", "tool_calls": null,
                                     "reasoning_content": "hmm"}}],
            "usage": {"prompt_tokens": 12.0, "completion_tokens": 3, "queue_time": 0.01,
                      "prompt_tokens_details": {"cached_tokens": 0}}
        }));
        assert_eq!(reply.finish_reason.as_deref(), Some("eos_token"));
        assert_eq!(reply.usage, Some(Usage::new(12, 3, None)));
        assert_eq!(reply.usage.unwrap().total_tokens, 15);
        assert_eq!(reply.turn, Ok(Turn::Answer("Done.".to_owned())));
        // A count of the wrong type counts as absent.
        let reply = read(json!({"choices": [{"message": {"content": "x"}}],
                                "usage": {"prompt_tokens": "many", "total_tokens": 9}}));
        assert_eq!(reply.usage, Some(Usage::new(0, 0, Some(9))));
    }

    #[test]
    fn content_given_as_parts_is_joined() {
        let reply = read(json!({"choices": [{"message": {"content": [
            {"type": "text", "text": "Hello, "}, {"type": "image_url"}, {"type": "text", "text": "world."}]}}]}));
        assert_eq!(reply.turn, Ok(Turn::Answer("Hello, world.".to_owned())));
    }

    #[test]
    fn tool_calls_get_ids_and_arguments_as_text() {
        let reply = read(
            json!({"choices": [{"finish_reason": "tool_calls", "message": {
            "content": "Looking.",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{\"id\": 1}"}},
                {"function": {"name": "lookup", "arguments": {"id": 2}}},
                {"id": "call_a", "function": {"name": "query"}},
                {"id": "", "type": "function", "function": {"name": "peek", "arguments": null}},
                {"id": "x", "type": "custom", "custom": {"name": "grammar", "input": "..."}}
            ]}}]}),
        );
        let Ok(Turn::Calls { content, calls }) = reply.turn else {
            panic!("{reply:?}");
        };
        assert_eq!(content.as_deref(), Some("Looking."));
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lookup", "lookup", "query", "peek"]);
        assert_eq!(calls[0].id, "call_a");
        assert_eq!(calls[0].arguments, r#"{"id": 1}"#);
        assert_eq!(calls[1].arguments, r#"{"id":2}"#);
        assert_eq!(calls[2].arguments, "{}");
        assert_eq!(calls[3].arguments, "{}");
        let ids: HashSet<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), 4, "ids repeat: {calls:?}");
        assert!(calls[1].id.starts_with("call_") && calls[1].id.len() > 10);
    }

    #[test]
    fn json_served_as_text_is_read() {
        let text = json!({"choices": [{"message": {"content": "ok"}}]}).to_string();
        assert_eq!(
            read(Value::String(text)).turn,
            Ok(Turn::Answer("ok".to_owned()))
        );
    }

    #[test]
    fn an_error_in_a_2xx_answer_is_the_providers_own_words() {
        assert_eq!(
            reason(json!({"error": {"message": "Upstream model overloaded", "code": 503}})),
            "answered HTTP 200 with an error: Upstream model overloaded"
        );
        assert_eq!(
            reason(json!({"error": "model 'x' not found", "object": "error"})),
            "answered HTTP 200 with an error: model 'x' not found"
        );
        assert_eq!(
            reason(json!({"error": {"code": 42}})),
            r#"answered HTTP 200 with an error: {"code":42}"#
        );
        // A usable choice wins over an `error: null`.
        assert!(
            read(json!({"error": null, "choices": [{"message": {"content": "a"}}]}))
                .turn
                .is_ok()
        );
    }

    #[test]
    fn unusable_answers_say_why_clipped() {
        let page = format!("<html>{}</html>", "<p>busy</p>".repeat(100_000));
        let why = reason(Value::String(page.clone()));
        assert!(
            why.starts_with("answered HTTP 200 with text that is not JSON: <html><p>busy"),
            "{why}"
        );
        assert!(
            why.ends_with(&format!("… ({} characters, cut)", page.len())),
            "{why}"
        );
        assert!(why.chars().count() < QUOTE_CHARS + 100, "{why}");

        let mut cut = response(Value::String(page[..1_048_576].to_owned()));
        cut.truncated = true;
        cut.bytes = 1_048_576;
        let why = read_completion(&cut).turn.unwrap_err();
        assert!(why.contains("larger than the 1048576 bytes read"), "{why}");
        assert!(why.contains(": <html><p>busy"), "{why}");
        assert!(why.ends_with("… (1048576 characters, cut)"), "{why}");

        assert_eq!(reason(Value::Null), "answered HTTP 200 with no body");
        assert!(reason(json!([1])).contains("not an object"));
        assert_eq!(
            reason(json!({"choices": []})),
            "answered with an empty list of choices"
        );
        let why = reason(json!({"result": "x".repeat(5000)}));
        assert!(
            why.starts_with("answered JSON that is not a chat completion (it has no `choices`)"),
            "{why}"
        );
        assert!(why.chars().count() < QUOTE_CHARS + 100, "{why}");
        assert!(reason(json!({"choices": "none"})).contains("not a list of choices"));
        assert_eq!(
            reason(json!({"choices": [{"message": {"content": ""}, "finish_reason": "stop"}]})),
            "answered with neither content nor tool calls (finish_reason `stop`)"
        );
        assert_eq!(
            reason(json!({"choices": [{"message": {"tool_calls": []}}]})),
            "answered with neither content nor tool calls"
        );
    }

    #[test]
    fn refusals_and_content_filters_say_so() {
        let reply = read(json!({"choices": [{"finish_reason": "content_filter",
                                             "message": {"role": "assistant", "content": null}}],
                                "usage": {"prompt_tokens": 9, "completion_tokens": 0}}));
        assert_eq!(reply.usage, Some(Usage::new(9, 0, None)));
        let why = reply.turn.unwrap_err();
        assert!(
            why.contains("content filter") && why.contains("content_filter"),
            "{why}"
        );
        assert_eq!(
            reason(json!({"choices": [{"finish_reason": "stop", "message": {
                "content": null, "refusal": "I can't help with that."}}]})),
            "refused to answer: I can't help with that."
        );
        let why = reason(json!({"choices": [{"finish_reason": "length", "message": {}}]}));
        assert!(why.contains("max_tokens"), "{why}");
        // Content filtered after some content: the content is the answer.
        assert_eq!(
            read(json!({"choices": [{"finish_reason": "content_filter", "message": {"content": "Part"}}]})).turn,
            Ok(Turn::Answer("Part".to_owned()))
        );
    }
}
