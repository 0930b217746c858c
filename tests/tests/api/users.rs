//! User administration: superusers create, list, read, change and deactivate accounts.

use reqwest::Method;
use serde_json::{Value, json};
use tests::TestServer;

fn new_user(username: &str) -> Value {
    json!({
        "email": format!("{username}@Example.org"),
        "username": username,
        "password": "a-good-password",
    })
}

#[tokio::test]
async fn superusers_create_accounts_that_can_sign_in() {
    let server = TestServer::start().await;
    let (_, admin) = server.signed_in("root", true).await;
    let (status, created) = server
        .json(
            Method::POST,
            "/users",
            Some(&admin),
            Some(json!({
                "email": "Carol@Example.org",
                "username": "carol",
                "full_name": "Carol Danvers",
                "password": "a-good-password",
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["email"], "carol@example.org");
    assert_eq!(created["is_superuser"], false);
    assert_eq!(created["is_active"], true);
    assert_eq!(created["last_login_at"], Value::Null);
    assert!(created.get("password").is_none() && created.get("hashed_password").is_none());

    let (status, body) = server
        .json(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"identifier": "carol@example.org", "password": "a-good-password"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The creation is audited with the real actor and the hash redacted.
    let audit = server
        .database()
        .rows(&format!(
            "SELECT user_id::text, changes FROM audit_logs \
             WHERE action = 'create' AND resource_type = 'user' AND resource_id = '{}'",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(audit.len(), 1);
    let root_id = server
        .database()
        .rows("SELECT id::text FROM users WHERE username = 'root'")
        .await[0]["id"]
        .clone();
    assert_eq!(audit[0]["user_id"], root_id);
    assert_eq!(
        audit[0]["changes"]["after"]["hashed_password"],
        "[REDACTED]"
    );
}

#[tokio::test]
async fn duplicates_are_409_naming_the_field() {
    let server = TestServer::start().await;
    let (_, admin) = server.signed_in("root", true).await;
    let (status, _) = server
        .json(Method::POST, "/users", Some(&admin), Some(new_user("dave")))
        .await;
    assert_eq!(status, 201);

    let mut same_email = new_user("dave2");
    same_email["email"] = json!("DAVE@example.org");
    let (status, body) = server
        .json(Method::POST, "/users", Some(&admin), Some(same_email))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "duplicate_email");
    assert_eq!(body["pointer"], "/email");

    let mut same_username = new_user("dave");
    same_username["email"] = json!("other@example.org");
    let (status, body) = server
        .json(Method::POST, "/users", Some(&admin), Some(same_username))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "duplicate_username");
    assert_eq!(body["pointer"], "/username");
}

#[tokio::test]
async fn invalid_fields_are_422_with_a_pointer() {
    let server = TestServer::start().await;
    let (_, admin) = server.signed_in("root", true).await;
    let cases = [
        ("email", json!("not-an-email"), "/email"),
        ("username", json!("a b"), "/username"),
        ("password", json!("short"), "/password"),
        ("full_name", json!("x".repeat(256)), "/full_name"),
    ];
    for (field, value, pointer) in cases {
        let mut body = new_user("erin");
        body[field] = value;
        let (status, error) = server
            .json(Method::POST, "/users", Some(&admin), Some(body))
            .await;
        assert_eq!(status, 422, "{field}: {error}");
        assert_eq!(error["code"], "invalid_field");
        assert_eq!(error["pointer"], pointer);
        // The password is never echoed back.
        assert!(!error["message"].as_str().unwrap().contains("short"));
    }
}

#[tokio::test]
async fn other_users_get_403_on_every_admin_endpoint() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let path = format!("/users/{}", alice.id);
    let calls = [
        (Method::POST, "/users".to_owned(), Some(new_user("frank"))),
        (Method::GET, "/users".to_owned(), None),
        (Method::GET, path.clone(), None),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"is_superuser": true})),
        ),
        (Method::DELETE, path, None),
    ];
    for (method, path, body) in calls {
        let (status, error) = server.json(method.clone(), &path, Some(&token), body).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
        assert_eq!(error["code"], "forbidden");
    }
    // Alice is still an ordinary, active user.
    let (_, me) = server.json(Method::GET, "/me", Some(&token), None).await;
    assert_eq!(me["is_superuser"], false);
    assert_eq!(me["is_active"], true);
}

