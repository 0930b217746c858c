//! The IPA platform's HTTP API: poem-openapi API structs (one per context), their DTOs, the
//! mapping of failures to JSON errors with stable codes, bearer authentication, and the assembly
//! of the documented service (OpenAPI document at `/openapi.json`, Swagger UI at `/docs`).
//!
//! Handlers stay thin: they parse requests into domain values, call a context's service and turn
//! the outcome into a documented response. The services travel with each request as
//! [`AppState`], so the document can be produced without a database.

// Handlers and their helpers return `ApiError`, the documented error responses themselves; its
// size is that of a response body, and boxing it would buy nothing on the request path.
#![allow(clippy::result_large_err)]

/// Declares an API enum mirroring a domain label enum, with conversions both ways.
macro_rules! mirror_enum {
    ($(#[$meta:meta])* $dto:ident as $name:literal <=> $domain:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(poem_openapi::Enum, Clone, Copy, Debug, PartialEq, Eq)]
        #[oai(rename = $name, rename_all = "snake_case")]
        pub enum $dto {
            $($(#[$vmeta])* $variant),+
        }

        impl From<$dto> for $domain {
            fn from(value: $dto) -> Self {
                match value { $($dto::$variant => Self::$variant),+ }
            }
        }

        impl From<$domain> for $dto {
            fn from(value: $domain) -> Self {
                match value { $($domain::$variant => Self::$variant),+ }
            }
        }
    };
}

pub mod agents;
pub mod auth;
pub mod configuration_schema;
pub mod definition_schema;
pub mod document;
pub mod door;
pub mod error;
pub mod examples;
pub mod executions;
pub mod health;
pub mod limits;
mod paging;
pub mod responses;
pub mod routing;
pub mod shape;
pub mod state;
pub mod users;
pub mod workflows;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use agents::{AgentWebhooks, AgentsApi};
pub use auth::{AuthApi, BearerAuth, client_info};
pub use door::HttpLimits;
pub use error::{ApiError, ErrorBody, Problem};
pub use executions::ExecutionsApi;
pub use health::HealthApi;
pub use state::{Agents, AppState, Identity, Workflows};
pub use users::UsersApi;
pub use workflows::WorkflowsApi;

/// The API's tags, grouping operations in the document and in Swagger UI.
#[derive(poem_openapi::Tags)]
pub enum ApiTags {
    /// Liveness and readiness of the service.
    Health,
    /// Signing in and out, and the signed-in user's own account.
    Auth,
    /// Administration of user accounts (superusers only).
    Users,
    /// Workflows, their numbered versions, diffs and rollback.
    Workflows,
    /// The shared catalog of LLM agents and their tools.
    Agents,
    /// Runs of workflows: start, follow, steer, approve; run figures.
    Executions,
}

/// Every API of the platform, composed.
pub type PlatformApi = (
    HealthApi,
    AuthApi,
    UsersApi,
    WorkflowsApi,
    AgentsApi,
    ExecutionsApi,
);

/// The documented service over every API, declaring `limits` in its description.
pub fn service(limits: &HttpLimits) -> OpenApiService<PlatformApi, &'static dyn AgentWebhooks> {
    OpenApiService::new(
        (
            HealthApi,
            AuthApi,
            UsersApi,
            WorkflowsApi,
            AgentsApi,
            ExecutionsApi,
        ),
        "IPA Platform API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(format!(
        "Intelligent Process Automation: define workflows, version them, run them and \
         audit who did what.\n\n\
         Sign in with `POST /auth/login` and send the returned token as \
         `Authorization: Bearer <token>` on every other call. Errors are JSON objects with a \
         stable `code`, a `message` and, for invalid input, the JSON `pointer` of the field. \
         Lists are paginated with an opaque `cursor`. Secrets inside agent and tool \
         configurations are write-only: give `{{\"env\": \"NAME\"}}` or \
         `{{\"value\": \"...\"}}`; responses show `{{\"set\": true}}`.\n\n{}",
        limits.describe()
    ))
    .license("Apache-2.0")
    .webhooks::<&'static dyn AgentWebhooks>()
}

/// The OpenAPI document of the whole API, as JSON, declaring the default limits.
pub fn openapi_json() -> String {
    Published::of(&service(&HttpLimits::default())).text
}

/// poem-openapi's `document` as published: OpenAPI 3.1, with typed definitions, the domain's
/// limits, each operation's own responses, links and examples.
fn completed(document: serde_json::Value) -> serde_json::Value {
    let mut document = document::to_openapi_31(document);
    responses::declare(&mut document);
    // A declaration without a place fails its module's test; in a build that skipped it, the
    // document goes without it rather than the server without a document.
    let unplaced = [
        definition_schema::declare(&mut document),
        configuration_schema::declare(&mut document),
        limits::declare(&mut document),
        responses::declare_links(&mut document),
        examples::declare(&mut document),
    ]
    .concat();
    for place in unplaced {
        tracing::warn!(%place, "a declaration has no place in the OpenAPI document");
    }
    document
}

/// The document a service publishes: poem-openapi's, rewritten as OpenAPI 3.1
/// ([`document::to_openapi_31`]) and [`completed`].
struct Published {
    /// poem-openapi's own document, as it wrote it.
    source: String,
    /// The published document.
    document: serde_json::Value,
    /// The published document, pretty-printed.
    text: String,
}

impl Published {
    fn of(service: &OpenApiService<PlatformApi, &'static dyn AgentWebhooks>) -> Self {
        let source = service.spec();
        match serde_json::from_str(&source) {
            Ok(document) => {
                let document = completed(document);
                let text = format!("{document:#}");
                Self {
                    source,
                    document,
                    text,
                }
            }
            // poem-openapi writes its document as JSON itself, so this cannot happen; were it
            // to, the test that the committed 3.1 document is the one printed would fail.
            Err(_) => Self {
                text: source.clone(),
                source,
                document: serde_json::Value::Null,
            },
        }
    }

    /// Swagger UI's page for `service`, showing the published document (poem-openapi's page
    /// inlines its own 3.0 document, which is swapped for it).
    fn swagger_ui_page(
        &self,
        service: &OpenApiService<PlatformApi, &'static dyn AgentWebhooks>,
    ) -> String {
        let page = service.swagger_ui_html();
        assert!(
            page.contains(&self.source),
            "poem-openapi's Swagger UI page no longer inlines its document"
        );
        page.replacen(&self.source, &self.text, 1)
    }
}

/// The HTTP application: the API, its document and Swagger UI, with JSON errors for unknown
/// routes, behind the [`door::Door`] enforcing `limits`.
pub fn app(state: AppState, limits: HttpLimits) -> impl Endpoint {
    let service = service(&limits);
    let published = Published::of(&service);
    let page = published.swagger_ui_page(&service);
    let routes = routing::Routes::from_document(&published.document);
    let shapes = shape::RequestShapes::from_document(&published.document);
    let published = published.text;
    let docs = poem::endpoint::make_sync(move |_| poem::web::Html(page.clone()));
    let spec = poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(published.clone())
    });
    Route::new()
        .nest("/", service)
        .nest("/docs", Route::new().at("/", docs))
        .at("/openapi.json", spec)
        // Errors of routing and of parameters get the route's context (`routing`), every other
        // one the common JSON shape (`error::catch_all`).
        .with(routes)
        .with(shapes)
        .data(state)
        .with(door::Door::new(limits))
        .with(poem::middleware::Tracing)
}
