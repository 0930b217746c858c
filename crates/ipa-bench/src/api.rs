//! The few API calls the suite makes to set itself up (not measured): signing in, creating the
//! benchmark user as the administrator, and creating the engine's workflow.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::database::clip;

/// The benchmark user: an ordinary account created through `POST /users`.
pub const USERNAME: &str = "bench-user";
/// The password of every benchmark account.
pub const PASSWORD: &str = "bench-user-password";

/// A signed-in account.
#[derive(Clone, Debug)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// The account's id.
    pub user_id: String,
}

/// Sends `request` and returns the JSON body of a 2xx answer; anything else is an error quoting
/// the answer.
async fn call(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let response = request
        .header(reqwest::header::USER_AGENT, crate::sql::USER_AGENT)
        .send()
        .await
        .with_context(|| what.to_owned())?;
    let status = response.status();
    let body = response.text().await.with_context(|| what.to_owned())?;
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {}", clip(&body, 500));
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: reading {}", clip(&body, 200)))
}

/// Signs in.
pub async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    identifier: &str,
    password: &str,
) -> anyhow::Result<Session> {
    let body = call(
        client
            .post(format!("{base}/auth/login"))
            .json(&json!({"identifier": identifier, "password": password})),
        "signing in",
    )
    .await?;
    let text = |value: &Value| value.as_str().map(str::to_owned);
    Ok(Session {
        token: text(&body["access_token"]).context("the sign-in answer has no token")?,
        user_id: text(&body["user"]["id"]).context("the sign-in answer has no user id")?,
    })
}

/// The account the `n`-th client of the sign-in load signs in with: one account per client, as
/// when many people sign in at once (the throttle holds concurrent attempts on one account).
pub fn sign_in_account(n: u32) -> String {
    format!("bench-signin-{n}")
}

/// Creates an ordinary account `username` with [`PASSWORD`] as `admin`; returns its id.
pub async fn create_user(
    client: &reqwest::Client,
    base: &str,
    admin: &Session,
    username: &str,
) -> anyhow::Result<String> {
    let body = call(
        client
            .post(format!("{base}/users"))
            .bearer_auth(&admin.token)
            .json(&json!({
                "email": format!("{username}@bench.example"),
                "username": username,
                "full_name": "Benchmark User",
                "password": PASSWORD,
            })),
        "creating a benchmark user",
    )
    .await?;
    body["id"]
        .as_str()
        .map(str::to_owned)
        .context("the created user has no id")
}

/// Creates an active workflow whose one step calls `url`; returns its id.
pub async fn create_webhook_workflow(
    client: &reqwest::Client,
    base: &str,
    user: &Session,
    name: &str,
    url: &str,
) -> anyhow::Result<String> {
    let created = call(
        client
            .post(format!("{base}/workflows"))
            .bearer_auth(&user.token)
            .json(&json!({"name": name, "tags": ["benchmark"], "metadata": {"team": "bench"}})),
        "creating a workflow",
    )
    .await?;
    let id = created["id"]
        .as_str()
        .map(str::to_owned)
        .context("the created workflow has no id")?;
    let definition: Value = serde_json::from_str(&crate::seed::webhook_definition(url))
        .context("the webhook definition")?;
    call(
        client
            .post(format!("{base}/workflows/{id}/versions"))
            .bearer_auth(&user.token)
            .json(&json!({"definition": definition, "change_summary": "benchmark"})),
        "publishing a workflow version",
    )
    .await?;
    call(
        client
            .patch(format!("{base}/workflows/{id}"))
            .bearer_auth(&user.token)
            .json(&json!({"status": "active"})),
        "activating a workflow",
    )
    .await?;
    Ok(id)
}

/// Starts a run of `workflow` with `input`.
pub async fn start_run(
    client: &reqwest::Client,
    base: &str,
    user: &Session,
    workflow: &str,
    input: Value,
) -> anyhow::Result<()> {
    call(
        client
            .post(format!("{base}/workflows/{workflow}/executions"))
            .bearer_auth(&user.token)
            .json(&json!({"input": input})),
        "starting a run",
    )
    .await
    .map(drop)
}
