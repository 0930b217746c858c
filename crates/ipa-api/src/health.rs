//! Liveness and readiness: whether the process runs, and whether it can serve (database
//! reachable, schema current).

use ipa_store::schema::{self, NotReady};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::ApiTags;
use crate::error::UNAVAILABLE_RETRY_AFTER_SECONDS;
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
    /// When not ready, a stable code for why: `database_unavailable` (the database does not
    /// answer), `database_error` (it answers, but the check failed) or `pending_migrations`.
    #[oai(skip_serializing_if_is_none)]
    code: Option<String>,
    /// `ok`, `unreachable`, `failing` or `pending_migrations`.
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
    NotReady(
        Json<Readiness>,
        /// Seconds to wait before asking again.
        #[oai(header = "Retry-After")]
        u64,
    ),
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

    /// Readiness: the database is reachable and its schema is current. Answers within the
    /// database acquire timeout (`IPA_DB_ACQUIRE_TIMEOUT_MS`) even when the database is down.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadinessResponse {
        match schema::readiness(&state.store).await {
            Ok(()) => ReadinessResponse::Ready(Json(Readiness {
                status: "ready".to_owned(),
                code: None,
                database: "ok".to_owned(),
                reason: None,
                pending_migrations: Vec::new(),
            })),
            Err(NotReady::Unreachable(reason)) => {
                tracing::warn!(%reason, "readiness: database unreachable");
                not_ready(
                    "database_unavailable",
                    "unreachable",
                    "the database does not answer; check that PostgreSQL is running and \
                     reachable from this server"
                        .to_owned(),
                    Vec::new(),
                )
            }
            Err(NotReady::Failing(reason)) => {
                tracing::warn!(%reason, "readiness: the database check failed");
                not_ready(
                    "database_error",
                    "failing",
                    "the database answers, but reading the migrations' state failed; see the \
                     server's log"
                        .to_owned(),
                    Vec::new(),
                )
            }
            Err(NotReady::PendingMigrations(pending)) => not_ready(
                "pending_migrations",
                "pending_migrations",
                "migrations are pending; run `ipa migrate up`".to_owned(),
                pending,
            ),
        }
    }
}

fn not_ready(
    code: &str,
    database: &str,
    reason: String,
    pending: Vec<String>,
) -> ReadinessResponse {
    ReadinessResponse::NotReady(
        Json(Readiness {
            status: "not_ready".to_owned(),
            code: Some(code.to_owned()),
            database: database.to_owned(),
            reason: Some(reason),
            pending_migrations: pending,
        }),
        UNAVAILABLE_RETRY_AFTER_SECONDS,
    )
}
