//! The one outbound HTTP client of the engine ([`OutboundClient`]), used by webhook steps, model
//! provider calls and agent tool calls alike, so they all share one connection pool, one TLS
//! stack and one set of rules: a time limit per attempt, a cap on how much of a response is kept,
//! redirects only within the first URL's origin, and an idempotency key when the caller gives
//! one. It makes one attempt and says how it ended; retrying ([`crate::retry`]) and recording
//! attempts belong to the caller.
//!
//! Header values may carry secrets (tokens, API keys): they never appear in error messages, in
//! tracing output or in the `Debug` form of an [`OutboundRequest`].

use std::fmt;
use std::time::Duration;

use ipa_workflow::definition::HttpMethod;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url, redirect};
use serde_json::Value;
use time::OffsetDateTime;

/// The default cap on a response body kept from one attempt: 1 MiB. Enough for any API answer a
/// later step may reasonably use, small enough that a run's record stays small.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The most redirects followed before an attempt fails.
const MAX_REDIRECTS: usize = 5;

/// How long establishing a connection may take, whatever the attempt's own time limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The header carrying the request's idempotency key, so an endpoint can recognise a retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// An outbound request, ready to send (a webhook step's with every template rendered).
#[derive(Clone, PartialEq)]
pub struct OutboundRequest {
    /// The method.
    pub method: HttpMethod,
    /// The URL, rendered (not yet checked: [`OutboundClient::call`] refuses an invalid one).
    pub url: String,
    /// The headers, rendered, in the order of the step's header names.
    pub headers: Vec<(String, String)>,
    /// The JSON body, its strings rendered.
    pub body: Option<Value>,
    /// Sent as the `Idempotency-Key` header; the same for every attempt of one step of one run,
    /// so an endpoint can tell a retry from a new request. Model providers get none.
    pub idempotency_key: Option<String>,
}

impl fmt::Debug for OutboundRequest {
    /// Header values may be secrets: only their names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &header_names)
            .field("body", &self.body)
            .field("idempotency_key", &self.idempotency_key)
            .finish()
    }
}

/// What came back.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboundResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body: parsed JSON when the content type is JSON (`application/json` or `…+json`), it
    /// parses and it was not truncated; otherwise the text (invalid UTF-8 replaced) as a JSON
    /// string; `null` when the body is empty.
    pub body: Value,
    /// Whether the body was longer than the cap and was cut there.
    pub truncated: bool,
    /// How many bytes of the body were kept (at most the cap).
    pub bytes: usize,
    /// How long the endpoint asked callers to wait before trying again (`retry-after-ms`, or
    /// `Retry-After` in seconds or as an HTTP date), when it said.
    pub retry_after: Option<Duration>,
}

/// Why an attempt did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundFailure {
    /// The request could not be built: an invalid URL, a scheme other than `http` or `https`, an
    /// invalid header name or value. Retrying will not help; the step's definition (or the data
    /// its templates use) must change.
    #[error("the webhook request is not valid: {0}")]
    InvalidRequest(String),
    /// No response arrived: the connection was refused or reset, the name did not resolve, TLS
    /// failed, too many redirects. The message never includes header values.
    #[error("the endpoint could not be reached: {0}")]
    Transport(String),
    /// The attempt's time (in milliseconds) ran out before the response was read.
    #[error("no response within {0} ms")]
    TimedOut(u64),
    /// The endpoint answered with a status that is not 2xx; the response is kept so the caller
    /// can record it.
    #[error("the endpoint answered {}", .0.status)]
    Status(OutboundResponse),
}

