//! Sign-in, sign-out, bearer authentication, the throttle and one's own profile.

use std::time::Duration;

use ipa_identity::{IdentityPolicy, SessionLifetimes, ThrottlePolicy};
use reqwest::Method;
use serde_json::{Value, json};
use tests::TestServer;

async fn login_raw(server: &TestServer, identifier: &str, password: &str) -> (u16, Value) {
    server
        .json(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"identifier": identifier, "password": password})),
        )
        .await
}

fn throttle(per_account: u32, per_address: u32) -> IdentityPolicy {
    IdentityPolicy {
        throttle: ThrottlePolicy::new(per_account, per_address, time::Duration::minutes(10))
            .unwrap(),
        ..IdentityPolicy::default()
    }
}

#[tokio::test]
async fn signing_in_returns_a_token_that_authenticates() {
    let server = TestServer::start().await;
    let alice = server.create_user("alice", false).await;

    let (status, body) = login_raw(&server, "alice", &alice.password).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("ipa_") && token.len() >= 40, "{token}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"]["username"], "alice");
    assert!(body["user"]["last_login_at"].is_string());
    assert!(body["user"].get("hashed_password").is_none());
    assert!(body["expires_at"].is_string() && body["idle_expires_at"].is_string());

    let (status, me) = server.json(Method::GET, "/me", Some(token), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], alice.id.as_str());
    assert_eq!(me["email"], "alice@example.com");
    assert!(me["last_login_at"].is_string());

    // The email works too, in any case.
    let (status, _) = login_raw(&server, "  ALICE@Example.com ", &alice.password).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_token_is_stored_only_as_a_digest_with_the_client() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let sessions = server
        .database()
        .rows(&format!(
            "SELECT encode(token_hash, 'hex') AS digest, host(ip_address) AS ip, user_agent \
             FROM sessions WHERE user_id = '{}'",
            alice.id
        ))
        .await;
    assert_eq!(sessions.len(), 1);
    let digest = sessions[0]["digest"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    assert!(!digest.contains(&token[4..]));
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert_eq!(sessions[0]["user_agent"], "ipa-tests/1.0");
}

#[tokio::test]
async fn stored_password_hashes_name_the_owasp_argon2id_parameters() {
    let server = TestServer::start().await;
    let alice = server.create_user("alice", false).await;
    let rows = server
        .database()
        .rows(&format!(
            "SELECT hashed_password FROM users WHERE id = '{}'",
            alice.id
        ))
        .await;
    let phc = rows[0]["hashed_password"].as_str().unwrap();
    let fields: Vec<&str> = phc.split('$').collect();
    assert_eq!(fields[1], "argon2id", "{phc}");
    assert_eq!(fields[2], "v=19");
    let params: Vec<&str> = fields[3].split(',').collect();
    assert_eq!(params, ["m=19456", "t=2", "p=1"]);
    assert!(!phc.contains(&alice.password));
}

