//! Liveness, readiness, the documentation and the error shape of unknown routes.

use ipa_store::testing::TestDatabase;
use serde_json::{Value, json};
use tests::TestServer;

#[tokio::test]
async fn healthz_answers_ok() {
    let server = TestServer::start().await;
    let response = server.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn readyz_is_ready_over_a_migrated_database() {
    let server = TestServer::start().await;
    let response = server.get("/readyz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ready", "database": "ok", "pending_migrations": []})
    );
}

#[tokio::test]
async fn readyz_names_pending_migrations_with_503() {
    let server = TestServer::over(TestDatabase::empty().await).await;
    let response = server.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["database"], "pending_migrations");
    assert_eq!(body["code"], "pending_migrations");
    assert_eq!(
        body["pending_migrations"],
        json!(migration::migration_names())
    );
    assert!(body["reason"].as_str().unwrap().contains("ipa migrate up"));
}

#[tokio::test]
async fn docs_and_the_openapi_document_are_served() {
    let server = TestServer::start().await;
    let docs = server.get("/docs").await;
    assert_eq!(docs.status(), 200);
    let page = docs.text().await.unwrap();
    assert!(page.contains("swagger"), "Swagger UI page");
    // The page shows the published 3.1 document, not poem-openapi's 3.0 one.
    assert!(
        page.contains(r#""openapi": "3.1.0""#),
        "Swagger UI shows 3.1"
    );
    assert!(
        !page.contains(r#""openapi": "3.0.0""#),
        "Swagger UI shows 3.1"
    );

    let response = server.get("/openapi.json").await;
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let spec: Value = response.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["info"]["title"], "IPA Platform API");
    assert!(spec["paths"]["/healthz"]["get"].is_object());
    assert!(spec["paths"]["/readyz"]["get"]["responses"]["503"].is_object());
    assert_eq!(
        spec,
        serde_json::from_str::<Value>(&ipa_api::openapi_json()).unwrap()
    );
}

#[tokio::test]
async fn unknown_routes_get_a_json_error_with_a_stable_code() {
    let server = TestServer::start().await;
    let response = server.get("/no/such/thing").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "not_found");

    let wrong_method = reqwest::Client::new()
        .delete(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET");
    assert_eq!(
        wrong_method.json::<Value>().await.unwrap()["code"],
        "method_not_allowed"
    );
    // A templated path lists every method its operations have.
    let wrong_method = reqwest::Client::new()
        .put(server.url("/workflows/00000000-0000-4000-8000-000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "DELETE, GET, PATCH");

    // A body that is not JSON is refused as such, with its own code.
    let (_, token) = server.signed_in("alice", false).await;
    let not_json = reqwest::Client::new()
        .post(server.url("/workflows"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("name=Refunds")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_media_type", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json"),
        "{body}"
    );
}

#[test]
fn every_operation_but_sign_in_and_health_requires_the_bearer_scheme() {
    let spec: Value = serde_json::from_str(&ipa_api::openapi_json()).unwrap();
    assert_eq!(
        spec["components"]["securitySchemes"]["BearerAuth"]["scheme"],
        "bearer"
    );
    let open = ["/healthz", "/readyz", "/auth/login"];
    let mut checked = 0;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let secured = operation["security"]
                .as_array()
                .is_some_and(|schemes| schemes.iter().any(|s| s.get("BearerAuth").is_some()));
            assert_eq!(
                secured,
                !open.contains(&path.as_str()),
                "{method} {path}: security {}",
                operation["security"]
            );
            if secured {
                assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
}
