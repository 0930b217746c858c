//! Agent steps end to end: the engine's workers run agents of the catalog against a local
//! OpenAI-compatible server that answers from a script over real HTTP. A single agent calling an
//! `api` tool and a plugin operation (and getting a tool error for bad arguments) before it
//! answers, a disabled tool never offered, a group of two ending on its phrase, a custom
//! endpoint, a 429 retried after `Retry-After`, OpenAI- and Azure-style requests checked on the
//! wire, a provider's 4xx failing the step with its message, a step time limit stopping a model
//! that does not answer, usage added up, and a planted key absent from every log line, output
//! and error.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{FakeModel, Scripted, TestServer};

pub(crate) const LEASE: Duration = Duration::from_secs(10);
pub(crate) const WAIT: Duration = Duration::from_secs(30);
pub(crate) const PLANTED: &str = "sk-planted-4d1b9e7a2c";

pub(crate) async fn create(server: &TestServer, token: &str, path: &str, body: Value) -> Value {
    let (status, created) = server
        .json(Method::POST, path, Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

pub(crate) fn compatible(fake: &FakeModel) -> Value {
    json!({"provider": {"type": "openai_compatible", "base_url": fake.url("/v1"),
                        "api_key": {"value": PLANTED}}})
}

/// Runs a one-step workflow whose step asks agent `agent` `prompt`; returns the finished run.
pub(crate) async fn run_agent(
    server: &TestServer,
    token: &str,
    agent: &Value,
    prompt: &str,
    input: Value,
    ends: &str,
) -> Value {
    let workflow = server
        .active_workflow(
            token,
            &format!("ask {}", agent["name"]),
            json!({"steps": [{"name": "ask", "type": "agent", "agent_id": agent["id"], "prompt": prompt}]}),
        )
        .await;
    let run = server.start_run(token, &workflow, input).await;
    server
        .wait_for_run(token, run["id"].as_str().unwrap(), &[ends], WAIT)
        .await
}

pub(crate) async fn logs(server: &TestServer, token: &str, run: &Value) -> Vec<Value> {
    let (status, page) = server
        .json(
            Method::GET,
            &format!("/executions/{}/logs?limit=200", run["id"].as_str().unwrap()),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

pub(crate) fn of_kind<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line["context"]["kind"] == kind)
        .collect()
}

/// Neither the run (steps, outputs, errors) nor its log lines contain the planted key.
pub(crate) async fn assert_no_planted_key(server: &TestServer, token: &str, run: &Value) {
    let (_, fresh) = server
        .json(
            Method::GET,
            &format!("/executions/{}", run["id"].as_str().unwrap()),
            Some(token),
            None,
        )
        .await;
    assert!(
        !fresh.to_string().contains(PLANTED),
        "the key leaked: {fresh}"
    );
    let lines = Value::Array(logs(server, token, run).await);
    assert!(
        !lines.to_string().contains(PLANTED),
        "the key leaked: {lines}"
    );
}

fn messages(request: &tests::ModelRequest) -> Vec<(String, String)> {
    request.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| {
            (
                message["role"].as_str().unwrap().to_owned(),
                message["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_agent_calls_an_api_tool_and_a_plugin_operation_then_answers() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(
        &server,
        &token,
        "/agents",
        json!({"name": "Clerk", "type": "semantic_kernel", "model_name": "llama3.1",
               "system_prompt": "You track orders.", "temperature": 0.2, "max_tokens": 256,
               "configuration": compatible(&fake)}),
    )
    .await;
    let tools = format!("/agents/{}/tools", agent["id"].as_str().unwrap());
    create(&server, &token, &tools, json!({
        "tool_name": "lookup", "tool_type": "api", "description": "Finds an order",
        "configuration": {"method": "GET", "url": fake.url("/tools/orders/{id}"),
            "headers": {"X-Tool-Key": {"value": "tool-secret-5e8f"}},
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}, "detail": {"type": "boolean"}},
                           "required": ["id"]}}})).await;
    create(&server, &token, &tools, json!({
        "tool_name": "shop", "tool_type": "plugin",
        "configuration": {"base_url": fake.url("/tools/shop"), "openapi": {
            "openapi": "3.0.3", "info": {"title": "Shop", "version": "1"},
            "paths": {"/orders/{orderId}/notes": {"post": {
                "operationId": "addNote", "summary": "Adds a note to an order",
                "parameters": [{"name": "orderId", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}}}}},
            "components": {"schemas": {"Note": {"type": "object", "properties": {"text": {"type": "string"}}}}}}}})).await;
    create(
        &server,
        &token,
        &tools,
        json!({
        "tool_name": "peek", "tool_type": "function", "enabled": false,
        "configuration": {"function": "json_query"}}),
    )
    .await;
    create(&server, &token, &tools, json!({
        "tool_name": "query", "tool_type": "function", "configuration": {"function": "json_query"}})).await;

    fake.script([
        Scripted::tool_calls(
            &[
                ("call_1", "lookup", r#"{"id": "A 1", "detail": true}"#),
                (
                    "call_2",
                    "shop-addNote",
                    r#"{"orderId": 7, "body": {"text": "rush"}}"#,
                ),
                ("call_3", "query", r#"{"expression": "input.customer"}"#),
            ],
            100,
            20,
        ),
        // Wrong argument type, then a function that does not exist: both told to the model.
        Scripted::tool_calls(
            &[
                ("call_4", "lookup", r#"{"id": 5}"#),
                ("call_5", "peek", "{}"),
            ],
            150,
            10,
        ),
        Scripted::answer("Order A 1 ships today.", 200, 8),
    ]);
    let engine = server.start_engine("agents", 1, LEASE);
    let run = run_agent(
        &server,
        &token,
        &agent,
        "Where is order {{ input.order }}?",
        json!({"order": "A 1", "customer": "Dana"}),
        "completed",
    )
    .await;
    engine.stop().await;

    let output = &run["steps"][0]["output"];
    assert_eq!(output["answer"], "Order A 1 ships today.");
    assert_eq!(
        output["usage"],
        json!({"prompt_tokens": 450, "completion_tokens": 38, "total_tokens": 488})
    );
    assert_eq!(output["model_calls"], 3);
    assert_eq!(output["tool_calls"], 5);
    assert_eq!(run["output"]["ask"]["answer"], "Order A 1 ships today.");
    assert_eq!(run["steps"][0]["input"]["prompt"], "Where is order A 1?");

    // On the wire: the OpenAI-compatible shape, the key as a bearer token, enabled tools only.
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_eq!(call.path, "/v1/chat/completions");
        assert_eq!(
            call.header("authorization"),
            Some(format!("Bearer {PLANTED}").as_str())
        );
        assert_eq!(call.body["model"], "llama3.1");
        assert_eq!(call.body["temperature"], 0.2);
        assert_eq!(call.body["max_tokens"], 256);
        assert_eq!(call.body.get("max_completion_tokens"), None);
        let mut offered = call.offered_functions();
        offered.sort();
        assert_eq!(
            offered,
            vec!["lookup", "query", "shop-addNote"],
            "a disabled tool was offered"
        );
    }
    let plugin_function = calls[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["function"]["name"] == "shop-addNote")
        .unwrap()
        .clone();
    assert_eq!(
        plugin_function["function"]["parameters"]["properties"]["body"]["properties"]["text"]["type"],
        "string"
    );
    assert_eq!(
        messages(&calls[0]),
        vec![
            ("system".to_owned(), "You track orders.".to_owned()),
            ("user".to_owned(), "Where is order A 1?".to_owned())
        ]
    );
    // The tools were really called.
    let tool_requests: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|request| request.path.starts_with("/tools/"))
        .collect();
    assert_eq!(tool_requests.len(), 2, "{tool_requests:?}");
    assert_eq!(tool_requests[0].method, "GET");
    assert_eq!(tool_requests[0].path, "/tools/orders/A%201");
    assert_eq!(tool_requests[0].query, "detail=true");
    assert_eq!(
        tool_requests[0].header("x-tool-key"),
        Some("tool-secret-5e8f")
    );
    assert!(
        tool_requests[0]
            .header("idempotency-key")
            .unwrap()
            .ends_with(":ask:call_1")
    );
    assert_eq!(tool_requests[1].method, "POST");
    assert_eq!(tool_requests[1].path, "/tools/shop/orders/7/notes");
    assert_eq!(tool_requests[1].body, json!({"text": "rush"}));
    // The results went back to the model, each answering its call.
    let second = calls[1].body["messages"].as_array().unwrap();
    let results: Vec<(&str, Value)> = second
        .iter()
        .filter(|message| message["role"] == "tool")
        .map(|message| {
            (
                message["tool_call_id"].as_str().unwrap(),
                // JSON results as JSON text, text results as they are.
                serde_json::from_str(message["content"].as_str().unwrap())
                    .unwrap_or_else(|_| message["content"].clone()),
            )
        })
        .collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].0, "call_1");
    assert_eq!(results[0].1["path"], "/tools/orders/A%201");
    assert_eq!(results[1].1["body"], json!({"text": "rush"}));
    assert_eq!(results[2].1, json!("Dana"));
    let third = calls[2].body["messages"].as_array().unwrap();
    let errors: Vec<String> = third
        .iter()
        .filter(|message| message["role"] == "tool")
        .skip(3)
        .map(|message| message["content"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        errors[0].contains("do not match the function's parameters") && errors[0].contains("/id"),
        "{errors:?}"
    );
    assert!(errors[1].contains("no function named `peek`"), "{errors:?}");

    // Every model call and tool call is a line with model, latency and usage.
    let lines = logs(&server, &token, &run).await;
    let model_lines = of_kind(&lines, "model_call");
    assert_eq!(model_lines.len(), 3, "{lines:#?}");
    assert_eq!(model_lines[0]["context"]["model"], "llama3.1");
    assert_eq!(model_lines[0]["context"]["provider"], "openai_compatible");
    assert_eq!(model_lines[0]["context"]["usage"]["total_tokens"], 120);
    assert_eq!(
        model_lines[0]["context"]["tool_calls"],
        json!(["lookup", "shop-addNote", "query"])
    );
    assert!(model_lines[0]["context"]["latency_ms"].is_u64());
    let tool_lines = of_kind(&lines, "tool_call");
    assert_eq!(tool_lines.len(), 5);
    assert_eq!(tool_lines[0]["context"]["function"], "lookup");
    assert_eq!(tool_lines[0]["context"]["status_code"], 200);
    assert_eq!(tool_lines[0]["context"]["model"], "llama3.1");
    assert!(tool_lines[0]["context"]["latency_ms"].is_u64());
    assert!(tool_lines[0]["context"]["usage"].is_object());
    assert_eq!(tool_lines[3]["level"], "warning");
    assert_eq!(tool_lines[3]["context"]["ok"], false);
    assert!(
        !Value::Array(lines.clone())
            .to_string()
            .contains("tool-secret-5e8f")
    );
    assert_no_planted_key(&server, &token, &run).await;
}

#[tokio::test]
async fn a_group_of_two_takes_turns_until_the_termination_phrase() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let writer = create(
        &server,
        &token,
        "/agents",
        json!({
        "name": "Writer", "type": "semantic_kernel", "model_name": "writer-model",
        "system_prompt": "You write.", "configuration": compatible(&fake)}),
    )
    .await;
    let critic = create(
        &server,
        &token,
        "/agents",
        json!({
        "name": "Critic", "type": "semantic_kernel", "model_name": "critic-model",
        "system_prompt": "You criticise.", "configuration": compatible(&fake)}),
    )
    .await;
    let group = create(&server, &token, "/agents", json!({
        "name": "Desk", "type": "autogen", "model_name": "unused",
        "configuration": {"participants": [writer["id"], critic["id"]], "max_rounds": 8,
                          "termination_phrase": "APPROVED", "provider": compatible(&fake)["provider"]}})).await;
    fake.script([
        Scripted::answer("Draft one.", 10, 5),
        Scripted::answer("Too long.", 20, 3),
        Scripted::answer("Draft two.", 30, 4),
        Scripted::answer("APPROVED, ship it.", 40, 6),
        Scripted::answer("never asked", 1, 1),
    ]);
    let engine = server.start_engine("group", 1, LEASE);
    let run = run_agent(
        &server,
        &token,
        &group,
        "Write a slogan.",
        json!({}),
        "completed",
    )
    .await;
    engine.stop().await;

    let output = &run["steps"][0]["output"];
    assert_eq!(output["answer"], "APPROVED, ship it.");
    assert_eq!(output["ended_by"], "termination_phrase");
    assert_eq!(output["rounds"], 4);
    let speakers: Vec<&str> = output["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|said| said["agent"].as_str().unwrap())
        .collect();
    assert_eq!(speakers, vec!["Writer", "Critic", "Writer", "Critic"]);
    assert_eq!(output["transcript"][1]["agent_id"], critic["id"]);
    assert_eq!(output["usage"]["total_tokens"], 118);

    let calls = fake.model_calls();
    assert_eq!(calls.len(), 4, "the conversation went on after the phrase");
    let models: Vec<&str> = calls
        .iter()
        .map(|c| c.body["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        vec![
            "writer-model",
            "critic-model",
            "writer-model",
            "critic-model"
        ]
    );
    // Each participant sees the task and what was said: its own words as its own.
    assert_eq!(
        messages(&calls[1]),
        vec![
            ("system".to_owned(), "You criticise.".to_owned()),
            ("user".to_owned(), "Write a slogan.".to_owned()),
            ("user".to_owned(), "Writer: Draft one.".to_owned()),
        ]
    );
    assert_eq!(
        messages(&calls[2]),
        vec![
            ("system".to_owned(), "You write.".to_owned()),
            ("user".to_owned(), "Write a slogan.".to_owned()),
            ("assistant".to_owned(), "Draft one.".to_owned()),
            ("user".to_owned(), "Critic: Too long.".to_owned()),
        ]
    );
    let lines = logs(&server, &token, &run).await;
    assert_eq!(of_kind(&lines, "group_turn").len(), 4);
    assert_eq!(of_kind(&lines, "model_call").len(), 4);
    assert_no_planted_key(&server, &token, &run).await;
}

#[tokio::test]
async fn a_custom_agent_gets_the_conversation_and_its_reply_is_the_answer() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(
        &server,
        &token,
        "/agents",
        json!({
        "name": "Home-made", "type": "custom", "system_prompt": "Be brief.", "max_tokens": 50,
        "configuration": {"endpoint": fake.url("/custom/turn"), "timeout_seconds": 5,
                          "headers": {"X-Api-Key": {"value": PLANTED}, "X-Team": "ops"}}}),
    )
    .await;
    fake.script([Scripted::json(json!({
        "content": format!("Done; my key is {PLANTED}"),
        "usage": {"prompt_tokens": 12, "completion_tokens": 3}}))]);
    let engine = server.start_engine("custom", 1, LEASE);
    let run = run_agent(
        &server,
        &token,
        &agent,
        "Summarise {{ input.text }}",
        json!({"text": "a memo"}),
        "completed",
    )
    .await;
    engine.stop().await;

    let calls = fake.model_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.path, "/custom/turn");
    assert_eq!(call.header("x-api-key"), Some(PLANTED));
    assert_eq!(call.header("x-team"), Some("ops"));
    assert_eq!(call.body["agent_id"], agent["id"]);
    assert_eq!(call.body["execution_id"], run["id"]);
    assert_eq!(call.body["step"], "ask");
    assert_eq!(call.body["max_tokens"], 50);
    assert_eq!(
        messages(call),
        vec![
            ("system".to_owned(), "Be brief.".to_owned()),
            ("user".to_owned(), "Summarise a memo".to_owned())
        ]
    );
    let output = &run["steps"][0]["output"];
    // An endpoint echoing the key does not get it into the record.
    assert_eq!(output["answer"], "Done; my key is [redacted]");
    assert_eq!(
        output["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})
    );
    let lines = logs(&server, &token, &run).await;
    assert_eq!(
        of_kind(&lines, "custom_call")[0]["context"]["usage"]["total_tokens"],
        15
    );
    assert_no_planted_key(&server, &token, &run).await;
}

