//! Workflows and versions end to end: lifecycle, validation of definitions with every problem
//! pointed at, numbering under concurrency, diff, rollback, filters, ownership and audit.

use reqwest::Method;
use serde_json::{Value, json};
use tests::TestServer;
use uuid::Uuid;

/// A definition with a webhook, an approval and no agent: publishable without arranging agents.
fn definition(url: &str, approver: &str) -> Value {
    json!({
        "steps": [
            {"name": "fetch_order", "type": "webhook",
             "request": {"method": "GET", "url": url, "headers": {"X-Order": "{{ input.order_id }}"},
                         "body": null},
             "retry": {"max_attempts": 3, "backoff": {"initial_ms": 500, "factor": 2.0, "max_ms": 30000}},
             "timeout_ms": 10000},
            {"name": "manager_approval", "type": "approval",
             "message": "Refund {{ steps.fetch_order.output.amount }}?",
             "approvers": [approver], "timeout_ms": 86400000,
             "when": "steps.fetch_order.output.amount > 100"}
        ]
    })
}

async fn create_workflow(server: &TestServer, token: &str, body: Value) -> Value {
    let (status, created) = server
        .json(Method::POST, "/workflows", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn publish(server: &TestServer, token: &str, workflow: &str, body: Value) -> (u16, Value) {
    server
        .json(
            Method::POST,
            &format!("/workflows/{workflow}/versions"),
            Some(token),
            Some(body),
        )
        .await
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_workflow_is_created_changed_and_moved_through_its_lifecycle() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let created = create_workflow(
        &server,
        &token,
        json!({"name": "  Refunds ", "description": "Pays back", "tags": [" finance", "ops", "finance "],
               "metadata": {"team": "billing"}}),
    )
    .await;
    assert_eq!(created["name"], "Refunds");
    assert_eq!(created["status"], "draft");
    assert_eq!(created["tags"], json!(["finance", "ops"]));
    assert_eq!(created["metadata"], json!({"team": "billing"}));
    assert_eq!(created["owner_id"], alice.id.as_str());
    assert_eq!(created["current_version_id"], Value::Null);
    let workflow = id(&created);
    let path = format!("/workflows/{workflow}");

    let (status, read) = server.json(Method::GET, &path, Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(read, created);

    // Activating needs a current version.
    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "no_current_version");

    let (status, version) = publish(
        &server,
        &token,
        &workflow,
        json!({"definition": definition("https://erp.example/orders/{{ input.order_id }}", &alice.id),
               "change_summary": "first"}),
    )
    .await;
    assert_eq!(status, 201, "{version}");
    assert_eq!(version["version_number"], 1);

    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"status": "active", "name": "Refunds v2", "description": null, "tags": ["x"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["name"], "Refunds v2");
    assert_eq!(body["description"], Value::Null);
    assert_eq!(body["tags"], json!(["x"]));
    assert_eq!(body["current_version_number"], 1);

    // `null` leaves a field as it is, unless the field says `null` clears it.
    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"name": null, "tags": null, "metadata": null, "status": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["name"], &body["tags"], &body["status"]),
        (&json!("Refunds v2"), &json!(["x"]), &json!("active"))
    );

    // active -> draft is not a move the lifecycle has.
    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"status": "draft"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "invalid_transition");
    assert_eq!(body["pointer"], "/status");
    assert!(body["message"].as_str().unwrap().contains("active"));

    for next in ["archived", "active", "archived"] {
        let (status, body) = server
            .json(
                Method::PATCH,
                &path,
                Some(&token),
                Some(json!({"status": next})),
            )
            .await;
        assert_eq!(status, 200, "{next}: {body}");
        assert_eq!(body["status"], next);
    }
}

