//! Agent secrets through the real binary: sealed with `IPA_SECRET_KEY`, never written to the
//! logs (even at the most verbose level), and refused with directions when no key is configured.

use ipa_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::binary::{Served, ipa};

const PLANTED: &str = "sk-planted-in-the-logs-3c9e1f";
/// 32 bytes of 0x2a, base64.
const KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

async fn post(served: &Served, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(served.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn agent(secret: &Value) -> Value {
    json!({"name": "Keyed", "type": "semantic_kernel", "model_name": "gpt-4o",
           "configuration": {"provider": {"type": "openai", "api_key": secret}}})
}

#[tokio::test]
async fn secrets_are_sealed_with_the_configured_key_and_never_logged() {
    let db = TestDatabase::empty().await;
    let start = |key: Option<&str>| {
        let mut command = ipa();
        command
            .env("DATABASE_URL", db.owner_url())
            .env("RUST_LOG", "trace")
            .env("IPA_BOOTSTRAP_ADMIN_EMAIL", "boss@example.com")
            .env("IPA_BOOTSTRAP_ADMIN_USERNAME", "boss")
            .env("IPA_BOOTSTRAP_ADMIN_PASSWORD", "bootstrap-password");
        if let Some(key) = key {
            command.env("IPA_SECRET_KEY", key);
        }
        command
    };

    let served = Served::start(start(Some(KEY))).await;
    let (_, login) = served.login("boss", "bootstrap-password").await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, created) = post(
        &served,
        &token,
        "/agents",
        agent(&json!({"value": PLANTED})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["configuration"]["provider"]["api_key"],
        json!({"set": true})
    );
    let tools = format!("/agents/{}/tools", created["id"].as_str().unwrap());
    let (status, body) = post(&served, &token, &tools, json!({"tool_name": "call", "tool_type": "api",
        "configuration": {"method": "POST", "url": "https://x/", "headers": {"X-Key": {"value": PLANTED}}}})).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = post(
        &served,
        &token,
        "/agents",
        agent(&json!({"value": PLANTED, "extra": true})),
    )
    .await;
    assert_eq!(status, 422);
    let (_, log) = served.terminate();
    assert!(
        log.contains("sealing secrets with the key from IPA_SECRET_KEY"),
        "{log}"
    );
    assert!(
        log.contains("POST"),
        "the trace level logged requests: {log}"
    );
    assert!(!log.contains(PLANTED), "a secret reached the log");
    assert!(!log.contains(KEY), "the key reached the log");

    // Without a key, values are refused with directions; environment references still work.
    let served = Served::start(start(None)).await;
    let (_, login) = served.login("boss", "bootstrap-password").await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &served,
        &token,
        "/agents",
        agent(&json!({"value": PLANTED})),
    )
    .await;
    assert_eq!(
        (status, body["pointer"].as_str()),
        (422, Some("/configuration/provider/api_key")),
        "{body}"
    );
    assert!(
        body["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("IPA_SECRET_KEY"),
        "{body}"
    );
    let (status, body) = post(
        &served,
        &token,
        "/agents",
        agent(&json!({"env": "OPENAI_API_KEY"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, log) = served.terminate();
    assert!(log.contains("IPA_SECRET_KEY is not set"), "{log}");
    assert!(!log.contains(PLANTED), "a secret reached the log");
}
