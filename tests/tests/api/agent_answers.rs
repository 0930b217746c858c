//! What model providers really answer, end to end against the scripted model server: answers
//! missing what OpenAI always sends, spelling finish reasons their own way, served as text, with
//! tool calls lacking ids or giving arguments as objects, in the shapes of LiteLLM, Ollama, vLLM,
//! llama.cpp, TGI, Together and Groq, all understood; and answers that cannot be used (an error
//! inside a 200, an HTML page, a content filter, a refusal) failing the step in a few hundred
//! characters that say why, each recorded as a `model_call` line. Remote text quoted by tool and
//! webhook lines is clipped too.

use reqwest::Method;
use serde_json::{Value, json};
use tests::{FakeModel, Scripted, TestServer};

use crate::agent_steps::{
    LEASE, PLANTED, WAIT, assert_no_planted_key, compatible, create, logs, of_kind, run_agent,
};

/// The longest error or log line text a clipped quote may give, with the platform's own words
/// around it.
const SHORT: usize = 1_000;

/// An HTML error page of 1.5 MB with `PLANTED` where a careless cut would split it.
fn huge_page() -> String {
    let mut page = format!("<html>{}{PLANTED}", "x".repeat(459));
    page.push_str(&"<p>The upstream server is busy.</p>".repeat(45_000));
    page.push_str("</html>");
    page
}