#[tokio::test]
async fn bodies_must_have_the_documented_shape_and_nothing_is_written_otherwise() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    for (body, code, pointer) in [
        (json!({"name": false}), "invalid_type", "/name"),
        (json!({"name": 12}), "invalid_type", "/name"),
        (json!({"name": "ok", "tags": "a"}), "invalid_type", "/tags"),
        (
            json!({"name": "ok", "tags": [1]}),
            "invalid_type",
            "/tags/0",
        ),
        (
            json!({"name": "ok", "nmae": "typo"}),
            "unknown_field",
            "/nmae",
        ),
        (json!({"tags": []}), "missing_field", "/name"),
        (json!(["not", "an", "object"]), "invalid_type", ""),
    ] {
        let (status, error) = server
            .json(Method::POST, "/workflows", Some(&token), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["code"], code, "{body}: {error}");
        assert_eq!(error["pointer"], pointer, "{body}: {error}");
    }
    let (_, listed) = server
        .json(Method::GET, "/workflows", Some(&token), None)
        .await;
    assert_eq!(listed["items"], json!([]), "nothing was created");

    // null means "not given" where the document allows it, and `null` tags are the default.
    let (status, created) = server
        .json(
            Method::POST,
            "/workflows",
            Some(&token),
            Some(json!({"name": "Refunds", "description": null, "tags": null, "metadata": null})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["tags"], json!([]));

    // Changes are held to their own shape, nested members included.
    let path = format!("/workflows/{}", created["id"].as_str().unwrap());
    let (status, error) = server
        .json(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"name": "Refunds", "statu": "active"})),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str(), error["pointer"].as_str()),
        (400, Some("unknown_field"), Some("/statu"))
    );
    let (status, error) = server
        .json(
            Method::POST,
            &format!("{path}/versions"),
            Some(&token),
            Some(json!({"definition": {"steps": []}, "change_summary": true})),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str(), error["pointer"].as_str()),
        (400, Some("invalid_type"), Some("/change_summary"))
    );
    let (_, unchanged) = server.json(Method::GET, &path, Some(&token), None).await;
    assert_eq!(unchanged["name"], "Refunds");
    assert_eq!(unchanged["current_version_number"], Value::Null);
}

