//! Agents and their tools end to end: each type's configuration checked with every problem
//! pointed at, secrets that never come back, the shared catalog's visibility, group
//! conversations' participants, tools, deletion while in use, filters and audit.

use reqwest::Method;
use serde_json::{Value, json};
use tests::TestServer;

const PLANTED: &str = "sk-planted-7f3a9c1e5b";

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

fn pointers(body: &Value) -> Vec<&str> {
    body["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems in {body}"))
        .iter()
        .map(|problem| problem["pointer"].as_str().unwrap())
        .collect()
}

fn model_agent(name: &str) -> Value {
    json!({
        "name": name, "type": "semantic_kernel", "model_name": "gpt-4o",
        "system_prompt": "You help.",
        "configuration": {"provider": {"type": "openai", "api_key": {"env": "OPENAI_API_KEY"}}}
    })
}

async fn create_agent(server: &TestServer, token: &str, body: Value) -> Value {
    let (status, created) = server
        .json(Method::POST, "/agents", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

#[tokio::test]
async fn an_agent_of_each_type_is_created_read_changed_and_deleted() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let azure = create_agent(
        &server,
        &token,
        json!({
            "name": " Writer ", "type": "semantic_kernel", "model_name": "gpt-4o",
            "configuration": {"provider": {"type": "azure_openai", "endpoint": "https://r.openai.azure.com",
                "deployment": "gpt-4o", "api_version": "2024-10-21", "api_key": {"value": PLANTED}}}
        }),
    )
    .await;
    assert_eq!(azure["name"], "Writer");
    assert_eq!(azure["status"], "active");
    assert_eq!(azure["temperature"], 0.7);
    assert_eq!(azure["max_tokens"], 1000);
    assert_eq!(azure["owner_id"], alice.id.as_str());
    assert_eq!(
        azure["configuration"]["provider"]["api_key"],
        json!({"set": true})
    );
    assert_eq!(azure["configuration"]["provider"]["deployment"], "gpt-4o");

    let custom = create_agent(
        &server,
        &token,
        json!({"name": "Mine", "type": "custom", "temperature": 0, "max_tokens": 1,
               "configuration": {"endpoint": "https://bots.example.com/reply",
                                 "headers": {"X-Team": "ops", "Authorization": {"env": "BOT_TOKEN"}}}}),
    )
    .await;
    assert_eq!(custom["model_name"], Value::Null);
    assert_eq!(
        custom["configuration"]["headers"]["Authorization"],
        json!({"set": true})
    );
    assert_eq!(custom["configuration"]["timeout_seconds"], 60);

    let group = create_agent(
        &server,
        &token,
        json!({"name": "Panel", "type": "autogen", "model_name": "gpt-4o-mini",
               "configuration": {"participants": [id(&azure), id(&custom)], "max_rounds": 4,
                                 "termination_phrase": "DONE",
                                 "provider": {"type": "openai_compatible", "base_url": "http://127.0.0.1:11434/v1"}}}),
    )
    .await;
    assert_eq!(
        group["configuration"]["participants"],
        json!([id(&azure), id(&custom)])
    );

    let path = format!("/agents/{}", id(&azure));
    let (status, read) = server.json(Method::GET, &path, Some(&token), None).await;
    assert_eq!((status, &read), (200, &azure));
    let stored_before = server
        .database()
        .rows(&format!(
            "SELECT configuration FROM agents WHERE id = '{}'",
            id(&azure)
        ))
        .await;

    // A configuration sent back as read keeps the stored secret; other fields change.
    let mut configuration = read["configuration"].clone();
    configuration["provider"]["api_version"] = json!("2025-01-01-preview");
    let (status, changed) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"name": "Editor", "temperature": 1.25, "status": "inactive",
                        "description": "Edits", "configuration": configuration, "type": "semantic_kernel"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Editor");
    assert_eq!(changed["temperature"], 1.25);
    assert_eq!(changed["status"], "inactive");
    assert_eq!(
        changed["configuration"]["provider"]["api_version"],
        "2025-01-01-preview"
    );
    let stored_after = server
        .database()
        .rows(&format!(
            "SELECT configuration FROM agents WHERE id = '{}'",
            id(&azure)
        ))
        .await;
    assert_eq!(
        stored_after[0]["configuration"]["provider"]["api_key"],
        stored_before[0]["configuration"]["provider"]["api_key"],
        "the kept secret is the same sealed value"
    );
    assert_eq!(
        stored_after[0]["configuration"]["provider"]["api_key"]["$secret"],
        "sealed"
    );

    // Status moves follow the rules; the type cannot change.
    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"status": "deprecated"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["pointer"].as_str()),
        (409, Some("invalid_transition"), Some("/status"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("an agent that is deprecated cannot become active")
    );
    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"type": "custom"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("immutable_field"))
    );
    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"model_name": null})),
        )
        .await;
    assert_eq!((status, pointers(&body)), (422, vec!["/model_name"]));

    // The group uses the custom agent: it is deleted first.
    let (status, body) = server
        .json(
            Method::DELETE,
            &format!("/agents/{}", id(&custom)),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("agent_in_use")));
    assert!(
        body["message"].as_str().unwrap().contains("\"Panel\""),
        "{body}"
    );
    for agent in [&group, &custom, &azure] {
        let path = format!("/agents/{}", id(agent));
        let (status, _) = server.json(Method::DELETE, &path, Some(&token), None).await;
        assert_eq!(status, 204);
        let (status, body) = server.json(Method::GET, &path, Some(&token), None).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    }
}