#[tokio::test]
async fn unknown_account_wrong_password_and_deactivated_account_look_the_same() {
    let server = TestServer::start().await;
    let alice = server.create_user("alice", false).await;
    let bob = server.create_user("bob", false).await;
    let (_, admin_token) = server.signed_in("root", true).await;
    let (status, _) = server
        .json(
            Method::DELETE,
            &format!("/users/{}", bob.id),
            Some(&admin_token),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let unknown = login_raw(&server, "nobody", "whatever-password").await;
    let wrong = login_raw(&server, "alice", "not-alices-password").await;
    let deactivated = login_raw(&server, "bob", &bob.password).await;
    assert_eq!(unknown.0, 401);
    assert_eq!(unknown, wrong);
    assert_eq!(unknown, deactivated);
    assert_eq!(unknown.1["code"], "invalid_credentials");
    let _ = alice;
}

#[tokio::test]
async fn protected_endpoints_refuse_missing_malformed_and_unknown_tokens() {
    let server = TestServer::start().await;
    let response = server.call(Method::GET, "/me", None, None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");

    for token in [
        "garbage",
        "ipa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "",
    ] {
        let (status, body) = server.json(Method::GET, "/me", Some(token), None).await;
        assert_eq!(status, 401, "{token}: {body}");
        assert!(
            body["code"] == "invalid_token" || body["code"] == "unauthorized",
            "{body}"
        );
    }
    let (status, _) = server.json(Method::POST, "/auth/logout", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = server.json(Method::GET, "/users", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn logout_revokes_the_token_and_both_are_audited() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let (status, body) = server
        .json(Method::POST, "/auth/logout", Some(&token), None)
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.json(Method::GET, "/me", Some(&token), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "invalid_token");

    let audit = server
        .database()
        .rows(&format!(
            "SELECT action::text, resource_type, resource_id::text, user_id::text, \
                    host(ip_address) AS ip, user_agent, changes \
             FROM audit_logs WHERE action IN ('login', 'logout') AND user_id = '{}' ORDER BY id",
            alice.id
        ))
        .await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["action"], "login");
    assert_eq!(audit[0]["changes"]["outcome"], "success");
    assert_eq!(audit[1]["action"], "logout");
    for row in &audit {
        assert_eq!(row["resource_id"], alice.id.as_str());
        assert_eq!(row["ip"], "127.0.0.1");
        assert_eq!(row["user_agent"], "ipa-tests/1.0");
    }
}

#[tokio::test]
async fn failed_sign_ins_are_audited_as_failures_without_the_password() {
    let server = TestServer::start().await;
    let alice = server.create_user("alice", false).await;
    let planted = "Planted-Secret-Guess-42";
    assert_eq!(login_raw(&server, "alice", planted).await.0, 401);
    assert_eq!(login_raw(&server, "ghost", planted).await.0, 401);

    let audit = server
        .database()
        .rows(
            "SELECT user_id, resource_id::text, host(ip_address) AS ip, changes \
             FROM audit_logs WHERE action = 'login' ORDER BY id",
        )
        .await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["user_id"], Value::Null);
    assert_eq!(audit[0]["resource_id"], alice.id.as_str());
    assert_eq!(audit[0]["changes"]["outcome"], "failure");
    assert_eq!(audit[0]["changes"]["reason"], "wrong_password");
    assert_eq!(audit[1]["resource_id"], Value::Null);
    assert_eq!(audit[1]["changes"]["reason"], "unknown_account");
    assert_eq!(audit[1]["ip"], "127.0.0.1");
    let everything = server
        .database()
        .rows("SELECT changes::text AS text FROM audit_logs")
        .await;
    for row in everything {
        assert!(!row["text"].as_str().unwrap().contains(planted), "{row}");
    }
}

#[tokio::test]
async fn repeated_failures_lock_an_account_with_retry_after_whether_or_not_it_exists() {
    let server = TestServer::with_policy(throttle(3, 1000)).await;
    let alice = server.create_user("alice", false).await;
    for _ in 0..3 {
        assert_eq!(login_raw(&server, "alice", "wrong-password").await.0, 401);
        assert_eq!(login_raw(&server, "ghost", "wrong-password").await.0, 401);
    }
    // Even the right password is refused now, and an unknown account answers the same.
    let locked = server
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"identifier": "alice", "password": alice.password})),
        )
        .await;
    assert_eq!(locked.status(), 429);
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let body: Value = locked.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    let ghost = login_raw(&server, "ghost", "wrong-password").await;
    assert_eq!(ghost.0, 429);
    assert_eq!(ghost.1, body);

    // Another account is not affected.
    let bob = server.create_user("bob", false).await;
    assert_eq!(login_raw(&server, "bob", &bob.password).await.0, 200);
}

#[tokio::test]
async fn a_success_resets_the_account_counter() {
    let server = TestServer::with_policy(throttle(3, 1000)).await;
    let alice = server.create_user("alice", false).await;
    for _ in 0..2 {
        assert_eq!(login_raw(&server, "alice", "wrong-password").await.0, 401);
    }
    assert_eq!(login_raw(&server, "alice", &alice.password).await.0, 200);
    for _ in 0..2 {
        assert_eq!(login_raw(&server, "alice", "wrong-password").await.0, 401);
    }
    assert_eq!(login_raw(&server, "alice", &alice.password).await.0, 200);
}

#[tokio::test]
async fn repeated_failures_lock_a_client_address_across_accounts() {
    let server = TestServer::with_policy(throttle(1000, 4)).await;
    let alice = server.create_user("alice", false).await;
    for name in ["a1", "a2", "a3", "a4"] {
        assert_eq!(login_raw(&server, name, "wrong-password").await.0, 401);
    }
    assert_eq!(login_raw(&server, "alice", &alice.password).await.0, 429);
}

