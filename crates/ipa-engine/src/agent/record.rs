//! What an agent step writes down while it runs: log lines sent to the engine as they happen (so
//! people watching the run see each model and tool call live), token usage added up across the
//! conversation, and the redaction that keeps every secret revealed for the step out of its
//! log lines, its output and its error.

use std::sync::{Mutex, PoisonError};

use ipa_execution::{LogLevel, NewLogLine};
use ipa_kernel::ExecutionStepId;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

/// Shorter secrets are not redacted: replacing every occurrence of a two-letter string would
/// mangle the record, and configurations do not hold credentials that short.
const MIN_REDACTED_CHARS: usize = 4;

/// What replaces a secret.
const REDACTED: &str = "[redacted]";

/// Sends an agent step's log lines to the engine, redacted.
pub(crate) struct Recorder {
    step: ExecutionStepId,
    lines: mpsc::UnboundedSender<NewLogLine>,
    secrets: Mutex<Vec<String>>,
}

impl Recorder {
    /// A recorder of lines about `step`.
    pub fn new(step: ExecutionStepId, lines: mpsc::UnboundedSender<NewLogLine>) -> Self {
        Self {
            step,
            lines,
            secrets: Mutex::default(),
        }
    }

    /// From now on, `secret` never appears in what this recorder lets out.
    pub fn hide(&self, secret: &str) {
        if secret.chars().count() >= MIN_REDACTED_CHARS {
            let mut secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
            if !secrets.iter().any(|known| known == secret) {
                secrets.push(secret.to_owned());
                // Longer first, so a secret containing another is replaced whole.
                secrets.sort_by_key(|known| std::cmp::Reverse(known.len()));
            }
        }
    }

    /// A log line about the step.
    pub fn line(&self, level: LogLevel, message: impl AsRef<str>, context: Value) {
        let line = NewLogLine::step(
            self.step,
            level,
            self.redact_text(message.as_ref()),
            self.redact(context),
        );
        // The receiver is gone only when the step was interrupted; the line has no reader then.
        let _ = self.lines.send(line);
    }

    /// `text` with every hidden secret replaced.
    pub fn redact_text(&self, text: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = text.to_owned();
        for secret in secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }

    /// `value` with every hidden secret replaced in its strings and member names.
    pub fn redact(&self, value: Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.redact_text(&text)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.redact(v)).collect())
            }
            Value::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(name, member)| (self.redact_text(&name), self.redact(member)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Tokens used, as providers count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Usage {
    /// Tokens read.
    pub prompt_tokens: u64,
    /// Tokens written.
    pub completion_tokens: u64,
    /// Both.
    pub total_tokens: u64,
}

impl Usage {
    /// Usage as reported; a missing total is the sum of the parts.
    pub fn new(prompt_tokens: u64, completion_tokens: u64, total_tokens: Option<u64>) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: total_tokens.unwrap_or(prompt_tokens + completion_tokens),
        }
    }

    /// Adds `other` in.
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// What a conversation cost, in calls and tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Tokens over every model call.
    pub usage: Usage,
    /// Model calls that answered (custom endpoint turns included).
    pub model_calls: u32,
    /// Tool calls made.
    pub tool_calls: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_in_messages_contexts_and_names() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let recorder = Recorder::new(ExecutionStepId::new_random(), sender);
        recorder.hide("sk-abc");
        recorder.hide("sk-abcdef");
        recorder.hide("ab");
        recorder.line(
            LogLevel::Info,
            "key sk-abcdef and sk-abc",
            json!({"sk-abc": ["Bearer sk-abc", 1], "ab": "ab"}),
        );
        let line = receiver.try_recv().unwrap();
        assert_eq!(line.message, "key [redacted] and [redacted]");
        assert_eq!(
            line.context,
            json!({"[redacted]": ["Bearer [redacted]", 1], "ab": "ab"})
        );
    }

    #[test]
    fn usage_adds_up() {
        let mut total = Usage::default();
        total.add(Usage::new(10, 5, None));
        total.add(Usage::new(1, 2, Some(4)));
        assert_eq!(total, Usage::new(11, 7, Some(19)));
    }
}