#[tokio::test]
async fn every_problem_of_an_agent_is_refused_at_its_pointer() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let (status, body) = server
        .json(
            Method::POST,
            "/agents",
            Some(&token),
            Some(json!({"name": "Bad", "type": "semantic_kernel", "status": "deprecated",
                        "configuration": {"provider": {"type": "azure_openai", "endpoint": "ftp://nowhere",
                            "deployment": "has space", "api_key": "plain-text", "apikey": {"env": "X"}},
                            "tools": []}})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_configuration"))
    );
    assert_eq!(
        pointers(&body),
        vec![
            "/status",
            "/configuration/provider/endpoint",
            "/configuration/provider/deployment",
            "/configuration/provider/api_version",
            "/configuration/provider/api_key",
            "/configuration/provider/apikey",
            "/configuration/tools",
            "/model_name",
        ]
    );
    assert_eq!(body["pointer"], "/status");

    for (field, value, pointer) in [
        ("name", json!("  "), "/name"),
        ("temperature", json!(0.123), "/temperature"),
        ("temperature", json!(2.5), "/temperature"),
        ("max_tokens", json!(0), "/max_tokens"),
        ("model_name", json!("m".repeat(101)), "/model_name"),
    ] {
        let mut agent = model_agent("Fine");
        agent[field] = value;
        let (status, body) = server
            .json(Method::POST, "/agents", Some(&token), Some(agent))
            .await;
        assert_eq!(
            (status, body["code"].as_str(), body["pointer"].as_str()),
            (422, Some("invalid_field"), Some(pointer)),
            "{field}"
        );
    }

    // Each type has its own shape; a secret to keep must exist.
    for (agent_type, configuration, expected) in [
        (
            "custom",
            json!({"endpoint": "https://x", "headers": {"Host": "x", "A": {"set": true}}, "timeout_seconds": 0}),
            vec![
                "/configuration/headers/Host",
                "/configuration/timeout_seconds",
            ],
        ),
        (
            "custom",
            json!({"endpoint": "https://x", "headers": {"A": {"set": true}}}),
            vec!["/configuration/headers/A"],
        ),
        (
            "autogen",
            json!({"participants": ["not-an-id"], "max_rounds": 101}),
            vec![
                "/configuration/participants",
                "/configuration/participants/0",
                "/configuration/max_rounds",
                "/configuration/provider",
            ],
        ),
        (
            "semantic_kernel",
            json!({}),
            vec!["/configuration/provider"],
        ),
    ] {
        let (status, body) = server
            .json(
                Method::POST,
                "/agents",
                Some(&token),
                Some(json!({"name": "X", "type": agent_type, "model_name": "m", "configuration": configuration})),
            )
            .await;
        assert_eq!((status, pointers(&body)), (422, expected), "{body}");
    }
    // A configuration that is not even an object does not have the document's shape.
    let (status, body) = server
        .json(
            Method::POST,
            "/agents",
            Some(&token),
            Some(json!({"name": "X", "type": "semantic_kernel", "model_name": "m", "configuration": []})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["pointer"].as_str()),
        (400, Some("invalid_type"), Some("/configuration"))
    );
    let (_, listed) = server
        .json(Method::GET, "/agents", Some(&token), None)
        .await;
    assert_eq!(listed["items"], json!([]), "nothing was written");
}

