//! Liveness and readiness: whether the process runs, and whether it can serve (database
//! reachable, schema current).

use ipa_store::schema::{self, NotReady};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::ApiTags;
use crate::state::AppState;

/// Health endpoints, for load balancers and orchestrators. They need no credentials.
pub struct HealthApi;

/// The process is alive.
#[derive(Object)]
struct Liveness {
    /// Always `ok`.
    status: String,
}

/// Whether the service can handle requests.
#[derive(Object)]
struct Readiness {
    /// `ready` or `not_ready`.
    status: String,
    /// `ok`, `unreachable` or `pending_migrations`.
    database: String,
    /// Why the service is not ready, when it is not.
    #[oai(skip_serializing_if_is_none)]
    reason: Option<String>,
    /// Migrations the database still lacks.
    pending_migrations: Vec<String>,
}

#[derive(ApiResponse)]
enum LivenessResponse {
    /// The process runs.
    #[oai(status = 200)]
    Alive(Json<Liveness>),
}

#[derive(ApiResponse)]
enum ReadinessResponse {
    /// The database answers and every migration is applied.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// The service cannot handle requests yet; the body says why.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: answers while the process runs, whatever the database's state.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> LivenessResponse {
        LivenessResponse::Alive(Json(Liveness {
            status: "ok".to_owned(),
        }))
    }

    /// Readiness: the database is reachable and its schema is current.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadinessResponse {
        match schema::readiness(&state.store).await {
            Ok(()) => ReadinessResponse::Ready(Json(Readiness {
                status: "ready".to_owned(),
                database: "ok".to_owned(),
                reason: None,
                pending_migrations: Vec::new(),
            })),
            Err(NotReady::Unreachable(reason)) => {
                tracing::warn!(%reason, "readiness: database unreachable");
                not_ready(
                    "unreachable",
                    "the database does not answer".to_owned(),
                    Vec::new(),
                )
            }
            Err(NotReady::PendingMigrations(pending)) => not_ready(
                "pending_migrations",
                "migrations are pending; run `ipa migrate up`".to_owned(),
                pending,
            ),
        }
    }
}

fn not_ready(database: &str, reason: String, pending: Vec<String>) -> ReadinessResponse {
    ReadinessResponse::NotReady(Json(Readiness {
        status: "not_ready".to_owned(),
        database: database.to_owned(),
        reason: Some(reason),
        pending_migrations: pending,
    }))
}