#[tokio::test]
async fn answers_in_every_servers_shape_are_understood() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(
        &server,
        &token,
        "/agents",
        json!({"name": "Anyone", "type": "semantic_kernel", "model_name": "any-model",
               "configuration": compatible(&fake)}),
    )
    .await;
    let tools = format!("/agents/{}/tools", agent["id"].as_str().unwrap());
    create(&server, &token, &tools, json!({
        "tool_name": "lookup", "tool_type": "api", "description": "Finds an order",
        "configuration": {"method": "GET", "url": fake.url("/tools/orders/{id}"),
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}})).await;

    fake.script([
        // s1: only what is needed.
        Scripted::json(json!({"choices": [{"message": {"content": "one"}}]})),
        // s2: Together's `eos`, Groq's `service_tier` and `x_groq`, usage without a total.
        Scripted::json(json!({
            "id": "8f0c2e6b", "object": "chat.completion", "created": 1_764_000_000,
            "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "prompt": [],
            "service_tier": "on_demand", "x_groq": {"id": "req_01jd"},
            "choices": [{"index": 0, "seed": 4_178_723_000_u64, "logprobs": null,
                         "finish_reason": "eos",
                         "message": {"role": "assistant", "content": "two", "tool_calls": []}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "queue_time": 0.02}})),
        // s3: TGI's `eos_token`, its JSON served as text/plain.
        Scripted::raw(
            200,
            "text/plain",
            json!({"object": "chat.completion", "id": "", "created": 1_764_000_000,
                   "model": "tgi", "system_fingerprint": "2.4.0-native",
                   "choices": [{"index": 0, "logprobs": null, "finish_reason": "eos_token",
                                "message": {"role": "assistant", "content": "three"}}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})
            .to_string(),
        ),
        // s4: a tool call without `type` or `id`, its arguments an object; then the answer.
        Scripted::json(
            json!({"choices": [{"finish_reason": "tool_calls", "message": {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "lookup", "arguments": {"id": "A1"}}}]}}]}),
        ),
        Scripted::json(json!({"choices": [{"message": {"content": "four"}}]})),
        // s5: LiteLLM: nulls everywhere, usage details.
        Scripted::json(json!({
            "id": "chatcmpl-7c1e", "created": 1_764_000_000, "model": "gpt-4o-mini",
            "object": "chat.completion", "system_fingerprint": null,
            "choices": [{"finish_reason": "stop", "index": 0, "message": {
                "content": "five", "role": "assistant", "tool_calls": null,
                "function_call": null, "annotations": []}}],
            "usage": {"completion_tokens": 3, "prompt_tokens": 20, "total_tokens": 23,
                      "completion_tokens_details": null, "prompt_tokens_details": null},
            "service_tier": null})),
        // s6: Ollama: a tool call with `index`, then the answer.
        Scripted::json(json!({
            "id": "chatcmpl-412", "object": "chat.completion", "created": 1_764_000_000,
            "model": "llama3.1", "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "",
                "tool_calls": [{"id": "call_x8r4k2", "index": 0, "type": "function",
                                "function": {"name": "lookup", "arguments": "{\"id\":\"B2\"}"}}]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}})),
        Scripted::json(json!({
            "id": "chatcmpl-413", "object": "chat.completion", "created": 1_764_000_001,
            "model": "llama3.1", "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "six"}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 1, "total_tokens": 41}})),
        // s7: vLLM: `reasoning_content`, `stop_reason`, `prompt_logprobs`, empty tool calls.
        Scripted::json(json!({
            "id": "chatcmpl-b3a9", "object": "chat.completion", "created": 1_764_000_000,
            "model": "Qwen/Qwen2.5-7B-Instruct",
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
                         "stop_reason": null, "message": {
                             "role": "assistant", "reasoning_content": null, "content": "seven",
                             "tool_calls": []}}],
            "usage": {"prompt_tokens": 8, "total_tokens": 9, "completion_tokens": 1,
                      "prompt_tokens_details": null},
            "prompt_logprobs": null, "kv_transfer_params": null})),
        // s8: llama.cpp's server: `timings`, members in its own order.
        Scripted::json(json!({
            "choices": [{"finish_reason": "stop", "index": 0,
                         "message": {"role": "assistant", "content": "eight"}}],
            "created": 1_764_000_000, "model": "gpt-3.5-turbo",
            "system_fingerprint": "b4589-1a24c462", "object": "chat.completion",
            "usage": {"completion_tokens": 2, "prompt_tokens": 4, "total_tokens": 6},
            "id": "chatcmpl-Zq1", "timings": {"prompt_n": 4, "prompt_ms": 12.5,
                                             "predicted_n": 2, "predicted_ms": 30.1}})),
    ]);
    let steps: Vec<Value> = (1..=8)
        .map(|n| {
            json!({"name": format!("s{n}"), "type": "agent", "agent_id": agent["id"],
                        "prompt": format!("Question {n}")})
        })
        .collect();
    let workflow = server
        .active_workflow(&token, "shapes", json!({"steps": steps}))
        .await;
    let engine = server.start_engine("shapes", 1, LEASE);
    let run = server.start_run(&token, &workflow, json!({})).await;
    let run = server
        .wait_for_run(
            &token,
            run["id"].as_str().unwrap(),
            &["completed", "failed"],
            WAIT,
        )
        .await;
    engine.stop().await;
    assert_eq!(run["status"], "completed", "{run:#}");

    let answers: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["output"]["answer"].as_str().unwrap())
        .collect();
    assert_eq!(
        answers,
        [
            "one", "two", "three", "four", "five", "six", "seven", "eight"
        ]
    );
    let usage = |n: usize| run["steps"][n]["output"]["usage"].clone();
    assert_eq!(
        usage(0),
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    );
    assert_eq!(
        usage(1),
        json!({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12})
    );
    assert_eq!(usage(5)["total_tokens"], 78);
    assert_eq!(run["steps"][3]["output"]["tool_calls"], 1);

    // The generated id went out with the call and came back with its result; the object
    // arguments were sent as JSON text, and the tool got them.
    let calls = fake.model_calls();
    assert_eq!(calls.len(), 10);
    let messages = calls[4].body["messages"].as_array().unwrap();
    let asked = messages
        .iter()
        .find(|message| message["role"] == "assistant")
        .unwrap();
    let id = asked["tool_calls"][0]["id"].as_str().unwrap();
    assert!(id.starts_with("call_") && id.len() > 10, "{asked}");
    assert_eq!(asked["tool_calls"][0]["type"], "function");
    assert_eq!(
        asked["tool_calls"][0]["function"]["arguments"],
        r#"{"id":"A1"}"#
    );
    let result = messages
        .iter()
        .find(|message| message["role"] == "tool")
        .unwrap();
    assert_eq!(result["tool_call_id"], id);
    let ollama = calls[7].body["messages"].as_array().unwrap();
    assert!(
        ollama
            .iter()
            .any(|message| message["tool_call_id"] == "call_x8r4k2"),
        "{ollama:?}"
    );
    let tool_paths: Vec<String> = fake
        .received()
        .into_iter()
        .filter(|request| request.path.starts_with("/tools/"))
        .map(|request| request.path)
        .collect();
    assert_eq!(tool_paths, ["/tools/orders/A1", "/tools/orders/B2"]);

    // Each call is a line, finish reasons as the servers spelled them.
    let lines = logs(&server, &token, &run).await;
    let model_lines = of_kind(&lines, "model_call");
    assert_eq!(model_lines.len(), 10, "{lines:#?}");
    assert!(model_lines.iter().all(|line| line["level"] == "info"));
    assert!(
        model_lines
            .iter()
            .all(|line| line["context"]["status_code"] == 200)
    );
    let reasons: Vec<&Value> = model_lines
        .iter()
        .map(|line| &line["context"]["finish_reason"])
        .collect();
    assert_eq!(reasons[0], &Value::Null);
    assert_eq!(reasons[1], "eos");
    assert_eq!(reasons[2], "eos_token");
    assert_eq!(reasons[3], "tool_calls");
    assert_no_planted_key(&server, &token, &run).await;
}

