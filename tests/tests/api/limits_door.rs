//! Limits at the door end to end: body size (announced and chunked), JSON depth, text
//! PostgreSQL cannot store, the header read and idle keep-alive timeouts, and the limits as the
//! OpenAPI document declares them.

use std::time::{Duration, Instant};

use ipa_api::HttpLimits;
use reqwest::Method;
use serde_json::{Value, json};
use tests::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `body` as it is (it may hold escapes no Rust string can: lone surrogates) as JSON.
async fn raw_json(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Writes `request` on a new connection and reads until the server closes it (or 10 s pass);
/// the text read, even when the close was a reset after the answer.
async fn exchange(server: &TestServer, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_until_closed(&mut stream).await
}

async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!(
                "the connection was not closed within 10 s; read so far: {}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// The JSON body of a raw HTTP/1.1 answer.
fn answer_body(answer: &str) -> Value {
    let (_, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer in {answer:?}"));
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {body:?}"))
}

fn assert_unstorable(status: u16, body: &Value, pointer: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_field", "{body}");
    assert_eq!(body["pointer"], pointer, "{body}");
}

#[tokio::test]
async fn a_body_announced_larger_than_the_limit_is_refused_without_reading_it() {
    let server = TestServer::start().await;
    let started = Instant::now();
    // 50 MB announced, none of it sent: only a refusal from the header can answer.
    let answer = exchange(
        &server,
        b"POST /auth/login HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
          content-length: 52428800\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body = answer_body(&answer);
    assert_eq!(body["code"], "payload_too_large");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&HttpLimits::DEFAULT_MAX_BODY_BYTES.to_string()),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_at_the_limit() {
    let server = TestServer::with_limits(HttpLimits {
        max_body_bytes: 1024,
        ..HttpLimits::default()
    })
    .await;
    // 1,536 bytes in three chunks and no final chunk: the server can only answer by stopping
    // at its limit.
    let mut request =
        b"POST /auth/login HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
                        transfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..3 {
        request.extend_from_slice(b"200\r\n");
        request.extend_from_slice(&[b' '; 512]);
        request.extend_from_slice(b"\r\n");
    }
    let answer = exchange(&server, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body = answer_body(&answer);
    assert_eq!(body["code"], "payload_too_large");
    assert!(body["message"].as_str().unwrap().contains("1024"), "{body}");

    // A body within the limit is served as before.
    let user = server.create_user("alice", false).await;
    server.login(&user).await;
}

#[tokio::test]
async fn json_nested_deeper_than_the_limit_is_refused_with_its_pointer() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let nested = |arrays: usize| {
        format!(
            "{{\"name\": \"Deep\", \"metadata\": {{\"a\": {}{}}}}}",
            "[".repeat(arrays),
            "]".repeat(arrays)
        )
    };
    // The body's object and `metadata` are two levels: 63 arrays make 65.
    let (status, body) = raw_json(
        &server,
        Method::POST,
        "/workflows",
        Some(&token),
        &nested(63),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "json_too_deep");
    assert_eq!(body["pointer"], format!("/metadata/a{}", "/0".repeat(62)));
    assert!(body["message"].as_str().unwrap().contains("64"), "{body}");

    // Exactly at the limit, the door lets it through to the endpoint.
    let (_, body) = raw_json(
        &server,
        Method::POST,
        "/workflows",
        Some(&token),
        &nested(62),
    )
    .await;
    assert_ne!(body["code"], "json_too_deep", "{body}");
}

#[tokio::test]
async fn nul_in_the_sign_in_identifier_is_refused_without_a_token() {
    let server = TestServer::start().await;
    let user = server.create_user("alice", false).await;
    let (status, body) = server
        .json(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"identifier": "ali\u{0}ce", "password": user.password})),
        )
        .await;
    assert_unstorable(status, &body, "/identifier");
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body["message"].as_str().unwrap().contains("NUL"), "{body}");
    // The account signs in as before.
    server.login(&user).await;
}