/// Makes outbound HTTP calls. Cheap to clone (connections are pooled and shared): build one and keep it.
#[derive(Clone, Debug)]
pub struct OutboundClient {
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl OutboundClient {
    /// A client keeping at most `max_response_bytes` of each response body (see
    /// [`MAX_RESPONSE_BYTES`] for the usual cap). It speaks TLS with rustls, follows at most 5
    /// redirects and only within the first URL's origin (a step's headers may carry credentials
    /// meant for that host alone; a redirect elsewhere is answered as the 3xx it is, failing the
    /// attempt), identifies itself as `ipa-platform/<version>` and gives up connecting after
    /// 10 s.
    pub fn new(max_response_bytes: usize) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(redirect::Policy::custom(|attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if !same_origin {
                    attempt.stop()
                } else if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("ipa-platform/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|error| format!("the HTTP client could not be created: {error}"))?;
        Ok(Self {
            client,
            max_response_bytes,
        })
    }

    /// Makes one attempt at `request`, within `timeout` (which covers connecting, sending and
    /// reading the whole body).
    ///
    /// Sends the `Idempotency-Key` header with the request's key: a header of the same name
    /// among the step's headers (in any case) is replaced by it, since the engine, not the
    /// definition, knows which attempts are retries of one another. When there is a body it is
    /// sent as JSON, with `Content-Type: application/json` unless the step's headers name
    /// another content type (an endpoint may want `application/merge-patch+json`, say).
    ///
    /// The body is read chunk by chunk and reading stops at the cap, so no more than the cap is
    /// ever kept; the response is then marked truncated.
    pub async fn call(
        &self,
        request: &OutboundRequest,
        timeout: Duration,
    ) -> Result<OutboundResponse, OutboundFailure> {
        let built = self.build(request)?;
        let host = built.url().host_str().unwrap_or_default().to_owned();
        let method = request.method.as_str();
        let outcome = tokio::time::timeout(timeout, self.execute(built)).await;
        let response = match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(failure)) => {
                tracing::debug!(method, host, failure = %failure, "webhook attempt failed");
                return Err(failure);
            }
            Err(_elapsed) => {
                let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
                tracing::debug!(method, host, millis, "webhook attempt timed out");
                return Err(OutboundFailure::TimedOut(millis));
            }
        };
        tracing::debug!(
            method,
            host,
            status = response.status,
            bytes = response.bytes,
            truncated = response.truncated,
            "webhook answered"
        );
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(OutboundFailure::Status(response))
        }
    }

    /// The reqwest request for `request`, or why it cannot be sent.
    fn build(&self, request: &OutboundRequest) -> Result<reqwest::Request, OutboundFailure> {
        let invalid = OutboundFailure::InvalidRequest;
        // The URL itself is not repeated in messages: the caller records it with the attempt,
        // and a rendered URL may carry a token in its query.
        let url = Url::parse(&request.url).map_err(|error| {
            invalid(format!(
                "the URL is not a valid absolute URL ({error}); it must look like \
                 https://example.com/path"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "the URL's scheme is `{}`; a webhook may only use http or https",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(
                "the URL has no host; it must look like https://example.com/path".to_owned(),
            ));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                invalid(format!(
                    "`{name}` is not a valid header name; use letters, digits and `-`"
                ))
            })?;
            // The value is never quoted back: it may be a secret.
            let mut header_value = HeaderValue::from_str(value).map_err(|_| {
                invalid(format!(
                    "the value of header `{name}` is not a valid header value; it may contain \
                     only visible ASCII characters, spaces and tabs"
                ))
            })?;
            // Keeps the value out of the debug output of the HTTP stack, too.
            header_value.set_sensitive(true);
            headers.append(header_name, header_value);
        }
        if let Some(key) = &request.idempotency_key {
            let key = HeaderValue::from_str(key).map_err(|_| {
                invalid(
                    "the idempotency key is not a valid header value; it may contain only \
                     visible ASCII characters"
                        .to_owned(),
                )
            })?;
            headers.insert(HeaderName::from_static(IDEMPOTENCY_KEY), key);
        }

        let mut builder = self.client.request(method(request.method), url);
        if let Some(body) = &request.body {
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            let bytes = serde_json::to_vec(body).map_err(|error| {
                invalid(format!("the body could not be written as JSON: {error}"))
            })?;
            builder = builder.body(bytes);
        }
        builder
            .headers(headers)
            .build()
            .map_err(|error| invalid(describe(&error.without_url())))
    }