#[tokio::test]
async fn the_catalog_is_shared_but_only_owners_and_superusers_change_it() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.signed_in("alice", false).await;
    let (_, bob_token) = server.signed_in("bob", false).await;
    let (_, admin_token) = server.signed_in("admin", true).await;
    let active = create_agent(&server, &alice_token, model_agent("Shared")).await;
    let mut inactive_body = model_agent("Private");
    inactive_body["status"] = json!("inactive");
    let inactive = create_agent(&server, &alice_token, inactive_body).await;
    let (status, tool) = server
        .json(
            Method::POST,
            &format!("/agents/{}/tools", id(&active)),
            Some(&alice_token),
            Some(json!({"tool_name": "now", "tool_type": "function", "configuration": {"function": "current_time"}})),
        )
        .await;
    assert_eq!(status, 201, "{tool}");

    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, seen_by_bob) = server
        .json(Method::GET, "/agents", Some(&bob_token), None)
        .await;
    assert_eq!(names(&seen_by_bob), vec!["Shared"]);
    let (_, seen_by_alice) = server
        .json(Method::GET, "/agents", Some(&alice_token), None)
        .await;
    assert_eq!(names(&seen_by_alice), vec!["Private", "Shared"]);
    let (_, seen_by_admin) = server
        .json(Method::GET, "/agents", Some(&admin_token), None)
        .await;
    assert_eq!(names(&seen_by_admin), vec!["Private", "Shared"]);

    // Bob reads the active agent and its tools, and nothing of the inactive one.
    let active_path = format!("/agents/{}", id(&active));
    let inactive_path = format!("/agents/{}", id(&inactive));
    assert_eq!(
        server
            .json(Method::GET, &active_path, Some(&bob_token), None)
            .await
            .0,
        200
    );
    let (status, tools) = server
        .json(
            Method::GET,
            &format!("{active_path}/tools"),
            Some(&bob_token),
            None,
        )
        .await;
    assert_eq!((status, tools["items"].as_array().unwrap().len()), (200, 1));
    let missing = format!("/agents/{}", uuid::Uuid::new_v4());
    for path in [&inactive_path, &missing] {
        let (status, body) = server.json(Method::GET, path, Some(&bob_token), None).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
        let (status, _) = server
            .json(
                Method::PATCH,
                path,
                Some(&bob_token),
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(status, 404);
        let (status, _) = server
            .json(
                Method::GET,
                &format!("{path}/tools"),
                Some(&bob_token),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }

    // Bob may not change what he can see.
    let tool_path = format!("{active_path}/tools/{}", id(&tool));
    for (method, path, body) in [
        (
            Method::PATCH,
            active_path.clone(),
            Some(json!({"name": "Mine now"})),
        ),
        (Method::DELETE, active_path.clone(), None),
        (
            Method::POST,
            format!("{active_path}/tools"),
            Some(
                json!({"tool_name": "x", "tool_type": "function", "configuration": {"function": "current_time"}}),
            ),
        ),
        (
            Method::PATCH,
            tool_path.clone(),
            Some(json!({"enabled": false})),
        ),
        (Method::POST, format!("{tool_path}/disable"), None),
        (Method::DELETE, tool_path.clone(), None),
    ] {
        let (status, body) = server
            .json(method.clone(), &path, Some(&bob_token), body)
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}"
        );
    }
    // Nor can he reach around the API: row level security leaves the row as it was.
    let (_, still) = server
        .json(Method::GET, &active_path, Some(&alice_token), None)
        .await;
    assert_eq!(still["name"], "Shared");

    // A superuser changes anyone's agent; the owner stays.
    let (status, changed) = server
        .json(
            Method::PATCH,
            &inactive_path,
            Some(&admin_token),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(
        (status, changed["owner_id"].as_str()),
        (200, Some(alice.id.as_str()))
    );
    let (_, seen_by_bob) = server
        .json(Method::GET, "/agents", Some(&bob_token), None)
        .await;
    assert_eq!(names(&seen_by_bob), vec!["Private", "Shared"]);

    // Without a token there is nothing.
    assert_eq!(server.json(Method::GET, "/agents", None, None).await.0, 401);
}

