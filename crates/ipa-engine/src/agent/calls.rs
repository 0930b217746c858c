//! Outbound calls of agent steps that may be retried: model providers and `custom` agent
//! endpoints. This module owns where a provider's chat-completions endpoint is and how it is
//! authenticated (OpenAI, Azure OpenAI, OpenAI-compatible servers), the attempts of one call
//! under [`RetryPolicy::MODEL_CALLS`] (HTTP 429 and 5xx, and failed connections, are tried again
//! after the wait the endpoint asks for in `Retry-After`/`retry-after-ms`, or an exponential
//! backoff), and the message a failure ends with (the provider's own, never a header value).

use std::time::{Duration, Instant};

use ipa_agent::{PlainSecret, Provider};
use ipa_execution::LogLevel;
use ipa_workflow::definition::HttpMethod;
use serde_json::{Value, json};

use super::record::Recorder;
use crate::outbound::{OutboundClient, OutboundFailure, OutboundRequest, OutboundResponse};
use crate::retry::{Attempts, RetryPolicy};

/// How long one model call may take when neither the step nor the run sets a shorter limit.
pub(crate) const MODEL_CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a provider's chat-completions endpoint is and how it is called.
pub(crate) struct ChatEndpoint {
    /// The full URL.
    pub url: String,
    /// Authentication and organization headers (values are secrets).
    pub headers: Vec<(String, String)>,
    /// The provider's label, for log lines.
    pub provider: &'static str,
    /// Whether the answer limit is sent as `max_completion_tokens` (OpenAI and Azure, whose
    /// reasoning models refuse `max_tokens`) or as `max_tokens` (what OpenAI-compatible servers
    /// understand).
    pub completion_tokens_field: bool,
}

impl ChatEndpoint {
    /// The endpoint of `provider`; `openai_base_url` is OpenAI's API root (configurable for
    /// proxies and tests).
    pub fn of(provider: &Provider<PlainSecret>, openai_base_url: &str) -> Self {
        match provider {
            Provider::OpenAi {
                api_key,
                organization,
            } => {
                let mut headers = vec![bearer(api_key)];
                if let Some(organization) = organization {
                    headers.push(("OpenAI-Organization".to_owned(), organization.clone()));
                }
                Self {
                    url: format!("{}/chat/completions", openai_base_url.trim_end_matches('/')),
                    headers,
                    provider: "openai",
                    completion_tokens_field: true,
                }
            }
            Provider::AzureOpenAi {
                endpoint,
                deployment,
                api_version,
                api_key,
            } => Self {
                url: format!(
                    "{}/openai/deployments/{}/chat/completions?api-version={}",
                    endpoint.as_str().trim_end_matches('/'),
                    percent_encode(deployment),
                    percent_encode(api_version),
                ),
                headers: vec![("api-key".to_owned(), api_key.expose().to_owned())],
                provider: "azure_openai",
                completion_tokens_field: true,
            },
            Provider::OpenAiCompatible { base_url, api_key } => Self {
                url: format!(
                    "{}/chat/completions",
                    base_url.as_str().trim_end_matches('/')
                ),
                headers: api_key.iter().map(bearer).collect(),
                provider: "openai_compatible",
                completion_tokens_field: false,
            },
        }
    }
}

fn bearer(key: &PlainSecret) -> (String, String) {
    (
        "Authorization".to_owned(),
        format!("Bearer {}", key.expose()),
    )
}

/// `text` percent-encoded for a path segment or a query value: everything but RFC 3986's
/// unreserved characters.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A successful call.
pub(crate) struct Answered {
    /// The response (2xx).
    pub response: OutboundResponse,
    /// How long the successful attempt took, in milliseconds.
    pub latency_ms: u64,
    /// Which attempt it was, from 1.
    pub attempt: u32,
}