#[tokio::test]
async fn invalid_fields_are_refused_with_their_pointer() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let many_tags: Vec<String> = (0..33).map(|n| format!("t{n}")).collect();
    for (body, pointer) in [
        (json!({"name": "   "}), "/name"),
        (json!({"name": "x".repeat(256)}), "/name"),
        (json!({"name": "ok", "tags": ["fine", " "]}), "/tags/1"),
        (json!({"name": "ok", "tags": many_tags}), "/tags"),
        (
            json!({"name": "ok", "description": "d".repeat(10_001)}),
            "/description",
        ),
    ] {
        let (status, error) = server
            .json(Method::POST, "/workflows", Some(&token), Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["code"], "invalid_field");
        assert_eq!(error["pointer"], pointer, "{body}");
    }
    // Metadata that is not an object does not have the document's shape.
    let (status, error) = server
        .json(
            Method::POST,
            "/workflows",
            Some(&token),
            Some(json!({"name": "ok", "metadata": [1, 2]})),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str(), error["pointer"].as_str()),
        (400, Some("invalid_type"), Some("/metadata"))
    );
    let (status, error) = server
        .json(
            Method::POST,
            "/workflows",
            Some(&token),
            Some(json!({"tags": []})),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    // No JSON body at all.
    let (status, error) = server
        .json(Method::POST, "/workflows", Some(&token), None)
        .await;
    assert_eq!(status, 415, "{error}");
    assert_eq!(error["code"], "unsupported_media_type");
    let (status, _) = server
        .json(Method::POST, "/workflows", None, Some(json!({"name": "x"})))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn an_invalid_definition_is_refused_with_every_problem_at_its_pointer() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let workflow = id(&create_workflow(&server, &token, json!({"name": "Broken"})).await);
    let missing_user = Uuid::new_v4();
    let missing_agent = Uuid::new_v4();
    let document = json!({
        "steps": [
            {"name": "first", "type": "webhook",
             "request": {"method": "POST", "url": "https://x.example/{{ steps.later.output.id }}",
                         "body": {"secret": "{{ env.API_KEY }}", "items": ["{{ input.a", "ok"]}}},
            {"name": "Bad Name", "type": "approval", "message": "ok", "approvers": [missing_user]},
            {"name": "ask", "type": "agent", "agent_id": missing_agent, "prompt": "{{ input.q }}",
             "when": "input.amount >"},
            {"name": "later", "type": "teleport"},
            {"name": "tail", "type": "webhook", "request": {"method": "GET", "url": "https://x.example"},
             "retry": {"max_attempts": 11}}
        ]
    });
    let (status, error) =
        publish(&server, &token, &workflow, json!({"definition": document})).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["code"], "invalid_definition");
    let mut pointers: Vec<&str> = error["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|problem| {
            assert!(!problem["message"].as_str().unwrap().is_empty());
            problem["pointer"].as_str().unwrap()
        })
        .collect();
    pointers.sort_unstable();
    assert_eq!(
        pointers,
        [
            "/definition/steps/0/request/body/items/0",
            "/definition/steps/0/request/body/secret",
            "/definition/steps/0/request/url",
            "/definition/steps/1/approvers/0",
            "/definition/steps/1/name",
            "/definition/steps/2/agent_id",
            "/definition/steps/2/when",
            "/definition/steps/3/type",
            "/definition/steps/4/retry/max_attempts",
        ],
        "{error}"
    );
    let message_at = |pointer: &str| {
        error["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|problem| problem["pointer"] == pointer)
            .unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(message_at("/definition/steps/0/request/url").contains("steps.later"));
    assert!(message_at("/definition/steps/1/approvers/0").contains("does not exist"));
    assert!(message_at("/definition/steps/2/agent_id").contains("does not exist"));
    assert_eq!(error["pointer"], error["problems"][0]["pointer"]);

    // Nothing was written.
    let (_, versions) = server
        .json(
            Method::GET,
            &format!("/workflows/{workflow}/versions"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(versions["items"], json!([]));

    // A definition that is not even an object does not have the document's shape; an object
    // without steps has the one problem of missing them.
    let (status, error) = publish(&server, &token, &workflow, json!({"definition": [1]})).await;
    assert_eq!(
        (status, error["code"].as_str(), error["pointer"].as_str()),
        (400, Some("invalid_type"), Some("/definition"))
    );
    let (status, error) = publish(&server, &token, &workflow, json!({"definition": {}})).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["problems"][0]["pointer"], "/definition/steps");
}

#[tokio::test]
async fn referenced_agents_and_approvers_must_be_usable() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let bob = server.create_user("bob", false).await;
    let carol = server.create_user("carol", false).await;
    let (active, inactive, deprecated) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // Agents of another user: the active one is in the catalog, the inactive one is hidden from
    // alice yet exists, the deprecated one is refused for new versions.
    server
        .database()
        .execute(&format!(
            "INSERT INTO agents (id, name, type, status, configuration, created_by) VALUES \
             ('{active}', 'a', 'custom', 'active', '{{}}', '{bob}'), \
             ('{inactive}', 'i', 'custom', 'inactive', '{{}}', '{bob}'), \
             ('{deprecated}', 'd', 'custom', 'deprecated', '{{}}', '{bob}')",
            bob = bob.id
        ))
        .await;
    let (status, _) = server
        .json(
            Method::DELETE,
            &format!("/users/{}", carol.id),
            Some(&server.signed_in("root", true).await.1),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let workflow = id(&create_workflow(&server, &token, json!({"name": "Agents"})).await);
    let step = |name: &str, agent: Uuid| json!({"name": name, "type": "agent", "agent_id": agent, "prompt": "Hello {{ input.who }}"});
    let approval = |name: &str, approver: &str| json!({"name": name, "type": "approval", "message": "ok?", "approvers": [approver]});
    let (status, error) = publish(
        &server,
        &token,
        &workflow,
        json!({"definition": {"steps": [
            step("one", active), step("two", inactive), step("three", deprecated),
            approval("four", &bob.id), approval("five", &carol.id), approval("six", &alice.id)
        ]}}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    let problems: Vec<(String, String)> = error["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pointer"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(problems.len(), 2, "{error}");
    assert_eq!(problems[0].0, "/definition/steps/2/agent_id");
    assert!(problems[0].1.contains("deprecated"));
    assert_eq!(problems[1].0, "/definition/steps/4/approvers/0");
    assert!(problems[1].1.contains("deactivated"));

    let (status, version) = publish(
        &server,
        &token,
        &workflow,
        json!({"definition": {"steps": [
            step("one", active), step("two", inactive), approval("four", &bob.id)
        ]}}),
    )
    .await;
    assert_eq!(status, 201, "{version}");
}

#[tokio::test]
async fn versions_are_numbered_listed_read_and_compared() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let workflow = id(&create_workflow(&server, &token, json!({"name": "Versions"})).await);
    let first = definition("https://a.example/{{ input.order_id }}", &alice.id);
    let second = definition("https://b.example/{{ input.order_id }}", &alice.id);
    let (status, v1) = publish(
        &server,
        &token,
        &workflow,
        json!({"definition": first, "change_summary": " first "}),
    )
    .await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["change_summary"], "first");
    assert_eq!(v1["created_by"], alice.id.as_str());
    assert_eq!(v1["definition"], first);
    // Not published as current: the first stays current.
    let (status, v2) = publish(
        &server,
        &token,
        &workflow,
        json!({"definition": second, "publish": false}),
    )
    .await;
    assert_eq!(status, 201, "{v2}");
    assert_eq!(v2["version_number"], 2);
    let (_, read) = server
        .json(
            Method::GET,
            &format!("/workflows/{workflow}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(read["current_version_id"], v1["id"]);
    assert_eq!(read["current_version_number"], 1);

    for _ in 0..3 {
        let (status, _) = publish(&server, &token, &workflow, json!({"definition": first})).await;
        assert_eq!(status, 201);
    }
    // Newest first, two at a time, no gaps or repeats.
    let mut numbers = Vec::new();
    let path = format!("/workflows/{workflow}/versions?limit=2");
    for item in server.pages(&path, &token, 10).await.iter().flatten() {
        assert!(item.get("definition").is_none());
        numbers.push(item["version_number"].as_u64().unwrap());
    }
    assert_eq!(numbers, [5, 4, 3, 2, 1]);

    let (status, read) = server
        .json(
            Method::GET,
            &format!("/workflows/{workflow}/versions/2"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(read, v2);
    for missing in ["99", "0"] {
        let (status, error) = server
            .json(
                Method::GET,
                &format!("/workflows/{workflow}/versions/{missing}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 404, "{error}");
        assert_eq!(error["code"], "version_not_found");
    }
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/workflows/{workflow}/versions/abc"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, error) = server
        .json(
            Method::GET,
            &format!("/workflows/{workflow}/versions?cursor=garbage"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_cursor"))
    );

    let (status, diff) = server
        .json(
            Method::GET,
            &format!("/workflows/{workflow}/versions/1/diff/2"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(diff["from_version"], 1);
    assert_eq!(diff["to_version"], 2);
    assert_eq!(
        diff["patch"],
        json!([{"op": "replace", "path": "/steps/0/request/url",
                "value": "https://b.example/{{ input.order_id }}"}])
    );
    let (_, same) = server
        .json(
            Method::GET,
            &format!("/workflows/{workflow}/versions/1/diff/3"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(same["patch"], json!([]));
    let (status, error) = server
        .json(
            Method::GET,
            &format!("/workflows/{workflow}/versions/1/diff/9"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("version_not_found"))
    );
}

#[tokio::test]
async fn fifty_concurrent_publishes_get_versions_one_to_fifty() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let workflow = id(&create_workflow(&server, &token, json!({"name": "Busy"})).await);
    let document = definition("https://a.example/{{ input.order_id }}", &alice.id);
    // Fifty clients at once, each on its own connection.
    let mut publishes = tokio::task::JoinSet::new();
    for n in 0..50 {
        let request = reqwest::Client::new()
            .post(server.url(&format!("/workflows/{workflow}/versions")))
            .bearer_auth(&token)
            .json(&json!({"definition": document, "change_summary": format!("n{n}")}));
        publishes.spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let results = publishes.join_all().await;
    let mut numbers: Vec<u64> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["version_number"].as_u64().unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=50).collect::<Vec<u64>>());
    let stored = server
        .database()
        .rows(&format!(
            "SELECT count(*) AS n, max(version_number) AS top FROM workflow_versions WHERE workflow_id = '{workflow}'"
        ))
        .await;
    assert_eq!(stored[0], json!({"n": 50, "top": 50}));
}

#[tokio::test]
async fn rollback_makes_an_earlier_version_current_and_is_audited() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let workflow = id(&create_workflow(&server, &token, json!({"name": "Rollback"})).await);
    let (_, v1) = publish(
        &server,
        &token,
        &workflow,
        json!({"definition": definition("https://a.example", &alice.id)}),
    )
    .await;
    let (_, v2) = publish(
        &server,
        &token,
        &workflow,
        json!({"definition": definition("https://b.example", &alice.id)}),
    )
    .await;
    let path = format!("/workflows/{workflow}/rollback");
    let (status, rolled) = server
        .json(
            Method::POST,
            &path,
            Some(&token),
            Some(json!({"version_number": 1})),
        )
        .await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(rolled["current_version_id"], v1["id"]);
    assert_eq!(rolled["current_version_number"], 1);

    let audit = server
        .database()
        .rows(&format!(
            "SELECT user_id, host(ip_address) AS ip, user_agent, changes FROM audit_logs \
             WHERE resource_type = 'workflow' AND resource_id = '{workflow}' AND action = 'update' \
             AND changes->'after'->>'current_version_id' = '{}' \
             AND changes->'before'->>'current_version_id' = '{}'",
            id(&v1),
            id(&v2)
        ))
        .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["user_id"], alice.id.as_str());
    assert_eq!(audit[0]["ip"], "127.0.0.1");
    assert_eq!(audit[0]["user_agent"], "ipa-tests/1.0");

    for (body, code) in [
        (json!({"version_number": 7}), "version_not_found"),
        (json!({"version_number": 0}), "invalid_field"),
    ] {
        let (status, error) = server
            .json(Method::POST, &path, Some(&token), Some(body))
            .await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["code"], code);
        assert_eq!(error["pointer"], "/version_number");
    }
}

#[tokio::test]
async fn another_users_workflow_answers_exactly_like_a_missing_one() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.signed_in("alice", false).await;
    let (bob, bob_token) = server.signed_in("bob", false).await;
    let (_, root_token) = server.signed_in("root", true).await;
    let alices = id(&create_workflow(&server, &alice_token, json!({"name": "Alice's"})).await);
    publish(
        &server,
        &alice_token,
        &alices,
        json!({"definition": definition("https://a.example", &alice.id)}),
    )
    .await;
    let bobs = id(&create_workflow(&server, &bob_token, json!({"name": "Bob's"})).await);
    let missing = Uuid::new_v4().to_string();

    let probes = |workflow: &str| {
        vec![
            (Method::GET, format!("/workflows/{workflow}"), None),
            (
                Method::PATCH,
                format!("/workflows/{workflow}"),
                Some(json!({"name": "mine now"})),
            ),
            (Method::DELETE, format!("/workflows/{workflow}"), None),
            (Method::GET, format!("/workflows/{workflow}/versions"), None),
            (
                Method::GET,
                format!("/workflows/{workflow}/versions/1"),
                None,
            ),
            (
                Method::GET,
                format!("/workflows/{workflow}/versions/1/diff/1"),
                None,
            ),
            (
                Method::POST,
                format!("/workflows/{workflow}/versions"),
                Some(json!({"definition": definition("https://b.example", &bob.id)})),
            ),
            (
                Method::POST,
                format!("/workflows/{workflow}/rollback"),
                Some(json!({"version_number": 1})),
            ),
        ]
    };
    for ((method, foreign, body), (_, absent, _)) in
        probes(&alices).into_iter().zip(probes(&missing))
    {
        let theirs = server
            .json(method.clone(), &foreign, Some(&bob_token), body.clone())
            .await;
        let nobodys = server
            .json(method.clone(), &absent, Some(&bob_token), body)
            .await;
        assert_eq!(theirs.0, 404, "{method} {foreign}: {}", theirs.1);
        assert_eq!(theirs, nobodys, "{method} {foreign}");
    }
    // Alice's workflow is untouched.
    let (_, still) = server
        .json(
            Method::GET,
            &format!("/workflows/{alices}"),
            Some(&alice_token),
            None,
        )
        .await;
    assert_eq!(still["name"], "Alice's");
    assert_eq!(still["current_version_number"], 1);

    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, mine) = server
        .json(Method::GET, "/workflows", Some(&bob_token), None)
        .await;
    assert_eq!(names(&mine), ["Bob's"]);
    let (_, all) = server
        .json(Method::GET, "/workflows", Some(&root_token), None)
        .await;
    assert_eq!(names(&all), ["Bob's", "Alice's"]);
    let (_, owned) = server
        .json(
            Method::GET,
            &format!("/workflows?owner_id={}", alice.id),
            Some(&root_token),
            None,
        )
        .await;
    assert_eq!(names(&owned), ["Alice's"]);
    // A superuser may change anyone's workflow.
    let (status, changed) = server
        .json(
            Method::PATCH,
            &format!("/workflows/{bobs}"),
            Some(&root_token),
            Some(json!({"tags": ["audited"]})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["owner_id"], bob.id.as_str());
}

#[tokio::test]
async fn filters_return_exactly_the_matching_workflows_newest_first() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let specs = [
        (
            "Invoice sync",
            json!(["finance", "ops"]),
            json!({"team": "billing", "tier": 1}),
        ),
        (
            "Refund 100% check",
            json!(["finance"]),
            json!({"team": "billing", "tier": 2}),
        ),
        (
            "Onboarding",
            json!(["hr", "ops"]),
            json!({"team": "people"}),
        ),
        (
            "invoice archive",
            json!(["finance", "ops", "archive"]),
            json!({"team": "billing", "nested": {"a": 1}}),
        ),
    ];
    let mut ids = Vec::new();
    for (name, tags, metadata) in specs {
        ids.push(id(&create_workflow(
            &server,
            &token,
            json!({"name": name, "tags": tags, "metadata": metadata}),
        )
        .await));
    }
    publish(
        &server,
        &token,
        &ids[2],
        json!({"definition": definition("https://a.example", &alice.id)}),
    )
    .await;
    server
        .json(
            Method::PATCH,
            &format!("/workflows/{}", ids[2]),
            Some(&token),
            Some(json!({"status": "active"})),
        )
        .await;
    let names = |query: &str| {
        let server = &server;
        let token = &token;
        let query = query.to_owned();
        async move {
            let (status, page) = server
                .json(
                    Method::GET,
                    &format!("/workflows{query}"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{query}: {page}");
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names("?tags=finance&tags=ops").await,
        ["invoice archive", "Invoice sync"]
    );
    assert_eq!(
        names("?tags=ops").await,
        ["invoice archive", "Onboarding", "Invoice sync"]
    );
    assert_eq!(names("?tags=nobody").await, Vec::<String>::new());
    let metadata = |value: &str| format!("?metadata={}", urlencode(value));
    assert_eq!(
        names(&metadata(r#"{"team":"billing"}"#)).await,
        ["invoice archive", "Refund 100% check", "Invoice sync"]
    );
    assert_eq!(
        names(&metadata(r#"{"team":"billing","tier":2}"#)).await,
        ["Refund 100% check"]
    );
    assert_eq!(
        names(&metadata(r#"{"nested":{"a":1}}"#)).await,
        ["invoice archive"]
    );
    assert_eq!(
        names("?name=INVOICE").await,
        ["invoice archive", "Invoice sync"]
    );
    // LIKE wildcards in the search match literally.
    assert_eq!(names("?name=100%25").await, ["Refund 100% check"]);
    assert_eq!(names("?name=_").await, Vec::<String>::new());
    assert_eq!(names("?status=active").await, ["Onboarding"]);
    assert_eq!(
        names("?status=draft&tags=finance&name=sync").await,
        ["Invoice sync"]
    );

    // Paging through everything: no gaps, no repeats.
    let first = names("?limit=3").await;
    let (_, page) = server
        .json(Method::GET, "/workflows?limit=3", Some(&token), None)
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = names(&format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(
        [first, rest].concat(),
        [
            "invoice archive",
            "Onboarding",
            "Refund 100% check",
            "Invoice sync"
        ]
    );

    for bad in [
        "?metadata=%5B1%5D",
        "?metadata=nope",
        "?status=paused",
        "?limit=0",
    ] {
        let (status, error) = server
            .json(Method::GET, &format!("/workflows{bad}"), Some(&token), None)
            .await;
        assert_eq!(status, 400, "{bad}: {error}");
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn deleting_is_refused_while_executions_refer_to_the_workflow() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let kept = id(&create_workflow(&server, &token, json!({"name": "Has runs"})).await);
    let (_, version) = publish(
        &server,
        &token,
        &kept,
        json!({"definition": definition("https://a.example", &alice.id)}),
    )
    .await;
    server
        .database()
        .execute(&format!(
            "INSERT INTO executions (workflow_id, workflow_version_id, triggered_by, input_data) \
             VALUES ('{kept}', '{}', '{}', '{{}}')",
            id(&version),
            alice.id
        ))
        .await;
    let (status, error) = server
        .json(
            Method::DELETE,
            &format!("/workflows/{kept}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["code"], "workflow_has_executions");
    assert!(error["message"].as_str().unwrap().contains("archive"));
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/workflows/{kept}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let gone = id(&create_workflow(&server, &token, json!({"name": "Disposable"})).await);
    for _ in 0..3 {
        publish(
            &server,
            &token,
            &gone,
            json!({"definition": definition("https://a.example", &alice.id)}),
        )
        .await;
    }
    let response = server
        .call(
            Method::DELETE,
            &format!("/workflows/{gone}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 204);
    let (status, _) = server
        .json(
            Method::GET,
            &format!("/workflows/{gone}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .json(
            Method::DELETE,
            &format!("/workflows/{gone}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let versions = server
        .database()
        .rows(&format!(
            "SELECT id FROM workflow_versions WHERE workflow_id = '{gone}'"
        ))
        .await;
    assert!(versions.is_empty());
}

#[tokio::test]
async fn every_change_writes_exactly_one_audit_row_with_its_actor() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let audit_rows = |resource_id: String| {
        let server = &server;
        async move {
            server
                .database()
                .rows(&format!(
                    "SELECT action::text AS action, resource_type, user_id, host(ip_address) AS ip, \
                     user_agent, changes FROM audit_logs WHERE resource_id = '{resource_id}' ORDER BY id"
                ))
                .await
        }
    };
    let workflow = id(&create_workflow(&server, &token, json!({"name": "Audited"})).await);
    server
        .json(
            Method::PATCH,
            &format!("/workflows/{workflow}"),
            Some(&token),
            Some(json!({"name": "Audited twice"})),
        )
        .await;
    let (_, version) = publish(
        &server,
        &token,
        &workflow,
        json!({"definition": definition("https://a.example", &alice.id), "publish": false}),
    )
    .await;

    let rows = audit_rows(workflow.clone()).await;
    let actions: Vec<&str> = rows
        .iter()
        .map(|row| row["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update"], "{rows:?}");
    assert_eq!(rows[1]["changes"]["before"]["name"], "Audited");
    assert_eq!(rows[1]["changes"]["after"]["name"], "Audited twice");
    let version_rows = audit_rows(id(&version)).await;
    assert_eq!(version_rows.len(), 1, "{version_rows:?}");
    assert_eq!(version_rows[0]["resource_type"], "workflow_version");
    assert_eq!(version_rows[0]["action"], "create");
    assert_eq!(version_rows[0]["changes"]["after"]["version_number"], 1);
    for row in rows.iter().chain(&version_rows) {
        assert_eq!(row["user_id"], alice.id.as_str());
        assert_eq!(row["ip"], "127.0.0.1");
        assert_eq!(row["user_agent"], "ipa-tests/1.0");
    }

    // Deleting a workflow with its versions is one row, naming the workflow as it was.
    server
        .call(
            Method::DELETE,
            &format!("/workflows/{workflow}"),
            Some(&token),
            None,
        )
        .await;
    let rows = audit_rows(workflow.clone()).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["action"], "delete");
    assert_eq!(rows[2]["changes"]["before"]["name"], "Audited twice");
    assert_eq!(
        audit_rows(id(&version)).await.len(),
        1,
        "the cascade wrote no row of its own"
    );
}

#[tokio::test]
async fn tags_that_look_like_array_syntax_are_stored_and_found_exactly() {
    // Tags travel to PostgreSQL as bound arrays: quotes, backslashes, braces, commas and the word
    // NULL are plain text in them, never array syntax.
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("root", true).await;
    let tricky = [r#"q"u"#, r"back\slash", "{,}", "a,b", "NULL"];
    let created = create_workflow(&server, &token, json!({"name": "tricky", "tags": tricky})).await;
    assert_eq!(created["tags"], json!(tricky));
    let plain = create_workflow(
        &server,
        &token,
        json!({"name": "plain", "tags": ["a", "b"]}),
    )
    .await;
    let (status, read) = server
        .json(
            Method::GET,
            &format!("/workflows/{}", id(&created)),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, &read["tags"]), (200, &json!(tricky)));
    for tag in tricky {
        let (status, page) = server
            .json(
                Method::GET,
                &format!("/workflows?tags={}", urlencode(tag)),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{tag}: {page}");
        let found: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap())
            .collect();
        assert_eq!(found, ["tricky"], "{tag}");
    }
    let (status, changed) = server
        .json(
            Method::PATCH,
            &format!("/workflows/{}", id(&plain)),
            Some(&token),
            Some(json!({"tags": ["{a,b}", r#"\""#]})),
        )
        .await;
    assert_eq!(
        (status, &changed["tags"]),
        (200, &json!(["{a,b}", r#"\""#]))
    );
}
