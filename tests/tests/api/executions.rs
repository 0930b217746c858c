//! Runs end to end: the engine's workers over the real database calling a local HTTP target,
//! steered through the API. Outputs flowing through templates, retries, timeouts, cancel, pause
//! and resume, approvals, retry of a failed run, idempotent starts, many runs across several
//! workers each executed once, and the live event stream.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{TestServer, WebhookTarget};

const LEASE: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);

fn webhook(name: &str, url: &str) -> Value {
    json!({"name": name, "type": "webhook", "request": {"method": "POST", "url": url}})
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

async fn logs(server: &TestServer, token: &str, id: &str, query: &str) -> Vec<Value> {
    let (status, page) = server
        .json(
            Method::GET,
            &format!("/executions/{id}/logs?limit=200{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn outputs_flow_through_templates_across_three_steps() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "three steps",
            json!({"steps": [
                {"name": "first", "type": "webhook", "request": {"method": "POST", "url": target.url("/echo"),
                    "body": {"order": "{{ input.order_id }}"}}},
                {"name": "second", "type": "webhook", "request": {"method": "POST",
                    "url": target.url("/echo") + "?from={{ steps.first.output.body.order }}",
                    "headers": {"X-Order": "{{ steps.first.output.body.order }}"},
                    "body": {"seen": "{{ steps.first.output.path }}", "n": "{{ steps.first.output.n }}"}}},
                {"name": "third", "type": "webhook", "when": "steps.second.output.body.seen == '/echo'",
                    "request": {"method": "POST", "url": target.url("/echo"), "body": {"done": "yes"}}},
                {"name": "never", "type": "webhook", "when": "input.order_id == 'other'",
                    "request": {"method": "POST", "url": target.url("/status/500")}}
            ]}),
        )
        .await;
    let engine = server.start_engine("e2e", 1, LEASE);
    let run = server
        .start_run(&token, &workflow, json!({"order_id": "A-17"}))
        .await;
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["status"], "pending");
    let run = server
        .wait_for_run(&token, id, &["completed", "failed"], WAIT)
        .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(step(&run, "first")["status"], "completed");
    assert_eq!(step(&run, "never")["status"], "skipped");
    assert_eq!(run["output"]["third"]["body"], json!({"done": "yes"}));
    assert!(run["output"].get("never").is_none());

    let received = target.received();
    assert_eq!(received.len(), 3, "the skipped step made no call");
    assert_eq!(received[0].body, json!({"order": "A-17"}));
    assert_eq!(received[1].body, json!({"seen": "/echo", "n": "1"}));
    assert!(
        received[1]
            .headers
            .iter()
            .any(|(name, value)| name == "x-order" && value == "A-17")
    );
    // Each step has its own constant idempotency key.
    let keys: Vec<_> = received
        .iter()
        .map(|r| r.idempotency_key.clone().unwrap())
        .collect();
    assert_eq!(
        keys[0],
        format!("{id}:{}", step(&run, "first")["id"].as_str().unwrap())
    );
    assert_ne!(keys[0], keys[1]);

    // Logs: filtered by level and by step, paged by cursor.
    let all = logs(&server, &token, id, "").await;
    assert!(
        all.windows(2)
            .all(|pair| pair[0]["id"].as_i64() < pair[1]["id"].as_i64())
    );
    assert!(
        logs(&server, &token, id, "&min_level=error")
            .await
            .is_empty()
    );
    let first_id = step(&run, "first")["id"].as_str().unwrap();
    let first_lines = logs(&server, &token, id, &format!("&step_id={first_id}")).await;
    assert!(!first_lines.is_empty());
    assert!(first_lines.iter().all(|line| line["step_id"] == first_id));
    let (_, page) = server
        .json(
            Method::GET,
            &format!("/executions/{id}/logs?limit=2"),
            Some(&token),
            None,
        )
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = server
        .json(
            Method::GET,
            &format!("/executions/{id}/logs?limit=200&cursor={cursor}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(next["items"][0]["id"], all[2]["id"]);

    // Lists and the audit row of the start.
    let (_, list) = server
        .json(
            Method::GET,
            &format!("/executions?workflow_id={workflow}&status=completed"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(list["items"][0]["id"], id);
    let (_, none) = server
        .json(
            Method::GET,
            &format!("/executions?workflow_id={workflow}&status=failed"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(none["items"], json!([]));
    let audit = server
        .database()
        .rows(&format!(
            "SELECT action::text AS action, user_id IS NOT NULL AS has_actor FROM audit_logs \
             WHERE resource_id = '{id}'"
        ))
        .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    engine.stop().await;
}

#[tokio::test]
async fn a_flaky_endpoint_succeeds_on_its_third_attempt_and_a_slow_one_times_out() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let flaky = server
        .active_workflow(
            &token,
            "flaky",
            json!({"steps": [{"name": "call", "type": "webhook",
                "request": {"method": "POST", "url": target.url("/flaky/a?failures=2")},
                "retry": {"max_attempts": 3, "backoff": {"initial_ms": 50, "factor": 2.0, "max_ms": 1000}}}]}),
        )
        .await;
    let slow = server
        .active_workflow(
            &token,
            "slow",
            json!({"steps": [{"name": "call", "type": "webhook", "timeout_ms": 300,
                "request": {"method": "GET", "url": target.url("/slow?ms=5000")}}]}),
        )
        .await;
    let engine = server.start_engine("e2e", 2, LEASE);
    let flaky_run = server.start_run(&token, &flaky, json!({})).await;
    let slow_run = server.start_run(&token, &slow, json!({})).await;
    let flaky_id = flaky_run["id"].as_str().unwrap();
    let run = server
        .wait_for_run(&token, flaky_id, &["completed", "failed"], WAIT)
        .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(step(&run, "call")["retry_count"], 2);
    let calls: Vec<_> = target
        .received()
        .into_iter()
        .filter(|r| r.path == "/flaky/a")
        .collect();
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .iter()
            .all(|call| call.idempotency_key == calls[0].idempotency_key)
    );
    let attempts: Vec<_> = logs(&server, &token, flaky_id, "")
        .await
        .into_iter()
        .filter(|line| line["context"]["attempt"].is_number())
        .collect();
    assert_eq!(attempts.len(), 3, "each attempt recorded: {attempts:#?}");
    assert_eq!(attempts[0]["level"], "warning");
    assert_eq!(attempts[0]["context"]["status_code"], 500);
    assert_eq!(attempts[2]["context"]["status_code"], 200);

    let slow_id = slow_run["id"].as_str().unwrap();
    let run = server
        .wait_for_run(&token, slow_id, &["completed", "failed"], WAIT)
        .await;
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("no response within 300 ms"),
        "{run:#}"
    );
    assert_eq!(step(&run, "call")["status"], "failed");
    engine.stop().await;
}

#[tokio::test]
async fn cancel_interrupts_a_slow_step_and_illegal_moves_are_conflicts() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "slow",
            json!({"steps": [
                {"name": "wait", "type": "webhook", "timeout_ms": 60000,
                 "request": {"method": "GET", "url": target.url("/slow?ms=20000")}},
                webhook("after", &target.url("/echo"))
            ]}),
        )
        .await;
    let engine = server.start_engine("e2e", 1, LEASE);
    let run = server.start_run(&token, &workflow, json!({})).await;
    let id = run["id"].as_str().unwrap();
    server.wait_for_run(&token, id, &["running"], WAIT).await;
    target.wait_for_request(None, WAIT).await;
    let started = std::time::Instant::now();
    let (status, cancelled) = server
        .json(
            Method::POST,
            &format!("/executions/{id}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    // The worker lets go of the step at once and is free for the next run.
    let other = server.start_run(&token, &workflow, json!({})).await;
    server
        .wait_for_run(
            &token,
            other["id"].as_str().unwrap(),
            &["running"],
            Duration::from_secs(5),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let run = server.wait_for_run(&token, id, &["cancelled"], WAIT).await;
    assert_eq!(step(&run, "wait")["status"], "failed");
    assert!(
        step(&run, "wait")["error"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
    assert_eq!(step(&run, "after")["status"], "pending");
    assert!(target.received().iter().all(|r| r.path != "/echo"));

    for action in ["cancel", "resume", "retry", "pause"] {
        let (status, body) = server
            .json(
                Method::POST,
                &format!("/executions/{id}/{action}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 409, "{action}: {body}");
        assert_eq!(body["code"], "invalid_transition");
        assert_eq!(body["current_status"], "cancelled");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("it is cancelled"),
            "{body}"
        );
    }
    let audit = server
        .database()
        .rows(&format!(
            "SELECT action::text AS action FROM audit_logs WHERE resource_id = '{id}' ORDER BY id"
        ))
        .await;
    assert_eq!(audit.len(), 2, "execute and cancel: {audit:?}");
    // Someone else cannot see or steer the run.
    let (_, bob) = server.signed_in("bob", false).await;
    let (status, _) = server
        .json(
            Method::POST,
            &format!("/executions/{}/cancel", other["id"].as_str().unwrap()),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, 404);
    engine.stop().await;
}

#[tokio::test]
async fn pause_takes_effect_between_steps_and_resume_goes_on() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "pausable",
            json!({"steps": [
                {"name": "first", "type": "webhook", "request": {"method": "GET", "url": target.url("/slow?ms=700")}},
                webhook("second", &target.url("/echo"))
            ]}),
        )
        .await;
    let engine = server.start_engine("e2e", 1, LEASE);
    let run = server.start_run(&token, &workflow, json!({})).await;
    let id = run["id"].as_str().unwrap();
    target.wait_for_request(None, WAIT).await;
    let (status, paused) = server
        .json(
            Method::POST,
            &format!("/executions/{id}/pause"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["status"], "paused");
    // The step in flight finishes; the next one does not start.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, run) = server
        .json(
            Method::GET,
            &format!("/executions/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(run["status"], "paused");
    assert_eq!(step(&run, "first")["status"], "completed");
    assert_eq!(step(&run, "second")["status"], "pending");
    assert!(target.received().iter().all(|r| r.path != "/echo"));
    let (status, body) = server
        .json(
            Method::POST,
            &format!("/executions/{id}/pause"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["current_status"].clone()),
        (409, json!("paused"))
    );

    let (status, resumed) = server
        .json(
            Method::POST,
            &format!("/executions/{id}/resume"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{resumed}");
    let run = server
        .wait_for_run(&token, id, &["completed", "failed"], WAIT)
        .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(
        target
            .received()
            .iter()
            .filter(|r| r.path == "/slow")
            .count(),
        1,
        "the completed step never ran again"
    );
    let (status, body) = server
        .json(
            Method::POST,
            &format!("/executions/{id}/resume"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, body["current_status"].clone()),
        (409, json!("completed"))
    );
    engine.stop().await;
}

#[tokio::test]
async fn approvals_are_decided_by_their_approvers() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let (carol, carol_token) = server.signed_in("carol", false).await;
    let (_, bob) = server.signed_in("bob", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "approved refunds",
            json!({"steps": [
                webhook("fetch", &target.url("/echo")),
                {"name": "ok", "type": "approval", "message": "Refund {{ input.amount }}?", "approvers": [carol.id]},
                webhook("pay", &target.url("/echo"))
            ]}),
        )
        .await;
    let owner_decides = server
        .active_workflow(
            &token,
            "owner decides",
            json!({"steps": [{"name": "ok", "type": "approval", "message": "Go?"}]}),
        )
        .await;
    let times_out = server
        .active_workflow(
            &token,
            "times out",
            json!({"steps": [{"name": "ok", "type": "approval", "message": "Go?", "timeout_ms": 300}]}),
        )
        .await;
    let engine = server.start_engine("e2e", 2, LEASE);

    // Approved by the listed approver, who could not otherwise see the run.
    let run = server
        .start_run(&token, &workflow, json!({"amount": 30}))
        .await;
    let id = run["id"].as_str().unwrap();
    let run = server.wait_for_run(&token, id, &["paused"], WAIT).await;
    let approval = step(&run, "ok");
    assert_eq!(run["waiting_step_id"], approval["id"]);
    assert_eq!(approval["input"]["message"], "Refund 30?");
    let decision = format!(
        "/executions/{id}/steps/{}/decision",
        approval["id"].as_str().unwrap()
    );
    let (status, body) = server
        .json(
            Method::POST,
            &format!("/executions/{id}/resume"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("approve or reject")
    );
    let (status, _) = server
        .json(
            Method::POST,
            &decision,
            Some(&token),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, 403, "the owner is not a listed approver");
    let (status, _) = server
        .json(
            Method::POST,
            &decision,
            Some(&bob),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, 404, "a stranger cannot even see it");
    let path = format!("/executions/{id}");
    let (status, _) = server.json(Method::GET, &path, Some(&bob), None).await;
    assert_eq!(status, 404, "nor read it");
    // The approver asked reads the run they are to decide, with its steps so far.
    let (status, seen) = server
        .json(Method::GET, &path, Some(&carol_token), None)
        .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["waiting_step_id"], approval["id"]);
    let (status, body) = server
        .json(
            Method::POST,
            &decision,
            Some(&carol_token),
            Some(json!({"decision": "approve", "comment": "fine"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = server
        .wait_for_run(&token, id, &["completed", "failed"], WAIT)
        .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(step(&run, "ok")["output"]["decision"], "approve");
    assert_eq!(step(&run, "ok")["output"]["comment"], "fine");
    let (status, body) = server
        .json(
            Method::POST,
            &decision,
            Some(&carol_token),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(
        (status, body["current_status"].clone()),
        (409, json!("completed"))
    );
    let audit = server
        .database()
        .rows(&format!(
            "SELECT user_id::text AS user_id FROM audit_logs WHERE resource_type = 'execution_step' \
             AND resource_id = '{}'",
            step(&run, "ok")["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(audit.len(), 1);

    // Rejected by the owner (no approvers listed): the run fails.
    let run = server.start_run(&token, &owner_decides, json!({})).await;
    let id = run["id"].as_str().unwrap();
    let run = server.wait_for_run(&token, id, &["paused"], WAIT).await;
    let decision = format!(
        "/executions/{id}/steps/{}/decision",
        step(&run, "ok")["id"].as_str().unwrap()
    );
    let (status, body) = server
        .json(
            Method::POST,
            &decision,
            Some(&token),
            Some(json!({"decision": "reject", "comment": "no"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "failed");
    assert!(body["error"].as_str().unwrap().contains("rejected: no"));

    // Nobody decides in time.
    let run = server.start_run(&token, &times_out, json!({})).await;
    let run = server
        .wait_for_run(&token, run["id"].as_str().unwrap(), &["failed"], WAIT)
        .await;
    assert!(
        run["error"].as_str().unwrap().contains("timed out"),
        "{run:#}"
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_failed_run_is_retried_from_its_failed_step() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "retried for real",
            json!({"steps": [
                webhook("first", &target.url("/echo")),
                webhook("second", &target.url("/flaky/c?failures=1"))
            ]}),
        )
        .await;
    let engine = server.start_engine("e2e", 1, LEASE);
    let run = server.start_run(&token, &workflow, json!({})).await;
    let id = run["id"].as_str().unwrap();
    let run = server.wait_for_run(&token, id, &["failed"], WAIT).await;
    assert_eq!(step(&run, "first")["status"], "completed");
    assert_eq!(step(&run, "second")["status"], "failed");
    assert_eq!(step(&run, "second")["output"]["error"], "try again");
    let (status, retried) = server
        .json(
            Method::POST,
            &format!("/executions/{id}/retry"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["retry_count"], 1);
    let run = server
        .wait_for_run(&token, id, &["completed", "failed"], WAIT)
        .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["retry_count"], 1);
    assert_eq!(
        target
            .received()
            .iter()
            .filter(|r| r.path == "/echo")
            .count(),
        1,
        "the completed step was not run again"
    );
    engine.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_run() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "once",
            json!({"steps": [webhook("call", &target.url("/echo"))]}),
        )
        .await;
    let send = |key: &str, body: Value| {
        let client = reqwest::Client::new();
        client
            .post(server.url(&format!("/workflows/{workflow}/executions")))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&body)
    };
    let first = send("order-42", json!({"input": {"a": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send("order-42", json!({"input": {"a": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other = send("order-42", json!({"input": {"a": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["code"], "idempotency_key_reused");
    let bad = send("has space", json!({})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["code"], "invalid_idempotency_key", "{bad}");
    let (_, list) = server
        .json(
            Method::GET,
            &format!("/executions?workflow_id={workflow}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Other refusals: a draft workflow, a missing version, a non-object input.
    let (_, draft) = server
        .json(
            Method::POST,
            "/workflows",
            Some(&token),
            Some(json!({"name": "draft"})),
        )
        .await;
    let (status, body) = server
        .json(
            Method::POST,
            &format!("/workflows/{}/executions", draft["id"].as_str().unwrap()),
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (409, json!("workflow_not_active"))
    );
    let (status, body) = server
        .json(
            Method::POST,
            &format!("/workflows/{workflow}/executions"),
            Some(&token),
            Some(json!({"version_number": 9})),
        )
        .await;
    assert_eq!(
        (status, body["pointer"].clone()),
        (422, json!("/version_number"))
    );
    let (status, body) = server
        .json(
            Method::POST,
            &format!("/workflows/{workflow}/executions"),
            Some(&token),
            Some(json!({"input": [1]})),
        )
        .await;
    // The input is an object by the document's shape, before the version's input schema.
    assert_eq!(
        (status, body["code"].clone(), body["pointer"].clone()),
        (400, json!("invalid_type"), json!("/input"))
    );
}

#[tokio::test]
async fn a_thousand_runs_across_four_workers_each_run_exactly_once() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "bulk",
            json!({"steps": [webhook("call", &target.url("/echo"))]}),
        )
        .await;
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let run = server.start_run(&token, &workflow, json!({})).await;
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    let engines: Vec<_> = (0..4)
        .map(|index| server.start_engine(&format!("bulk-{index}"), 1, LEASE))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        let done = server
            .database()
            .rows("SELECT count(*)::bigint AS n FROM executions WHERE status = 'completed'")
            .await;
        let done = done[0]["n"].as_i64().unwrap();
        if done == 1000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{done} of 1000 completed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for received in target.received() {
        *per_key
            .entry(received.idempotency_key.unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_key.len(), 1000);
    assert!(
        per_key.values().all(|count| *count == 1),
        "a run's step was called twice"
    );
    let workers = server
        .database()
        .rows(
            "SELECT count(DISTINCT context->>'worker')::bigint AS n FROM execution_logs \
             WHERE context->>'event' = 'execution' AND context->>'status' = 'running'",
        )
        .await;
    assert_eq!(
        workers[0]["n"].as_i64().unwrap(),
        4,
        "every worker took part"
    );
    for engine in engines {
        engine.stop().await;
    }
}

#[tokio::test]
async fn an_idle_worker_starts_a_new_run_at_once_in_two_transactions() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "prompt",
            json!({"steps": [webhook("call", &target.url("/echo"))]}),
        )
        .await;
    // Workers that look for work by themselves only once an hour: every run below starts
    // because its start woke an idle worker.
    let engine = server.start_engine_with(ipa_engine::EngineOptions {
        workers: 2,
        lease: LEASE,
        poll_interval: Duration::from_secs(3600),
        name: "prompt".to_owned(),
        ..ipa_engine::EngineOptions::default()
    });
    for _ in 0..3 {
        let run = server.start_run(&token, &workflow, json!({})).await;
        let id = run["id"].as_str().unwrap();
        let run = server.wait_for_run(&token, id, &["completed"], WAIT).await;
        // Claimed with its step's start, and completed with the step's completion: each pair
        // shares its transaction's time.
        let call = step(&run, "call");
        assert_eq!(run["started_at"], call["started_at"], "{run:#}");
        assert_eq!(run["completed_at"], call["completed_at"], "{run:#}");
        assert!(run["started_at"].is_string(), "{run:#}");
        let lines = logs(&server, &token, id, "").await;
        let messages: Vec<&str> = lines
            .iter()
            .map(|line| line["message"].as_str().unwrap())
            .collect();
        assert_eq!(
            messages,
            [
                "Execution started",
                "Execution running",
                "Step 'call' started",
                "Attempt 1 succeeded: HTTP 200",
                "Step 'call' completed",
                "Execution completed",
            ],
            "{lines:#?}"
        );
    }
    engine.stop().await;
}

#[tokio::test]
async fn an_event_stream_delivers_every_event_in_order_and_resumes() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "streamed",
            json!({"steps": [
                {"name": "first", "type": "webhook", "request": {"method": "GET", "url": target.url("/slow?ms=300")}},
                webhook("second", &target.url("/echo"))
            ]}),
        )
        .await;
    let run = server.start_run(&token, &workflow, json!({})).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let stream = tokio::spawn({
        let url = server.url(&format!("/executions/{id}/events"));
        let token = token.clone();
        async move { read_events(&url, &token, None).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let engine = server.start_engine("e2e", 1, LEASE);
    let events = tokio::time::timeout(WAIT, stream).await.unwrap().unwrap();
    let lines = logs(&server, &token, &id, "").await;
    let ids: Vec<i64> = events.iter().map(|(id, _, _)| *id).collect();
    let expected: Vec<i64> = lines
        .iter()
        .map(|line| line["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, expected, "every log line, in order, once");
    let kinds: Vec<&str> = events.iter().map(|(_, kind, _)| kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"execution"));
    assert_eq!(events.last().unwrap().2["context"]["status"], "completed");
    assert!(kinds.contains(&"step") && kinds.contains(&"log"));

    // Reconnecting after an event gets exactly the rest.
    let resumed = read_events(
        &server.url(&format!("/executions/{id}/events")),
        &token,
        Some(ids[2]),
    )
    .await;
    assert_eq!(
        resumed.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
        ids[3..].to_vec()
    );
    engine.stop().await;
}

/// Reads an event stream to its end: (id, event type, data) of each event.
async fn read_events(url: &str, token: &str, last: Option<i64>) -> Vec<(i64, String, Value)> {
    let mut request = reqwest::Client::new().get(url).bearer_auth(token);
    if let Some(last) = last {
        request = request.header("Last-Event-ID", last.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut kind = String::from("message");
        let mut data = String::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("id:") {
                id = value.trim().parse().ok();
            } else if let Some(value) = line.strip_prefix("event:") {
                kind = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim());
            }
        }
        if let Some(id) = id {
            events.push((id, kind, serde_json::from_str(&data).unwrap()));
        }
    }
    events
}

#[tokio::test]
async fn a_refused_agent_call_fails_the_run_and_stats_follow_workflow_visibility() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let (status, agent) = server
        .json(
            Method::POST,
            "/agents",
            Some(&token),
            Some(json!({"name": "helper", "type": "custom", "configuration": {"endpoint": target.url("/status/400")}})),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let workflow = server
        .active_workflow(
            &token,
            "with an agent",
            json!({"steps": [{"name": "think", "type": "agent", "agent_id": agent["id"], "prompt": "Hello"}]}),
        )
        .await;
    let engine = server.start_engine("e2e", 1, LEASE);
    let run = server.start_run(&token, &workflow, json!({})).await;
    let run = server
        .wait_for_run(&token, run["id"].as_str().unwrap(), &["failed"], WAIT)
        .await;
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("the endpoint of agent 'helper' answered HTTP 400"),
        "{run:#}"
    );
    engine.stop().await;

    ipa_store::maintenance::refresh_workflow_stats(&server.database().store().await)
        .await
        .unwrap();
    let (status, stats) = server
        .json(Method::GET, "/stats/workflows", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["items"][0]["workflow_id"], workflow);
    assert_eq!(stats["items"][0]["total_executions"], 1);
    assert_eq!(stats["items"][0]["failed_count"], 1);
    let (_, bob) = server.signed_in("bob", false).await;
    let (_, theirs) = server
        .json(Method::GET, "/stats/workflows", Some(&bob), None)
        .await;
    assert_eq!(theirs, json!({"items": []}));
}

#[tokio::test]
async fn workflow_figures_come_in_pages_by_name() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let target = WebhookTarget::start().await;
    // Two workflows share a name: the id orders them.
    let names = ["Refunds", "Audit. Q3", "Refunds", "Billing"];
    let mut workflows = Vec::new();
    for name in names {
        let id = server
            .active_workflow(
                &token,
                name,
                json!({"steps": [webhook("notify", &target.url("/hook"))]}),
            )
            .await;
        server.start_run(&token, &id, json!({})).await;
        workflows.push((name, id));
    }
    ipa_store::maintenance::refresh_workflow_stats(&server.database().store().await)
        .await
        .unwrap();

    let pages = server.pages("/stats/workflows?limit=1", &token, 10).await;
    assert_eq!(pages.len(), 4, "{pages:?}");
    let listed: Vec<(String, String)> = pages
        .iter()
        .flatten()
        .map(|row| {
            (
                row["workflow_name"].as_str().unwrap().to_owned(),
                row["workflow_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = workflows
        .iter()
        .map(|(name, id)| ((*name).to_owned(), id.clone()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(
        pages
            .iter()
            .flatten()
            .all(|row| row["total_executions"] == 1)
    );

    for bad in ["limit=0", "cursor=IQ", "cursor=bm90LWEtcG9zaXRpb24"] {
        let (status, body) = server
            .json(
                Method::GET,
                &format!("/stats/workflows?{bad}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str().is_some()),
            (400, true),
            "{bad}: {body}"
        );
    }
}

/// The `ipa` binary next to this test's executable (`cargo test --workspace` builds it).
fn ipa_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let binary = dir.join("ipa");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p ipa-server` (a workspace test run does)",
        binary.display()
    );
    binary
}

/// `ipa worker` over `server`'s database, with a short lease.
fn worker_process(server: &TestServer) -> tokio::process::Child {
    tokio::process::Command::new(ipa_binary())
        .arg("worker")
        .env_clear()
        .env("DATABASE_URL", server.database().owner_url())
        .env("IPA_WORKERS", "1")
        .env("IPA_WORKER_LEASE_SECS", "3")
        .env("IPA_WORKER_POLL_MS", "200")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn a_run_whose_worker_is_killed_is_finished_by_another_without_repeating_completed_steps() {
    let server = TestServer::start().await;
    let target = WebhookTarget::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "survives",
            json!({"steps": [
                webhook("first", &target.url("/echo")),
                {"name": "slow", "type": "webhook", "timeout_ms": 60000,
                 "request": {"method": "GET", "url": target.url("/slow?ms=1500")}},
                webhook("last", &target.url("/echo"))
            ]}),
        )
        .await;
    let run = server.start_run(&token, &workflow, json!({})).await;
    let id = run["id"].as_str().unwrap();
    let mut doomed = worker_process(&server);
    target.wait_for_request(Some("/slow"), WAIT).await;
    // SIGKILL: no chance to release the run or finish the step.
    doomed.kill().await.unwrap();
    let mut rescuer = worker_process(&server);
    let run = server
        .wait_for_run(&token, id, &["completed", "failed"], WAIT)
        .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["recoveries"], 1);
    let received = target.received();
    let echo = received.iter().filter(|r| r.path == "/echo").count();
    assert_eq!(echo, 2, "the first step ran once and the last once");
    let slow: Vec<_> = received.iter().filter(|r| r.path == "/slow").collect();
    assert_eq!(slow.len(), 2, "the step in flight ran again");
    assert_eq!(slow[0].idempotency_key, slow[1].idempotency_key);
    let resumed = logs(&server, &token, id, "&min_level=warning").await;
    assert!(
        resumed.iter().any(|line| line["message"]
            .as_str()
            .unwrap()
            .contains("Resumed at step 'slow'")),
        "{resumed:#?}"
    );
    rescuer.kill().await.unwrap();
}