#[tokio::test]
async fn unstorable_text_in_a_workflow_or_a_version_is_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;

    let (status, body) = server
        .json(
            Method::POST,
            "/workflows",
            Some(&token),
            Some(json!({"name": "Refunds", "metadata": {"team": {"lead": "b\u{0}b"}}})),
        )
        .await;
    assert_unstorable(status, &body, "/metadata/team/lead");

    // A lone surrogate is not text either; a pair is.
    let (status, body) = raw_json(
        &server,
        Method::POST,
        "/workflows",
        Some(&token),
        r#"{"name": "Refunds \ud800", "tags": ["ok"]}"#,
    )
    .await;
    assert_unstorable(status, &body, "/name");
    assert!(
        body["message"].as_str().unwrap().contains("surrogate"),
        "{body}"
    );
    let (status, list) = server
        .json(Method::GET, "/workflows", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"], json!([]), "nothing stored: {list}");

    let (status, created) = raw_json(
        &server,
        Method::POST,
        "/workflows",
        Some(&token),
        r#"{"name": "Refunds \ud83d\ude00"}"#,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "Refunds \u{1F600}");
    let workflow = created["id"].as_str().unwrap();

    let definition = json!({"steps": [{"name": "approve", "type": "approval", "message": "ok?",
                                        "approvers": [alice.id]}]});
    let versions = format!("/workflows/{workflow}/versions");
    let (status, body) = server
        .json(
            Method::POST,
            &versions,
            Some(&token),
            Some(json!({"definition": definition, "change_summary": "first\u{0}"})),
        )
        .await;
    assert_unstorable(status, &body, "/change_summary");
    let (status, list) = server
        .json(Method::GET, &versions, Some(&token), None)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"], json!([]), "nothing stored: {list}");

    // NUL in a query parameter or a path segment is refused the same way.
    let (status, body) = server
        .json(Method::GET, "/workflows?tags=a%00b", Some(&token), None)
        .await;
    assert_unstorable(status, &body, "/query/tags");
    // The metadata filter takes JSON: text inside it is checked like a body's.
    let (status, body) = server
        .json(
            Method::GET,
            "/workflows?metadata=%7B%22team%22%3A%22%5Cu0000%22%7D",
            Some(&token),
            None,
        )
        .await;
    assert_unstorable(status, &body, "/query/metadata/team");
    let (status, body) = server
        .json(Method::GET, "/workflows/x%00y/versions", Some(&token), None)
        .await;
    assert_unstorable(status, &body, "/path/1");

    // The same publish without the NUL goes through.
    let (status, body) = server
        .json(
            Method::POST,
            &versions,
            Some(&token),
            Some(json!({"definition": definition, "change_summary": "first"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let server = TestServer::with_limits(HttpLimits {
        header_read_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(30),
        ..HttpLimits::default()
    })
    .await;

    // Half the headers, then silence.
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    read_until_closed(&mut stream).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed before the timeout: {waited:?}"
    );

    // Trickling a byte at a time does not buy more time.
    let started = Instant::now();
    let stream = TcpStream::connect(server.address()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let closed = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink).await;
    });
    let request = b"GET /healthz HTTP/1.1\r\nhost: test\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in request {
        if closed.is_finished() || writer.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("a trickling client is disconnected")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the trickle kept the connection for {:?}",
        started.elapsed()
    );

    // A complete request is served.
    let (status, _) = server.json(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200);
}

/// Reads one answer with a `content-length` from a kept-alive connection.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or_else(|| panic!("no content-length in {head}"));
            if body.len() >= length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed before the answer: {text}");
        received.extend_from_slice(&buffer[..n]);
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_one() {
    let server = TestServer::with_limits(HttpLimits {
        header_read_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(4),
        ..HttpLimits::default()
    })
    .await;
    let request = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    stream.write_all(request).await.unwrap();
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));

    // Idle for longer than the header timeout: the connection is still there.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(request).await.unwrap();
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));

    // Idle past the keep-alive timeout: closed.
    let idle_since = Instant::now();
    let rest = read_until_closed(&mut stream).await;
    assert_eq!(rest, "", "nothing more is sent before the close");
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_secs(3), "closed after only {idle:?}");
}

#[test]
fn the_openapi_document_declares_the_default_limits() {
    let spec: Value = serde_json::from_str(&ipa_api::openapi_json()).unwrap();
    let description = spec["info"]["description"].as_str().unwrap();
    let defaults = HttpLimits::default();
    assert_eq!(defaults.max_body_bytes, 2_097_152);
    assert_eq!(defaults.max_json_depth, 64);
    assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
    assert_eq!(defaults.keep_alive_timeout, Duration::from_secs(60));
    for declared in [
        "at most 2097152 bytes",
        "at most 64 levels deep",
        "within 10 seconds",
        "after 60 seconds",
    ] {
        assert!(
            description.contains(declared),
            "{declared:?} in {description}"
        );
    }
    let mut with_body = 0;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            if operation.get("requestBody").is_some() {
                with_body += 1;
                assert!(operation["responses"]["413"].is_object(), "{method} {path}");
            }
            // Wherever text comes in, unstorable text may be refused.
            if operation.get("requestBody").is_some() || operation.get("parameters").is_some() {
                assert!(operation["responses"]["422"].is_object(), "{method} {path}");
            }
        }
    }
    assert!(with_body >= 5, "{with_body}");
}

#[tokio::test]
async fn the_served_document_declares_the_limits_in_force() {
    let server = TestServer::with_limits(HttpLimits {
        max_body_bytes: 1024,
        max_json_depth: 8,
        ..HttpLimits::default()
    })
    .await;
    let spec: Value = server.get("/openapi.json").await.json().await.unwrap();
    let description = spec["info"]["description"].as_str().unwrap();
    assert!(description.contains("at most 1024 bytes"), "{description}");
    assert!(
        description.contains("at most 8 levels deep"),
        "{description}"
    );
}