    /// Sends `request` and reads its response, up to the cap.
    async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<OutboundResponse, OutboundFailure> {
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|error| OutboundFailure::Transport(transport(error)))?;
        let status = response.status().as_u16();
        let json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(is_json);
        let retry_after = retry_after(response.headers(), OffsetDateTime::now_utc());

        // Grown as chunks arrive (not preallocated to the cap: most answers are small), and
        // never past the cap. Once it is reached the response is dropped, closing the
        // connection rather than reading a body nobody will keep.
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(|error| {
            OutboundFailure::Transport(format!(
                "the response body could not be read: {}",
                transport(error)
            ))
        })? {
            let room = self.max_response_bytes - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
            if body.len() == self.max_response_bytes {
                // Full: whether more follows decides `truncated`, without keeping any of it.
                truncated = loop {
                    match response.chunk().await {
                        Ok(Some(more)) if more.is_empty() => continue,
                        Ok(Some(_)) => break true,
                        Ok(None) => break false,
                        Err(error) => {
                            return Err(OutboundFailure::Transport(format!(
                                "the response body could not be read: {}",
                                transport(error)
                            )));
                        }
                    }
                };
                break;
            }
        }
        Ok(OutboundResponse {
            status,
            bytes: body.len(),
            body: body_value(&body, json, truncated),
            truncated,
            retry_after,
        })
    }
}

/// The wait a response asks for: `retry-after-ms` (OpenAI and Azure send it) or `Retry-After`,
/// as seconds or as an HTTP date (RFC 9110), measured from `now`.
fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(millis) = text("retry-after-ms").and_then(|ms| ms.trim().parse::<f64>().ok())
        && millis.is_finite()
        && millis >= 0.0
    {
        return Some(Duration::from_secs_f64(millis / 1000.0));
    }
    let value = text("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

/// reqwest's method for a step's.
fn method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

/// Whether a `Content-Type` value is JSON: `application/json` or a `+json` type, whatever its
/// parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body as kept in a response: see [`OutboundResponse::body`].
fn body_value(bytes: &[u8], json: bool, truncated: bool) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    if json
        && !truncated
        && let Ok(value) = serde_json::from_slice(bytes)
    {
        return value;
    }
    // A cut may fall inside a multi-byte character: drop the incomplete tail rather than end
    // the text with a replacement character that was never sent.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) if truncated && error.error_len().is_none() => {
            let (valid, _) = bytes.split_at(error.valid_up_to());
            return Value::String(String::from_utf8_lossy(valid).into_owned());
        }
        Err(_) => return Value::String(String::from_utf8_lossy(bytes).into_owned()),
    };
    Value::String(text.to_owned())
}

/// The message of a transport failure: what went wrong, ending with its root cause, without the
/// URL (which may carry a token) or anything of the request's headers.
fn transport(error: reqwest::Error) -> String {
    if error.is_redirect() {
        return format!(
            "it redirected more than {MAX_REDIRECTS} times; point the step at the final URL"
        );
    }
    let error = error.without_url();
    let cause = root_cause(&error);
    if error.is_connect() {
        if error.is_timeout() {
            return format!(
                "no connection could be established within {} s",
                CONNECT_TIMEOUT.as_secs()
            );
        }
        return format!("the connection failed ({cause}); check the host and port");
    }
    describe(&error)
}