/// Posts `body` to `url` with `headers`, retrying what may succeed later; every failed attempt
/// is a warning line (`what` names the callee in it, `detail` is merged into its context).
/// `limit` is when the step or run runs out of time: no retry waits past it. Calls keep their
/// own timeout; the engine alone stops the conversation at the limit, so a step cut short always
/// fails for its limit.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn post_with_retries(
    client: &OutboundClient,
    url: &str,
    headers: &[(String, String)],
    body: Value,
    timeout: Duration,
    limit: Option<Instant>,
    what: &str,
    detail: &Value,
    recorder: &Recorder,
) -> Result<Answered, String> {
    let request = OutboundRequest {
        method: HttpMethod::Post,
        url: url.to_owned(),
        headers: headers.to_vec(),
        body: Some(body),
        idempotency_key: None,
    };
    RetryPolicy::MODEL_CALLS
        .run(ModelCall {
            client,
            request,
            timeout,
            limit,
            what,
            detail,
            recorder,
            latency_ms: 0,
        })
        .await
}

/// The attempts of one model or endpoint call, each failed one a line of the step's log.
struct ModelCall<'a> {
    client: &'a OutboundClient,
    request: OutboundRequest,
    timeout: Duration,
    limit: Option<Instant>,
    what: &'a str,
    detail: &'a Value,
    recorder: &'a Recorder,
    /// How long the last attempt took, in milliseconds.
    latency_ms: u64,
}

impl ModelCall<'_> {
    /// The message of failed attempt `attempt` and the context of its log line.
    fn describe(&self, attempt: u32, mut failure: OutboundFailure) -> (String, Value) {
        let status = match &failure {
            OutboundFailure::Status(response) => Some(response.status),
            _ => None,
        };
        // Secrets are hidden before the provider's message is cut, so no cut splits one.
        if let OutboundFailure::Status(response) = &mut failure {
            response.body = self.recorder.redact(std::mem::take(&mut response.body));
        }
        let message = failure_message(self.what, &failure);
        let mut context = json!({
            "attempt": attempt,
            "latency_ms": self.latency_ms,
            "status_code": status,
            "error": message,
        });
        merge(&mut context, self.detail);
        (message, context)
    }
}

