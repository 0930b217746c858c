//! Client documents past their limits, end to end: a workflow definition with far too many steps
//! and a group agent with far too many participants are each refused at once with the one
//! problem of their limit (not one per extra item, and without the work growing with them), and
//! a definition with many mistakes lists a bounded number of problems.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tests::TestServer;

/// The server's default request body limit: the documents here stay under it, so what answers
/// is the check of the document, not the door.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Generous: these answers take milliseconds; a check that read every item past its limit, or
/// compared every item with every other, would take seconds.
const BOUND: Duration = Duration::from_secs(2);

/// Sends `body` as JSON and answers the status, the JSON answer and how long it took.
async fn timed(
    server: &TestServer,
    token: &str,
    path: &str,
    body: &Value,
) -> (u16, Value, Duration) {
    let text = body.to_string();
    assert!(text.len() < BODY_LIMIT, "{} bytes", text.len());
    let started = Instant::now();
    let (status, answer) = server
        .json(Method::POST, path, Some(token), Some(body.clone()))
        .await;
    (status, answer, started.elapsed())
}

async fn draft_workflow(server: &TestServer, token: &str) -> String {
    let (status, workflow) = server
        .json(
            Method::POST,
            "/workflows",
            Some(token),
            Some(json!({"name": "Huge"})),
        )
        .await;
    assert_eq!(status, 201, "{workflow}");
    workflow["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_definition_of_twenty_thousand_steps_is_refused_at_once_with_one_problem() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = draft_workflow(&server, &token).await;
    let steps: Vec<Value> = (0..20_000)
        .map(|index| {
            json!({"name": format!("s{index}"), "type": "approval",
                   "message": format!("After {{{{ steps.s{} }}}}?", index.max(1) - 1)})
        })
        .collect();
    let path = format!("/workflows/{workflow}/versions");
    let (status, error, took) = timed(
        &server,
        &token,
        &path,
        &json!({"definition": {"steps": steps}}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["code"], "invalid_definition", "{error}");
    assert_eq!(
        error["problems"],
        json!([{"pointer": "/definition/steps",
                "message": "a workflow has at most 200 steps, this one has 20000"}])
    );
    assert!(took < BOUND, "took {took:?}");

    // The limit itself is fine.
    let steps: Vec<Value> = (0..200)
        .map(|index| json!({"name": format!("s{index}"), "type": "approval", "message": "ok?"}))
        .collect();
    let (status, version, _) = timed(
        &server,
        &token,
        &path,
        &json!({"definition": {"steps": steps}}),
    )
    .await;
    assert_eq!(status, 201, "{version}");
}

#[tokio::test]
async fn the_problems_of_a_definition_are_listed_up_to_a_hundred_then_counted() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = draft_workflow(&server, &token).await;
    // 150 steps of an unknown type: one problem each.
    let steps: Vec<Value> = (0..150)
        .map(|index| json!({"name": format!("s{index}"), "type": "teleport"}))
        .collect();
    let path = format!("/workflows/{workflow}/versions");
    let (status, error, took) = timed(
        &server,
        &token,
        &path,
        &json!({"definition": {"steps": steps}}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    let problems = error["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 101, "{error}");
    assert_eq!(problems[99]["pointer"], "/definition/steps/99/type");
    assert_eq!(
        problems[100],
        json!({"pointer": "/definition",
               "message": "50 more problems are not listed; fix these first"})
    );
    assert!(took < BOUND, "took {took:?}");
}

#[tokio::test]
async fn a_group_of_fifty_thousand_participants_is_refused_at_once_with_one_problem() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    // As many distinct agent ids as fit the body limit (one takes 39 bytes with its quotes and
    // comma); the domain's unit tests refuse 100,000 the same way.
    let ids: Vec<String> = (0..50_000)
        .map(|index| format!("00000000-0000-4000-8000-{index:012x}"))
        .collect();
    let body = json!({
        "name": "Crowd", "type": "autogen", "model_name": "gpt-4o-mini",
        "configuration": {"participants": ids,
                          "provider": {"type": "openai", "api_key": {"env": "OPENAI_API_KEY"}}}
    });
    let (status, error, took) = timed(&server, &token, "/agents", &body).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["code"], "invalid_configuration", "{error}");
    assert_eq!(
        error["problems"],
        json!([{"pointer": "/configuration/participants",
                "message": "a group conversation needs 2 to 16 participants, this one has 50000"}])
    );
    assert!(took < BOUND, "took {took:?}");
}