#[tokio::test]
async fn openai_requests_are_retried_after_a_429_as_the_provider_asks() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(&server, &token, "/agents", json!({
        "name": "Busy", "type": "semantic_kernel", "model_name": "gpt-4o", "max_tokens": 64,
        "configuration": {"provider": {"type": "openai", "api_key": {"value": PLANTED}, "organization": "org-42"}}})).await;
    fake.script([
        Scripted::error(
            429,
            "Rate limit reached for gpt-4o",
            &[("retry-after", "1")],
        ),
        Scripted::answer("Hello.", 5, 2),
    ]);
    let engine = server.start_engine_with(ipa_engine::EngineOptions {
        workers: 1,
        lease: LEASE,
        poll_interval: Duration::from_millis(500),
        name: "openai".to_owned(),
        openai_base_url: fake.url("/v1"),
        ..ipa_engine::EngineOptions::default()
    });
    let run = run_agent(&server, &token, &agent, "Say hello", json!({}), "completed").await;
    engine.stop().await;

    let calls = fake.model_calls();
    assert_eq!(calls.len(), 2);
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    for call in &calls {
        // OpenAI's shape: bearer key, organization, model, max_completion_tokens.
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, "/v1/chat/completions");
        assert_eq!(call.query, "");
        assert_eq!(
            call.header("authorization"),
            Some(format!("Bearer {PLANTED}").as_str())
        );
        assert_eq!(call.header("openai-organization"), Some("org-42"));
        assert_eq!(call.header("api-key"), None);
        assert_eq!(call.body["model"], "gpt-4o");
        assert_eq!(call.body["max_completion_tokens"], 64);
        assert_eq!(call.body.get("max_tokens"), None);
        assert_eq!(call.body.get("tools"), None);
    }
    assert_eq!(run["steps"][0]["output"]["answer"], "Hello.");
    assert_eq!(run["steps"][0]["output"]["usage"]["total_tokens"], 7);
    let lines = logs(&server, &token, &run).await;
    let attempts = of_kind(&lines, "model_call");
    assert_eq!(attempts.len(), 2, "{lines:#?}");
    assert_eq!(attempts[0]["level"], "warning");
    assert_eq!(attempts[0]["context"]["status_code"], 429);
    assert_eq!(attempts[0]["context"]["retry_in_ms"], 1000);
    assert!(
        attempts[0]["message"]
            .as_str()
            .unwrap()
            .contains("Rate limit reached for gpt-4o")
    );
    assert_eq!(attempts[1]["context"]["attempt"], 2);
    assert_no_planted_key(&server, &token, &run).await;
}