impl Attempts for ModelCall<'_> {
    type Success = OutboundResponse;
    type Outcome = Result<Answered, String>;

    async fn attempt(
        &mut self,
        _attempt: u32,
    ) -> Result<Result<OutboundResponse, OutboundFailure>, Self::Outcome> {
        let began = Instant::now();
        let result = self.client.call(&self.request, self.timeout).await;
        self.latency_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(result)
    }

    fn may_retry(&self, _failure: &OutboundFailure, wait: Duration) -> bool {
        // No retry waits past the step's or the run's limit.
        self.limit.is_none_or(|limit| Instant::now() + wait < limit)
    }

    async fn succeeded(&mut self, attempt: u32, response: OutboundResponse) -> Self::Outcome {
        Ok(Answered {
            response,
            latency_ms: self.latency_ms,
            attempt,
        })
    }

    async fn retrying(
        &mut self,
        attempt: u32,
        failure: OutboundFailure,
        wait: Duration,
    ) -> Result<(), Self::Outcome> {
        let (message, mut context) = self.describe(attempt, failure);
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        context["retry_in_ms"] = json!(wait_ms);
        let what = self.what;
        self.recorder.line(
            LogLevel::Warning,
            format!("Attempt {attempt} at {what} failed: {message}; retrying in {wait_ms} ms"),
            context,
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    async fn gave_up(&mut self, attempt: u32, failure: OutboundFailure) -> Self::Outcome {
        let (message, context) = self.describe(attempt, failure);
        let what = self.what;
        self.recorder.line(
            LogLevel::Error,
            format!("Attempt {attempt} at {what} failed: {message}"),
            context,
        );
        Err(if attempt > 1 {
            format!("{message} (after {attempt} attempts)")
        } else {
            message
        })
    }
}

/// `extra`'s members added to `context` (both objects).
pub(crate) fn merge(context: &mut Value, extra: &Value) {
    if let (Some(context), Some(extra)) = (context.as_object_mut(), extra.as_object()) {
        for (name, value) in extra {
            context.insert(name.clone(), value.clone());
        }
    }
}

/// What went wrong, in the callee's own words where it gave some.
fn failure_message(what: &str, failure: &OutboundFailure) -> String {
    match failure {
        OutboundFailure::Status(response) => match provider_message(&response.body) {
            Some(text) => format!("{what} answered HTTP {}: {text}", response.status),
            None => format!("{what} answered HTTP {}", response.status),
        },
        OutboundFailure::Transport(reason) => format!("{what} could not be reached: {reason}"),
        OutboundFailure::TimedOut(ms) => format!("{what} did not answer within {ms} ms"),
        OutboundFailure::InvalidRequest(reason) => {
            format!("the call to {what} is not valid: {reason}")
        }
    }
}

/// The error message in a provider's error body: OpenAI and Azure send
/// `{"error": {"message": ...}}`, other servers `{"error": "..."}`, `{"message": ...}` or
/// `{"detail": ...}`, or plain text. At most [`crate::QUOTE_CHARS`] characters are kept.
pub(crate) fn provider_message(body: &Value) -> Option<String> {
    let text = body
        .pointer("/error/message")
        .or_else(|| body.get("error").filter(|error| error.is_string()))
        .or_else(|| body.get("message"))
        .or_else(|| body.get("detail"))
        .or_else(|| body.is_string().then_some(body))
        .and_then(Value::as_str)?
        .trim();
    (!text.is_empty()).then(|| crate::clip(text, crate::QUOTE_CHARS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipa_agent::HttpUrl;

    fn secret(text: &str) -> PlainSecret {
        PlainSecret::new(text.to_owned())
    }

    #[test]
    fn each_provider_has_its_url_and_credentials() {
        let openai = ChatEndpoint::of(
            &Provider::OpenAi {
                api_key: secret("sk-1"),
                organization: Some("org-9".to_owned()),
            },
            "https://api.openai.com/v1/",
        );
        assert_eq!(openai.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(
            openai.headers,
            vec![
                ("Authorization".to_owned(), "Bearer sk-1".to_owned()),
                ("OpenAI-Organization".to_owned(), "org-9".to_owned())
            ]
        );
        assert!(openai.completion_tokens_field);

        let azure = ChatEndpoint::of(
            &Provider::AzureOpenAi {
                endpoint: HttpUrl::parse("https://res.openai.azure.com/").unwrap(),
                deployment: "gpt-4o".to_owned(),
                api_version: "2024-10-21".to_owned(),
                api_key: secret("az-1"),
            },
            "unused",
        );
        assert_eq!(
            azure.url,
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            azure.headers,
            vec![("api-key".to_owned(), "az-1".to_owned())]
        );

        let local = ChatEndpoint::of(
            &Provider::OpenAiCompatible {
                base_url: HttpUrl::parse("http://127.0.0.1:11434/v1").unwrap(),
                api_key: None,
            },
            "unused",
        );
        assert_eq!(local.url, "http://127.0.0.1:11434/v1/chat/completions");
        assert!(local.headers.is_empty());
        assert!(!local.completion_tokens_field);
    }

    #[test]
    fn provider_messages_are_found_in_the_usual_places() {
        let message = |body: Value| provider_message(&body);
        assert_eq!(
            message(
                json!({"error": {"message": "model not found", "type": "invalid_request_error"}})
            ),
            Some("model not found".to_owned())
        );
        assert_eq!(message(json!({"error": "bad"})), Some("bad".to_owned()));
        assert_eq!(message(json!({"detail": "nope"})), Some("nope".to_owned()));
        assert_eq!(message(json!("plain text")), Some("plain text".to_owned()));
        assert_eq!(message(json!({"error": {"code": 1}})), None);
        assert_eq!(
            message(json!("x".repeat(600))).map(|m| m.chars().count()),
            Some(crate::QUOTE_CHARS)
        );
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(percent_encode("gpt-4o_mini.1~"), "gpt-4o_mini.1~");
    }
}
