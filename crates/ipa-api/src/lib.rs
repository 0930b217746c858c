//! The IPA platform's HTTP API: poem-openapi API structs (one per context), their DTOs, the
//! mapping of failures to JSON errors with stable codes, and the assembly of the documented
//! service (OpenAPI document at `/openapi.json`, Swagger UI at `/docs`).
//!
//! Handlers stay thin: they parse requests into domain values, call a context's service and turn
//! the outcome into a documented response. Persistence is reached only through `ipa-store`.

pub mod error;
pub mod health;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use error::ErrorBody;
pub use health::HealthApi;

/// The API's tags, grouping operations in the document and in Swagger UI.
#[derive(poem_openapi::Tags)]
pub enum ApiTags {
    /// Liveness and readiness of the service.
    Health,
}

/// Every API of the platform, composed (a tuple once there is more than one).
pub type PlatformApi = HealthApi;

/// The documented service over every API. `store` is `None` only when the service is built to
/// print its document, with no database behind it.
pub fn service(store: Option<ipa_store::Store>) -> OpenApiService<PlatformApi, ()> {
    OpenApiService::new(
        HealthApi::new(store),
        "IPA Platform API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Intelligent Process Automation: define workflows, version them, run them and \
             audit who did what. Errors are JSON objects with a stable `code` and a `message`.",
    )
    .license("Apache-2.0")
}

/// The OpenAPI document of the whole API, as JSON.
pub fn openapi_json() -> String {
    service(None).spec()
}

/// The HTTP application: the API, its document and Swagger UI, with JSON errors for unknown
/// routes.
pub fn app(store: ipa_store::Store) -> impl Endpoint {
    let service = service(Some(store));
    let docs = service.swagger_ui();
    let spec = service.spec_endpoint();
    Route::new()
        .nest("/", service)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .catch_all_error(error::catch_all)
        .with(poem::middleware::Tracing)
}