#[tokio::test]
async fn lists_are_paginated_by_keyset_without_gaps_or_repeats() {
    let server = TestServer::start().await;
    let (_, admin) = server.signed_in("root", true).await;
    for n in 0..5 {
        server.create_user(&format!("user{n}"), false).await;
    }
    let pages = server.pages("/users?limit=2", &admin, 10).await;
    let seen: Vec<_> = pages
        .iter()
        .flatten()
        .map(|item| item["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pages.len(), 3);
    // Newest first: the five users in reverse order of creation, then root.
    assert_eq!(seen, ["user4", "user3", "user2", "user1", "user0", "root"]);
}

#[tokio::test]
async fn lists_filter_by_activity_and_search_by_prefix() {
    let server = TestServer::start().await;
    let (_, admin) = server.signed_in("root", true).await;
    let grace = server.create_user("grace", false).await;
    server.create_user("gregory", false).await;
    server.create_user("heidi", false).await;
    server
        .json(
            Method::DELETE,
            &format!("/users/{}", grace.id),
            Some(&admin),
            None,
        )
        .await;

    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, page) = server
        .json(Method::GET, "/users?search=gr", Some(&admin), None)
        .await;
    assert_eq!(names(&page), ["gregory", "grace"]);
    let (_, page) = server
        .json(
            Method::GET,
            "/users?search=GREGORY%40EX",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(names(&page), ["gregory"]);
    let (_, page) = server
        .json(Method::GET, "/users?active=false", Some(&admin), None)
        .await;
    assert_eq!(names(&page), ["grace"]);
    let (_, page) = server
        .json(
            Method::GET,
            "/users?active=true&search=g",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(names(&page), ["gregory"]);
    // LIKE's wildcards are matched literally.
    let (_, page) = server
        .json(Method::GET, "/users?search=%25", Some(&admin), None)
        .await;
    assert_eq!(names(&page), Vec::<String>::new());
}

#[tokio::test]
async fn bad_page_parameters_are_400() {
    let server = TestServer::start().await;
    let (_, admin) = server.signed_in("root", true).await;
    for (path, code) in [
        ("/users?limit=0", "invalid_limit"),
        ("/users?limit=201", "invalid_limit"),
        ("/users?cursor=bm9wZQ", "invalid_cursor"),
        ("/users?cursor=!!!", "invalid_cursor"),
        ("/users?active=maybe", "invalid_parameter"),
    ] {
        let (status, body) = server.json(Method::GET, path, Some(&admin), None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], code, "{path}");
    }
    // Parameters that do not parse are named as documented, with their pointer and what they
    // must be (poem-openapi calls path parameters `param0`, ... inside).
    for (path, pointer, message) in [
        (
            "/users?active=maybe",
            "/query/active",
            "The query parameter `active` must be `true` or `false`.",
        ),
        (
            "/users/not-a-uuid",
            "/path/1",
            "The path parameter `id` must be a UUID.",
        ),
        (
            "/users?limit=-1",
            "/query/limit",
            "The query parameter `limit` must be a whole number from 0 to 4294967295.",
        ),
    ] {
        let (status, body) = server.json(Method::GET, path, Some(&admin), None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], "invalid_parameter", "{path}: {body}");
        assert_eq!(body["pointer"], pointer, "{path}: {body}");
        assert_eq!(body["message"], message, "{path}: {body}");
    }
}

#[tokio::test]
async fn superusers_read_and_change_accounts() {
    let server = TestServer::start().await;
    let (_, admin) = server.signed_in("root", true).await;
    let ivan = server.create_user("ivan", false).await;
    let path = format!("/users/{}", ivan.id);

    let (status, user) = server.json(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(user["username"], "ivan");

    let (status, user) = server
        .json(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"full_name": "Ivan Petrov", "is_superuser": true})),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["full_name"], "Ivan Petrov");
    assert_eq!(user["is_superuser"], true);

    let missing = "/users/00000000-0000-4000-8000-000000000000";
    let (status, body) = server.json(Method::GET, missing, Some(&admin), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    let (status, _) = server
        .json(
            Method::PATCH,
            missing,
            Some(&admin),
            Some(json!({"full_name": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = server
        .json(Method::GET, "/users/not-a-uuid", Some(&admin), None)
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn deactivation_revokes_every_session_and_reactivation_restores_sign_in() {
    let server = TestServer::start().await;
    let (_, admin) = server.signed_in("root", true).await;
    let (judy, first) = server.signed_in("judy", false).await;
    let second = server.login(&judy).await;
    let path = format!("/users/{}", judy.id);
    // Both tokens used once, so the server remembers them (its session cache).
    for token in [&first, &second] {
        assert_eq!(
            server.json(Method::GET, "/me", Some(token), None).await.0,
            200
        );
    }

    let (status, user) = server.json(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["is_active"], false);
    for token in [&first, &second] {
        let (status, body) = server.json(Method::GET, "/me", Some(token), None).await;
        assert_eq!(status, 401, "{body}");
    }
    let live = server
        .database()
        .rows(&format!(
            "SELECT id FROM sessions WHERE user_id = '{}' AND revoked_at IS NULL",
            judy.id
        ))
        .await;
    assert!(live.is_empty(), "{live:?}");

    let (status, _) = server
        .json(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(status, 200);
    // Old sessions stay revoked; signing in again works.
    assert_eq!(
        server.json(Method::GET, "/me", Some(&first), None).await.0,
        401
    );
    server.login(&judy).await;
}

#[tokio::test]
async fn the_last_active_superuser_cannot_be_removed() {
    let server = TestServer::start().await;
    let (root, admin) = server.signed_in("root", true).await;
    let path = format!("/users/{}", root.id);
    let (status, body) = server.json(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "last_superuser");
    let (status, _) = server
        .json(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"is_superuser": false})),
        )
        .await;
    assert_eq!(status, 409);

    // With a second superuser, the first may step down.
    let other = server.create_user("other_admin", true).await;
    let (status, body) = server
        .json(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"is_superuser": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let _ = other;
}