/// Runs `agent` once with `answer` scripted; the failed run and its log lines.
async fn fails_with(
    server: &TestServer,
    token: &str,
    fake: &FakeModel,
    agent: &Value,
    answer: Scripted,
) -> (Value, Vec<Value>) {
    fake.script([answer]);
    let run = run_agent(server, token, agent, "Answer me", json!({}), "failed").await;
    let lines = logs(server, token, &run).await;
    (run, lines)
}

#[tokio::test]
async fn unusable_answers_fail_the_step_briefly_saying_why_and_are_recorded() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(
        &server,
        &token,
        "/agents",
        json!({"name": "Fussy", "type": "semantic_kernel", "model_name": "fussy-model",
               "configuration": compatible(&fake)}),
    )
    .await;
    let engine = server.start_engine("unusable", 1, LEASE);

    // An error inside a 200: the provider's own message, the key it quotes hidden.
    let (run, lines) = fails_with(
        &server,
        &token,
        &fake,
        &agent,
        Scripted::json(
            json!({"error": {"message": format!("Upstream overloaded for {PLANTED}"),
                                        "type": "server_error", "code": 502}}),
        ),
    )
    .await;
    let error = run["steps"][0]["error"].as_str().unwrap();
    assert_eq!(
        error,
        "model fussy-model (openai_compatible) answered HTTP 200 with an error: Upstream \
         overloaded for [redacted]"
    );
    let model_lines = of_kind(&lines, "model_call");
    assert_eq!(model_lines.len(), 1, "{lines:#?}");
    assert_eq!(model_lines[0]["level"], "error");
    assert_eq!(model_lines[0]["context"]["status_code"], 200);
    assert!(model_lines[0]["context"]["latency_ms"].is_u64());
    assert!(
        model_lines[0]["context"]["error"]
            .as_str()
            .unwrap()
            .contains("Upstream overloaded")
    );
    assert_no_planted_key(&server, &token, &run).await;

    // A 1.5 MB HTML page: a short error quoting its beginning, saying it was cut; no secret
    // split by the cut.
    let (run, lines) = fails_with(
        &server,
        &token,
        &fake,
        &agent,
        Scripted::raw(200, "text/html", huge_page()),
    )
    .await;
    let error = run["steps"][0]["error"].as_str().unwrap();
    assert!(error.chars().count() < SHORT, "{error}");
    assert!(
        error.contains("answered HTTP 200 with a body larger than the 1048576 bytes read"),
        "{error}"
    );
    assert!(error.contains("<html>xxx"), "{error}");
    // Counted after the key was hidden.
    assert!(error.ends_with(" characters, cut)"), "{error}");
    assert!(run["error"].as_str().unwrap().chars().count() < SHORT);
    for line in &lines {
        let text = line.to_string();
        assert!(text.chars().count() < 3 * SHORT, "{text}");
        assert!(!text.contains("sk-plan"), "a cut split the key: {text}");
    }
    assert_eq!(of_kind(&lines, "model_call").len(), 1, "{lines:#?}");
    assert!(!run.to_string().contains("sk-plan"), "{run}");

    // Text that is not JSON, small enough to be read whole.
    let (run, _) = fails_with(
        &server,
        &token,
        &fake,
        &agent,
        Scripted::raw(200, "text/plain", "Service Unavailable"),
    )
    .await;
    assert_eq!(
        run["steps"][0]["error"],
        "model fussy-model (openai_compatible) answered HTTP 200 with text that is not JSON: \
         Service Unavailable"
    );

    // A content filter that withheld everything, with the tokens it counted.
    let (run, lines) = fails_with(
        &server,
        &token,
        &fake,
        &agent,
        Scripted::json(
            json!({"choices": [{"index": 0, "finish_reason": "content_filter",
                                           "message": {"role": "assistant", "content": null}}],
                              "usage": {"prompt_tokens": 9, "completion_tokens": 0}}),
        ),
    )
    .await;
    let error = run["steps"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("returned no content: the provider's content filter withheld the answer"),
        "{error}"
    );
    let model_lines = of_kind(&lines, "model_call");
    assert_eq!(model_lines[0]["context"]["usage"]["prompt_tokens"], 9);
    assert_eq!(model_lines[0]["context"]["finish_reason"], "content_filter");

    // A refusal.
    let (run, _) = fails_with(
        &server,
        &token,
        &fake,
        &agent,
        Scripted::json(
            json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": null, "refusal": "I can't help with that."}}]}),
        ),
    )
    .await;
    assert_eq!(
        run["steps"][0]["error"],
        "model fussy-model (openai_compatible) refused to answer: I can't help with that."
    );
    engine.stop().await;
}