#[tokio::test]
async fn concurrent_guesses_cannot_slip_past_the_throttle() {
    let server = TestServer::with_policy(throttle(3, 1000)).await;
    server.create_user("alice", false).await;
    let url = server.url("/auth/login");
    let guesses: Vec<_> = (0..8)
        .map(|n| {
            let url = url.clone();
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .json(&json!({"identifier": "alice", "password": format!("guess-number-{n}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|status| **status == 401).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|status| **status == 429).count(), 5);
}

#[tokio::test]
async fn an_idle_session_expires() {
    let server = TestServer::with_policy(IdentityPolicy {
        lifetimes: SessionLifetimes::new(time::Duration::seconds(1), time::Duration::hours(1))
            .unwrap(),
        ..IdentityPolicy::default()
    })
    .await;
    let (_, token) = server.signed_in("alice", false).await;
    assert_eq!(
        server.json(Method::GET, "/me", Some(&token), None).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = server.json(Method::GET, "/me", Some(&token), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "invalid_token");
}

#[tokio::test]
async fn users_change_their_own_name() {
    let server = TestServer::start().await;
    let (_, token) = server.signed_in("alice", false).await;
    let (status, me) = server
        .json(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"full_name": "  Alice Liddell "})),
        )
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["full_name"], "Alice Liddell");
    let (status, me) = server
        .json(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"full_name": null})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["full_name"], Value::Null);
    let (status, body) = server
        .json(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"full_name": "x".repeat(300)})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["pointer"], "/full_name");
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_other_sessions() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let other = server.login(&alice).await;
    // Used once, so the server remembers it (its session cache).
    assert_eq!(
        server.json(Method::GET, "/me", Some(&other), None).await.0,
        200
    );

    let (status, body) = server
        .json(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"new_password": "brand-new-password"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "current_password_required");
    let (status, body) = server
        .json(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(
                json!({"current_password": "not-it-at-all", "new_password": "brand-new-password"}),
            ),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "wrong_current_password");
    let (status, body) = server
        .json(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"current_password": alice.password, "new_password": "short"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["pointer"], "/new_password");

    let (status, body) = server
        .json(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"current_password": alice.password, "new_password": "brand-new-password"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        server.json(Method::GET, "/me", Some(&token), None).await.0,
        200
    );
    assert_eq!(
        server.json(Method::GET, "/me", Some(&other), None).await.0,
        401
    );
    assert_eq!(login_raw(&server, "alice", &alice.password).await.0, 401);
    assert_eq!(
        login_raw(&server, "alice", "brand-new-password").await.0,
        200
    );

    // The change is audited, the hash redacted on both sides.
    let audit = server
        .database()
        .rows(&format!(
            "SELECT changes FROM audit_logs WHERE action = 'update' AND resource_id = '{}'",
            alice.id
        ))
        .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        audit[0]["changes"]["before"]["hashed_password"],
        "[REDACTED]"
    );
    assert_eq!(
        audit[0]["changes"]["after"]["hashed_password"],
        "[REDACTED]"
    );
}

#[tokio::test]
async fn malformed_sign_in_bodies_are_400_in_the_common_shape() {
    let server = TestServer::start().await;
    let (status, body) = server
        .json(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"identifier": "alice"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "missing_field");
    assert_eq!(body["pointer"], "/password");
    assert!(body["message"].is_string());
    // A password sent as a number is refused as such, and its value is not echoed.
    let (status, body) = server
        .json(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"identifier": "alice", "password": 271_828_182_845_u64})),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_type")));
    assert_eq!(body["pointer"], "/password");
    assert!(!body.to_string().contains("271828182845"), "{body}");
}

#[tokio::test]
async fn a_blank_identifier_is_refused_as_such_and_counts_against_nothing() {
    let server = TestServer::with_policy(throttle(1, 1)).await;
    for blank in ["", "   ", "\t\n"] {
        let (status, body) = login_raw(&server, blank, "whatever-password").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid_field"))
        );
        assert_eq!(body["pointer"], "/identifier");
    }
    // Nothing was recorded against the address: a real sign-in still gets through a throttle of
    // one failure per address.
    let alice = server.create_user("alice", false).await;
    let (status, body) = login_raw(&server, "alice", &alice.password).await;
    assert_eq!(status, 200, "{body}");
}