#[tokio::test]
async fn azure_requests_use_the_deployment_url_and_a_4xx_fails_with_the_providers_message() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(
        &server,
        &token,
        "/agents",
        json!({
        "name": "Azure", "type": "semantic_kernel", "model_name": "gpt-4o",
        "configuration": {"provider": {"type": "azure_openai", "endpoint": fake.url(""),
            "deployment": "prod-4o", "api_version": "2024-10-21", "api_key": {"value": PLANTED}}}}),
    )
    .await;
    fake.script([Scripted::answer("Bonjour.", 3, 1)]);
    let engine = server.start_engine("azure", 1, LEASE);
    let run = run_agent(
        &server,
        &token,
        &agent,
        "Say hello in French",
        json!({}),
        "completed",
    )
    .await;
    assert_eq!(run["steps"][0]["output"]["answer"], "Bonjour.");
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].path,
        "/openai/deployments/prod-4o/chat/completions"
    );
    assert_eq!(calls[0].query, "api-version=2024-10-21");
    assert_eq!(calls[0].header("api-key"), Some(PLANTED));
    assert_eq!(calls[0].header("authorization"), None);

    // A 4xx other than 429 is final, and the provider's message says why; a provider quoting
    // the key back does not get it into the error.
    fake.script([Scripted::error(
        401,
        &format!("Incorrect API key provided: {PLANTED}"),
        &[],
    )]);
    let failed = run_agent(&server, &token, &agent, "Again", json!({}), "failed").await;
    engine.stop().await;
    assert_eq!(fake.model_calls().len(), 2, "a 401 was retried");
    let error = failed["steps"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("answered HTTP 401: Incorrect API key provided: [redacted]"),
        "{error}"
    );
    assert!(failed["error"].as_str().unwrap().contains("HTTP 401"));
    assert_no_planted_key(&server, &token, &failed).await;
}

#[tokio::test]
async fn a_step_time_limit_stops_a_model_that_does_not_answer() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(
        &server,
        &token,
        "/agents",
        json!({
        "name": "Slow", "type": "semantic_kernel", "model_name": "slow-model",
        "configuration": compatible(&fake)}),
    )
    .await;
    fake.script([Scripted::answer("Too late.", 1, 1).after(Duration::from_secs(20))]);
    let workflow = server
        .active_workflow(
            &token,
            "hurried",
            json!({"steps": [{"name": "ask", "type": "agent", "agent_id": agent["id"],
                              "prompt": "Think hard", "timeout_ms": 400}]}),
        )
        .await;
    let engine = server.start_engine("slow", 1, LEASE);
    let started = std::time::Instant::now();
    let run = server.start_run(&token, &workflow, json!({})).await;
    let run = server
        .wait_for_run(&token, run["id"].as_str().unwrap(), &["failed"], WAIT)
        .await;
    engine.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        run["steps"][0]["error"],
        "the step exceeded its time limit of 400 ms"
    );
    assert_eq!(fake.model_calls().len(), 1);
}