#[tokio::test]
async fn custom_endpoints_are_read_liberally_too() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(
        &server,
        &token,
        "/agents",
        json!({"name": "Home-made", "type": "custom",
               "configuration": {"endpoint": fake.url("/custom/turn"), "timeout_seconds": 5}}),
    )
    .await;
    let engine = server.start_engine("custom-shapes", 1, LEASE);
    fake.script([Scripted::raw(
        200,
        "text/plain; charset=utf-8",
        r#"{"content": "plain but JSON", "usage": {"prompt_tokens": 2, "completion_tokens": 1}}"#,
    )]);
    let run = run_agent(&server, &token, &agent, "Hi", json!({}), "completed").await;
    assert_eq!(run["steps"][0]["output"]["answer"], "plain but JSON");
    assert_eq!(run["steps"][0]["output"]["usage"]["total_tokens"], 3);

    let (run, lines) = fails_with(
        &server,
        &token,
        &fake,
        &agent,
        Scripted::json(json!({"error": "quota exceeded"})),
    )
    .await;
    engine.stop().await;
    assert_eq!(
        run["steps"][0]["error"],
        "the endpoint of agent 'Home-made' answered HTTP 200 with an error: quota exceeded"
    );
    let turns = of_kind(&lines, "custom_call");
    assert_eq!(turns.len(), 1, "{lines:#?}");
    assert_eq!(turns[0]["level"], "error");
    assert_eq!(turns[0]["context"]["status_code"], 200);
}

#[tokio::test]
async fn tool_and_webhook_answers_are_quoted_clipped() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create(
        &server,
        &token,
        "/agents",
        json!({"name": "Caller", "type": "semantic_kernel", "model_name": "caller-model",
               "configuration": compatible(&fake)}),
    )
    .await;
    let tools = format!("/agents/{}/tools", agent["id"].as_str().unwrap());
    // Not under /tools/: the tool's answer comes from the script, between the model's two.
    create(
        &server,
        &token,
        &tools,
        json!({"tool_name": "busy", "tool_type": "api",
               "configuration": {"method": "POST", "url": fake.url("/busy"),
                                 "parameters": {"type": "object"}}}),
    )
    .await;
    let page = huge_page();
    fake.script([
        Scripted::tool_calls(&[("call_1", "busy", "{}")], 1, 1),
        Scripted::raw(500, "text/html", page.clone()),
        Scripted::answer("It is busy.", 1, 1),
    ]);
    let engine = server.start_engine("clipped", 1, LEASE);
    let run = run_agent(&server, &token, &agent, "Try", json!({}), "completed").await;
    assert_eq!(run["steps"][0]["output"]["answer"], "It is busy.");
    let lines = logs(&server, &token, &run).await;
    let tool_line = of_kind(&lines, "tool_call")[0].clone();
    assert_eq!(tool_line["level"], "warning", "{tool_line}");
    let error = tool_line["context"]["error"].as_str().unwrap();
    assert!(error.chars().count() < SHORT, "{error}");
    assert!(error.ends_with("characters, cut)"), "{error}");
    assert!(tool_line["message"].as_str().unwrap().chars().count() < SHORT);
    // The model reads more of it, up to a tool result's length (the tool's call at /busy is
    // the second request).
    let told = fake.model_calls()[2].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|message| message["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(told.chars().count() > 30_000, "{}", told.chars().count());

    // A webhook step failing twice with the page: each attempt's line quotes it clipped.
    fake.script([
        Scripted::raw(502, "text/html", page.clone()),
        Scripted::raw(502, "text/html", page),
    ]);
    let workflow = server
        .active_workflow(
            &token,
            "hook",
            json!({"steps": [{"name": "call", "type": "webhook",
                "request": {"method": "POST", "url": fake.url("/hook")},
                "retry": {"max_attempts": 2, "backoff": {"initial_ms": 10, "factor": 1.0, "max_ms": 10}}}]}),
        )
        .await;
    let run = server.start_run(&token, &workflow, json!({})).await;
    let run = server
        .wait_for_run(&token, run["id"].as_str().unwrap(), &["failed"], WAIT)
        .await;
    engine.stop().await;
    let (status, page) = server
        .json(
            Method::GET,
            &format!("/executions/{}/logs?limit=200", run["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let attempts: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["context"]["attempt"].is_u64())
        .collect();
    assert_eq!(attempts.len(), 2, "{page:#}");
    for attempt in attempts {
        let response = attempt["context"]["response"].as_str().unwrap();
        assert!(response.starts_with("<html>xxx"), "{response}");
        assert!(
            response.ends_with("… (1048576 characters, cut)"),
            "{response}"
        );
        assert!(attempt.to_string().chars().count() < 2 * SHORT);
    }
}