/// An error and its sources, joined, without repeating a message already given.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// The innermost source of an error: usually the one that says what actually happened
/// ("Connection refused", "invalid peer certificate").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::net::SocketAddr;

    use ipa_template::Templates;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    use super::*;
    use crate::engine::webhook::tests::{context, step};
    // The round trip of a rendered webhook step through the client.
    use crate::engine::webhook::render_request;

    /// A request as the test server saw it.
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    impl Received {
        /// The value of header `name` (case-insensitive), if sent once.
        fn header(&self, name: &str) -> Option<String> {
            let values: Vec<String> = self
                .head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .filter(|(key, _)| key.trim().eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim().to_owned())
                .collect();
            assert!(values.len() <= 1, "{name} sent {} times", values.len());
            values.into_iter().next()
        }
    }

    /// A server on 127.0.0.1 answering every connection with `response` (after `delay`), and
    /// reporting each request it read.
    async fn serve(response: Vec<u8>, delay: Duration) -> (SocketAddr, mpsc::Receiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, receiver) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let response = response.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    let received = answer(stream, &response, delay).await;
                    if let Some(received) = received {
                        let _ = sender.send(received).await;
                    }
                });
            }
        });
        (address, receiver)
    }

    async fn answer(mut stream: TcpStream, response: &[u8], delay: Duration) -> Option<Received> {
        let mut buffer = Vec::new();
        let mut chunk = [0_u8; 4096];
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break end + 4;
            }
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..read]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let length = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.trim().parse::<usize>().unwrap());
        while buffer.len() < head_end + length {
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        tokio::time::sleep(delay).await;
        // The client may hang up early (a truncated read): that is not the server's problem.
        let _ = stream.write_all(response).await;
        let _ = stream.shutdown().await;
        Some(Received {
            head,
            body: buffer[head_end..].to_vec(),
        })
    }

    fn http(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
        let mut response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        response
    }

    fn request(url: String) -> OutboundRequest {
        OutboundRequest {
            method: HttpMethod::Get,
            url,
            headers: Vec::new(),
            body: None,
            idempotency_key: Some("run-1-step-0".to_owned()),
        }
    }

    fn client() -> OutboundClient {
        OutboundClient::new(MAX_RESPONSE_BYTES).unwrap()
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn redirects_leave_only_for_the_same_origin() {
        let (elsewhere, mut reached) =
            serve(http("200 OK", "text/plain", b"x"), Duration::ZERO).await;
        // 127.0.0.1 and localhost are different origins, though the same machine.
        let location = format!("http://localhost:{}/stolen", elsewhere.port());
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (address, _) = serve(redirect.into_bytes(), Duration::ZERO).await;
        let failure = client()
            .call(&request(format!("http://{address}/start")), TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            matches!(&failure, OutboundFailure::Status(response) if response.status == 302),
            "{failure:?}"
        );
        assert!(reached.try_recv().is_err(), "the other origin was called");
    }

    #[tokio::test]
    async fn a_json_response_is_captured_as_json() {
        let body = br#"{"id": 7, "tags": ["a"]}"#;
        let (address, _) = serve(
            http("200 OK", "application/json; charset=utf-8", body),
            Duration::ZERO,
        )
        .await;
        let response = client()
            .call(&request(format!("http://{address}/orders")), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(
            response,
            OutboundResponse {
                status: 200,
                body: json!({"id": 7, "tags": ["a"]}),
                truncated: false,
                retry_after: None,
                bytes: body.len(),
            }
        );
    }

    #[tokio::test]
    async fn text_and_invalid_json_are_captured_as_strings() {
        let (address, _) = serve(
            http("201 Created", "text/plain", b"created"),
            Duration::ZERO,
        )
        .await;
        let response = client()
            .call(&request(format!("http://{address}/")), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, json!("created"));

        let (address, _) = serve(
            http("200 OK", "application/problem+json", b"{not json"),
            Duration::ZERO,
        )
        .await;
        let response = client()
            .call(&request(format!("http://{address}/")), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(response.body, json!("{not json"));
    }

    #[tokio::test]
    async fn an_empty_body_is_null() {
        let (address, _) = serve(
            b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec(),
            Duration::ZERO,
        )
        .await;
        let response = client()
            .call(&request(format!("http://{address}/")), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(response.status, 204);
        assert_eq!(response.body, Value::Null);
        assert_eq!(response.bytes, 0);
    }

    #[tokio::test]
    async fn a_large_response_is_truncated_at_the_cap() {
        let large = vec![b'x'; 200 * 1024];
        let (address, _) = serve(http("200 OK", "application/json", &large), Duration::ZERO).await;
        let client = OutboundClient::new(1000).unwrap();
        let response = client
            .call(&request(format!("http://{address}/")), TIMEOUT)
            .await
            .unwrap();
        assert!(response.truncated);
        assert_eq!(response.bytes, 1000);
        // JSON or not, a truncated body is kept as text.
        assert_eq!(response.body, Value::String("x".repeat(1000)));

        // Exactly the cap is not truncated.
        let (address, _) =
            serve(http("200 OK", "text/plain", &large[..1000]), Duration::ZERO).await;
        let response = client
            .call(&request(format!("http://{address}/")), TIMEOUT)
            .await
            .unwrap();
        assert!(!response.truncated);
        assert_eq!(response.bytes, 1000);
    }

    #[tokio::test]
    async fn a_server_error_is_a_status_failure_with_its_body() {
        let (address, _) = serve(
            http(
                "500 Internal Server Error",
                "application/json",
                br#"{"error":"boom"}"#,
            ),
            Duration::ZERO,
        )
        .await;
        let failure = client()
            .call(&request(format!("http://{address}/")), TIMEOUT)
            .await
            .unwrap_err();
        let OutboundFailure::Status(response) = &failure else {
            panic!("expected a status failure, got {failure:?}");
        };
        assert_eq!(response.status, 500);
        assert_eq!(response.body, json!({"error": "boom"}));
        assert_eq!(failure.to_string(), "the endpoint answered 500");
    }

    #[tokio::test]
    async fn the_rendered_request_arrives_with_its_headers_and_body() {
        let (address, mut received) =
            serve(http("200 OK", "application/json", b"{}"), Duration::ZERO).await;
        let step = step(
            "{{ input.base }}/customers/{{ steps.lookup.output.id }}",
            &[
                ("Authorization", "Bearer {{ input.token }}"),
                ("X-Customer", "{{ input.customer.name | upper }}"),
                // Replaced by the engine's key.
                ("idempotency-key", "from-the-definition"),
            ],
            Some(json!({
                "name": "{{ input.customer.name }}",
                "items": [{"label": "qty {{ input.qty }}", "qty": 3, "gift": false}],
                "{{ not.a.template }}": null
            })),
        );
        let request = render_request(
            &step,
            &Templates::new(),
            &context(&format!("http://{address}")),
            "run-9-step-1",
        )
        .unwrap();
        assert_eq!(request.url, format!("http://{address}/customers/42"));
        assert!(!format!("{request:?}").contains("s3cret"));

        let response = client().call(&request, TIMEOUT).await.unwrap();
        assert_eq!(response.body, json!({}));

        let received = received.recv().await.unwrap();
        assert!(
            received.head.starts_with("POST /customers/42 HTTP/1.1\r\n"),
            "{}",
            received.head
        );
        assert_eq!(
            received.header("authorization").as_deref(),
            Some("Bearer s3cret")
        );
        assert_eq!(received.header("x-customer").as_deref(), Some("ADA"));
        assert_eq!(
            received.header("idempotency-key").as_deref(),
            Some("run-9-step-1")
        );
        assert_eq!(
            received.header("content-type").as_deref(),
            Some("application/json")
        );
        let user_agent = received.header("user-agent").unwrap();
        assert!(user_agent.starts_with("ipa-platform/"), "{user_agent}");
        let body: Value = serde_json::from_slice(&received.body).unwrap();
        assert_eq!(
            body,
            json!({
                "name": "Ada",
                "items": [{"label": "qty 3", "qty": 3, "gift": false}],
                "{{ not.a.template }}": null
            })
        );
    }

    #[tokio::test]
    async fn a_step_content_type_is_kept() {
        let (address, mut received) =
            serve(http("200 OK", "text/plain", b"ok"), Duration::ZERO).await;
        let mut request = request(format!("http://{address}/"));
        request.method = HttpMethod::Patch;
        request.headers = vec![(
            "Content-Type".to_owned(),
            "application/merge-patch+json".to_owned(),
        )];
        request.body = Some(json!({"a": 1}));
        client().call(&request, TIMEOUT).await.unwrap();
        let received = received.recv().await.unwrap();
        assert!(received.head.starts_with("PATCH / "), "{}", received.head);
        assert_eq!(
            received.header("content-type").as_deref(),
            Some("application/merge-patch+json")
        );
    }

    #[tokio::test]
    async fn a_url_that_is_not_http_is_an_invalid_request() {
        for url in [
            "ftp://example.com/file",
            "not a url",
            "/relative/path",
            "http://",
        ] {
            let failure = client()
                .call(&request(url.to_owned()), TIMEOUT)
                .await
                .unwrap_err();
            assert!(
                matches!(failure, OutboundFailure::InvalidRequest(_)),
                "{url}: {failure:?}"
            );
        }
        let failure = client()
            .call(&request("ftp://example.com/".to_owned()), TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "the webhook request is not valid: the URL's scheme is `ftp`; a webhook may only \
             use http or https"
        );
    }

    #[tokio::test]
    async fn invalid_headers_are_invalid_requests_without_their_values() {
        let mut bad_name = request("http://127.0.0.1:9/".to_owned());
        bad_name.headers = vec![("Bad Header".to_owned(), "v".to_owned())];
        let failure = client().call(&bad_name, TIMEOUT).await.unwrap_err();
        assert!(
            matches!(&failure, OutboundFailure::InvalidRequest(message) if message.contains("`Bad Header`")),
            "{failure:?}"
        );

        let mut bad_value = request("http://127.0.0.1:9/".to_owned());
        bad_value.headers = vec![("X-Token".to_owned(), "s3cret\r\nInjected: yes".to_owned())];
        let failure = client().call(&bad_value, TIMEOUT).await.unwrap_err();
        let message = failure.to_string();
        assert!(
            matches!(failure, OutboundFailure::InvalidRequest(_)),
            "{message}"
        );
        assert!(message.contains("`X-Token`"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transport_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let mut request = request(format!("http://{address}/?token=in-the-url"));
        request.headers = vec![("Authorization".to_owned(), "Bearer s3cret".to_owned())];
        let failure = client().call(&request, TIMEOUT).await.unwrap_err();
        let message = failure.to_string();
        assert!(
            matches!(failure, OutboundFailure::Transport(_)),
            "{message}"
        );
        assert!(
            message.starts_with("the endpoint could not be reached: the connection failed"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
        assert!(!message.contains("in-the-url"), "{message}");
    }

    #[tokio::test]
    async fn a_slow_endpoint_times_out() {
        let (address, _) = serve(
            http("200 OK", "text/plain", b"late"),
            Duration::from_secs(5),
        )
        .await;
        let started = std::time::Instant::now();
        let failure = client()
            .call(
                &request(format!("http://{address}/")),
                Duration::from_millis(200),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(failure, OutboundFailure::TimedOut(200)),
            "{failure:?}"
        );
        assert_eq!(failure.to_string(), "no response within 200 ms");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("text/json+html"));
        assert!(!is_json("application/jsonp"));
    }

    #[test]
    fn a_cut_inside_a_character_drops_the_partial_character() {
        let text = "héllo".as_bytes();
        // Cut after the first byte of `é`.
        assert_eq!(body_value(&text[..2], false, true), json!("h"));
        // Not truncated: invalid bytes are replaced, not dropped.
        assert_eq!(body_value(&text[..2], false, false), json!("h\u{FFFD}"));
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let now = OffsetDateTime::parse(
            "Tue, 24 Nov 2026 10:00:00 GMT",
            &time::format_description::well_known::Rfc2822,
        )
        .unwrap();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert_eq!(retry_after(&headers(&[]), now), None);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Tue, 24 Nov 2026 10:00:07 GMT")]),
                now
            ),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Tue, 24 Nov 2026 09:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
        // The finer header wins.
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "3"), ("retry-after-ms", "250")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
    }
}