#[tokio::test]
async fn group_conversations_name_usable_participants_and_never_contain_themselves() {
    let server = TestServer::start().await;
    let (_, alice) = server.signed_in("alice", false).await;
    let (_, bob) = server.signed_in("bob", false).await;
    let first = create_agent(&server, &alice, model_agent("First")).await;
    let second = create_agent(&server, &alice, model_agent("Second")).await;
    let mut hidden_body = model_agent("Bob's private");
    hidden_body["status"] = json!("inactive");
    let hidden = create_agent(&server, &bob, hidden_body).await;
    let old = create_agent(&server, &alice, model_agent("Old")).await;
    let (status, _) = server
        .json(
            Method::PATCH,
            &format!("/agents/{}", id(&old)),
            Some(&alice),
            Some(json!({"status": "deprecated"})),
        )
        .await;
    assert_eq!(status, 200);
    let group = |name: &str, participants: Vec<String>| {
        json!({"name": name, "type": "autogen", "model_name": "gpt-4o",
               "configuration": {"participants": participants,
                                 "provider": {"type": "openai", "api_key": {"env": "K"}}}})
    };
    let (status, body) = server
        .json(
            Method::POST,
            "/agents",
            Some(&alice),
            Some(group(
                "Bad",
                vec![
                    id(&first),
                    id(&hidden),
                    id(&old),
                    uuid::Uuid::new_v4().to_string(),
                ],
            )),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        pointers(&body),
        vec![
            "/configuration/participants/1",
            "/configuration/participants/2",
            "/configuration/participants/3"
        ]
    );
    assert!(
        body["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    assert!(
        body["problems"][1]["message"]
            .as_str()
            .unwrap()
            .contains("deprecated")
    );

    // inner = {first, second}; outer = {inner, first}; inner may not then include outer.
    let inner = create_agent(
        &server,
        &alice,
        group("Inner", vec![id(&first), id(&second)]),
    )
    .await;
    let outer = create_agent(
        &server,
        &alice,
        group("Outer", vec![id(&inner), id(&first)]),
    )
    .await;
    let mut cyclic = inner["configuration"].clone();
    cyclic["participants"] = json!([id(&first), id(&outer)]);
    cyclic["provider"]["api_key"] = json!({"set": true});
    let (status, body) = server
        .json(
            Method::PATCH,
            &format!("/agents/{}", id(&inner)),
            Some(&alice),
            Some(json!({"configuration": cyclic})),
        )
        .await;
    assert_eq!(
        (status, pointers(&body)),
        (422, vec!["/configuration/participants/1"]),
        "{body}"
    );
    assert!(
        body["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot contain itself")
    );
    let mut own = inner["configuration"].clone();
    own["participants"] = json!([id(&first), id(&inner)]);
    own["provider"]["api_key"] = json!({"env": "K"});
    let (status, body) = server
        .json(
            Method::PATCH,
            &format!("/agents/{}", id(&inner)),
            Some(&alice),
            Some(json!({"configuration": own})),
        )
        .await;
    assert_eq!(
        (status, pointers(&body)),
        (422, vec!["/configuration/participants/1"])
    );
}

#[tokio::test]
async fn tools_are_added_listed_changed_switched_and_removed() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let agent = create_agent(&server, &token, model_agent("Helper")).await;
    let tools = format!("/agents/{}/tools", id(&agent));
    let add = |body: Value| server.json(Method::POST, &tools, Some(&token), Some(body));

    let (status, function) = add(json!({"tool_name": "query", "description": "Looks things up",
                                        "tool_type": "function", "configuration": {"function": "json_query"}})).await;
    assert_eq!(status, 201, "{function}");
    assert_eq!(function["enabled"], true);
    assert_eq!(
        function["configuration"]["parameters"]["required"],
        json!(["expression"])
    );

    let weather = json!({"tool_name": "weather", "tool_type": "api", "configuration": {
        "method": "GET", "url": "https://api.example.com/cities/{city}",
        "headers": {"X-Api-Key": {"value": PLANTED}},
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "minLength": 1}}, "required": ["city"]}}});
    let (status, api) = add(weather.clone()).await;
    assert_eq!(status, 201, "{api}");
    assert_eq!(
        api["configuration"]["headers"]["X-Api-Key"],
        json!({"set": true})
    );
    let (status, body) = add(weather).await;
    assert_eq!(
        (status, body["code"].as_str(), body["pointer"].as_str()),
        (409, Some("duplicate_tool_name"), Some("/tool_name"))
    );

    let petstore = json!({"openapi": "3.0.3", "info": {"title": "Pets", "version": "1"}, "paths": {
        "/pets/{petId}": {"get": {"operationId": "getPet", "parameters": [
            {"name": "petId", "in": "path", "required": true, "schema": {"type": "integer"}}]}},
        "/pets": {"post": {"operationId": "addPet", "requestBody": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Pet"}}}}}}},
        "components": {"schemas": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}}}});
    let (status, plugin) = add(json!({"tool_name": "pets", "tool_type": "plugin",
                                      "configuration": {"base_url": "http://127.0.0.1:9", "openapi": petstore}})).await;
    assert_eq!(status, 201, "{plugin}");

    // Schemas are compiled: each problem at its pointer.
    let (status, body) = add(json!({"tool_name": "broken", "tool_type": "api", "configuration": {
        "method": "FETCH", "url": "https://x/{id}",
        "parameters": {"type": "object", "properties": {"id": {"type": "strin"}, "code": {"type": "string", "pattern": "("}}}}})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        pointers(&body),
        vec![
            "/configuration/method",
            "/configuration/parameters/properties/code/pattern",
            "/configuration/parameters/properties/id/type"
        ]
    );
    let (status, body) = add(json!({"tool_name": "bad name!", "tool_type": "function", "configuration": {"function": "current_time"}})).await;
    assert_eq!(
        (status, body["pointer"].as_str()),
        (422, Some("/tool_name"))
    );
    let (status, body) = add(json!({"tool_name": "p2", "tool_type": "plugin", "configuration": {"base_url": "http://x", "openapi": {
        "openapi": "3.1.0", "paths": {"/a/{id}": {"get": {"parameters": [{"name": "q", "in": "cookie"}]}}}}}})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        pointers(&body),
        vec![
            "/configuration/openapi/paths/~1a~1{id}/get/operationId",
            "/configuration/openapi/paths/~1a~1{id}/get/parameters/0/in",
            "/configuration/openapi/paths/~1a~1{id}/get"
        ]
    );

    let (status, listed) = server.json(Method::GET, &tools, Some(&token), None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tool_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["pets", "query", "weather"]);
    assert!(listed.get("next_cursor").is_none(), "{listed}");
    // The same list a page of one at a time, by cursor.
    let pages = server.pages(&format!("{tools}?limit=1"), &token, 10).await;
    let paged: Vec<Vec<&str>> = pages
        .iter()
        .map(|page| {
            page.iter()
                .map(|t| t["tool_name"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(paged, vec![vec!["pets"], vec!["query"], vec!["weather"]]);
    for bad in ["limit=0", "limit=201", "cursor=not-a-cursor", "cursor=IQ"] {
        let (status, body) = server
            .json(Method::GET, &format!("{tools}?{bad}"), Some(&token), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Disable, enable, rename, change; the type stays.
    let tool = format!("{tools}/{}", id(&api));
    let (status, body) = server
        .json(Method::POST, &format!("{tool}/disable"), Some(&token), None)
        .await;
    assert_eq!((status, body["enabled"].as_bool()), (200, Some(false)));
    let (status, body) = server
        .json(Method::POST, &format!("{tool}/enable"), Some(&token), None)
        .await;
    assert_eq!((status, body["enabled"].as_bool()), (200, Some(true)));
    let mut configuration = api["configuration"].clone();
    configuration["url"] = json!("https://api.example.com/v2/cities/{city}");
    let (status, body) = server
        .json(
            Method::PATCH,
            &tool,
            Some(&token),
            Some(json!({"tool_name": "forecast", "configuration": configuration})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["tool_name"].as_str(),
            body["configuration"]["url"].as_str()
        ),
        (
            Some("forecast"),
            Some("https://api.example.com/v2/cities/{city}")
        )
    );
    let (status, body) = server
        .json(
            Method::PATCH,
            &tool,
            Some(&token),
            Some(json!({"tool_name": "query"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("duplicate_tool_name"))
    );
    let (status, body) = server
        .json(
            Method::PATCH,
            &tool,
            Some(&token),
            Some(json!({"tool_type": "plugin"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("immutable_field"))
    );
    let (status, body) = server.json(Method::GET, &tool, Some(&token), None).await;
    assert_eq!(
        (status, body["tool_name"].as_str()),
        (200, Some("forecast"))
    );

    let (status, _) = server.json(Method::DELETE, &tool, Some(&token), None).await;
    assert_eq!(status, 204);
    let (status, body) = server.json(Method::GET, &tool, Some(&token), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("tool_not_found"))
    );
    let (status, body) = server.json(Method::DELETE, &tool, Some(&token), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("tool_not_found"))
    );
}

#[tokio::test]
async fn an_agent_used_by_a_current_version_is_kept_and_the_users_named() {
    let server = TestServer::start().await;
    let (_, alice) = server.signed_in("alice", false).await;
    let (_, bob) = server.signed_in("bob", false).await;
    let agent = create_agent(&server, &alice, model_agent("Drafter")).await;
    let uses = |agent_id: &str| {
        json!({"definition": {"steps": [
        {"name": "draft", "type": "agent", "agent_id": agent_id, "prompt": "Write {{ input.topic }}"}]}})
    };
    let plain = json!({"definition": {"steps": [
        {"name": "ping", "type": "webhook", "request": {"method": "GET", "url": "https://example.com"}}]}});
    let mut workflows = Vec::new();
    for (token, name) in [(&alice, "Newsletter"), (&bob, "Bob's secret plan")] {
        let workflow = server
            .active_workflow(token, name, uses(&id(&agent))["definition"].clone())
            .await;
        workflows.push((token, format!("/workflows/{workflow}/versions")));
    }
    let path = format!("/agents/{}", id(&agent));
    let (status, body) = server.json(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("agent_in_use")));
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("\"Newsletter\""), "{message}");
    assert!(
        message.contains("the current versions of workflow \"Newsletter\" (")
            && message.contains(") and 1 workflow of another user; change them first"),
        "{message}"
    );
    assert!(
        !message.contains("secret plan"),
        "another user's workflow is not named: {message}"
    );

    // Once no current version uses it (an older version may), it goes.
    for (token, versions) in &workflows {
        let (status, _) = server
            .json(Method::POST, versions, Some(token), Some(plain.clone()))
            .await;
        assert_eq!(status, 201);
    }
    let (status, body) = server.json(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(status, 204, "{body}");
    // A version naming it can no longer be published.
    let (status, body) = server
        .json(
            Method::POST,
            &workflows[0].1,
            Some(&alice),
            Some(uses(&id(&agent))),
        )
        .await;
    assert_eq!(
        (status, pointers(&body)),
        (422, vec!["/definition/steps/0/agent_id"])
    );
}

#[tokio::test]
async fn lists_filter_by_type_status_and_name_and_page_without_gaps() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    for index in 0..5 {
        create_agent(&server, &token, model_agent(&format!("Model 50%_{index}"))).await;
    }
    let mut custom = json!({"name": "Endpoint", "type": "custom", "status": "inactive",
                            "configuration": {"endpoint": "https://x"}});
    create_agent(&server, &token, custom.take()).await;
    let count = |query: &'static str| {
        let server = &server;
        let token = &token;
        async move {
            let (status, body) = server
                .json(Method::GET, &format!("/agents{query}"), Some(token), None)
                .await;
            assert_eq!(status, 200, "{query}: {body}");
            body["items"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("?type=custom").await, 1);
    assert_eq!(count("?type=semantic_kernel&status=active").await, 5);
    assert_eq!(count("?status=inactive").await, 1);
    assert_eq!(count("?name=50%25_").await, 5);
    assert_eq!(count("?name=MODEL%2050%25_3").await, 1);
    assert_eq!(count("?name=5000").await, 0);
    let (status, body) = server
        .json(Method::GET, "/agents?type=robot", Some(&token), None)
        .await;
    assert_eq!(status, 400, "{body}");

    let seen: Vec<_> = server
        .pages("/agents?limit=2", &token, 10)
        .await
        .iter()
        .flatten()
        .map(id)
        .collect();
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (6, 6));
}

#[tokio::test]
async fn secrets_are_sealed_never_shown_and_redacted_from_the_audit() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let agent = create_agent(
        &server,
        &token,
        json!({"name": "Keyed", "type": "semantic_kernel", "model_name": "gpt-4o",
               "configuration": {"provider": {"type": "openai", "api_key": {"value": PLANTED}}}}),
    )
    .await;
    let tools = format!("/agents/{}/tools", id(&agent));
    let (status, tool) = server
        .json(Method::POST, &tools, Some(&token), Some(json!({"tool_name": "call", "tool_type": "api", "configuration": {
            "method": "POST", "url": "https://x/", "headers": {"X-Signature": {"value": format!("Bearer {PLANTED}")}}}})))
        .await;
    assert_eq!(status, 201, "{tool}");
    let (status, _) = server
        .json(Method::PATCH, &format!("/agents/{}", id(&agent)), Some(&token),
              Some(json!({"configuration": {"provider": {"type": "openai", "api_key": {"value": format!("{PLANTED}-2")}}}})))
        .await;
    assert_eq!(status, 200);
    // A refused request does not echo the secret either.
    let (status, refused) = server
        .json(Method::POST, "/agents", Some(&token), Some(json!({"name": "X", "type": "semantic_kernel", "model_name": "m",
            "configuration": {"provider": {"type": "openai", "api_key": {"value": PLANTED, "env": "ALSO"}}}})))
        .await;
    assert_eq!(status, 422);

    let mut seen = vec![refused];
    for path in [
        format!("/agents/{}", id(&agent)),
        "/agents".to_owned(),
        tools.clone(),
        format!("{tools}/{}", id(&tool)),
    ] {
        let (status, body) = server.json(Method::GET, &path, Some(&token), None).await;
        assert_eq!(status, 200);
        seen.push(body);
    }
    let database = server.database();
    seen.extend(database.rows("SELECT configuration FROM agents").await);
    seen.extend(database.rows("SELECT configuration FROM agent_tools").await);
    let audit = database
        .rows(
            "SELECT resource_type, action::text AS action, user_id, changes FROM audit_logs \
               WHERE resource_type IN ('agent', 'agent_tool') ORDER BY id",
        )
        .await;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|row| {
            (
                row["resource_type"].as_str().unwrap(),
                row["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("agent", "create"),
            ("agent_tool", "create"),
            ("agent", "update")
        ]
    );
    assert!(audit.iter().all(|row| row["user_id"] == alice.id.as_str()));
    assert_eq!(
        audit[0]["changes"]["after"]["configuration"]["provider"]["api_key"],
        "[REDACTED]"
    );
    assert_eq!(
        audit[1]["changes"]["after"]["configuration"]["headers"]["X-Signature"],
        json!({"$secret": "[REDACTED]"})
    );
    let sealed = database
        .rows("SELECT configuration -> 'provider' -> 'api_key' ->> 'ciphertext' AS c FROM agents")
        .await;
    let ciphertext = sealed[0]["c"].as_str().unwrap().to_owned();
    seen.extend(audit);
    for value in &seen {
        let text = value.to_string();
        assert!(!text.contains(PLANTED), "the secret leaked: {text}");
        assert!(
            !text.contains(&ciphertext) || text.contains("\"$secret\":\"sealed\""),
            "ciphertext in the audit: {text}"
        );
    }

    // Deleting the agent removes its tools: one audit row.
    let (status, _) = server
        .json(
            Method::DELETE,
            &format!("/agents/{}", id(&agent)),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let deletes = database
        .rows("SELECT resource_type FROM audit_logs WHERE action = 'delete' AND resource_type LIKE 'agent%'")
        .await;
    assert_eq!(deletes.len(), 1);
    assert_eq!(database.rows("SELECT id FROM agent_tools").await.len(), 0);
}
