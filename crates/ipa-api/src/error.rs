//! The shape of every error the API returns ([`ErrorBody`]), the documented error responses
//! handlers return ([`ApiError`]), and the mapping of errors no handler produced (unknown routes,
//! wrong methods, unparseable requests, missing credentials) to the same shape.

use ipa_kernel::StorageError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// An error: a stable machine-readable code, a message a person can act on, and for invalid input
/// the JSON pointer of the offending field.
#[derive(Clone, Debug, PartialEq, Eq, Object, serde::Serialize)]
pub struct ErrorBody {
    /// Stable identifier of the kind of error (for example `not_found`); safe to match on.
    pub code: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// JSON pointer (RFC 6901) to the field of the request that is wrong, when there is one.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Every problem found, when a document (such as a workflow definition) has several; each
    /// names its field by a JSON pointer into the request body.
    #[oai(skip_serializing_if_is_empty, default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// For `invalid_transition`: the state the resource is really in.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_status: Option<String>,
}

/// One problem of a document, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, Object, serde::Serialize)]
pub struct Problem {
    /// JSON pointer (RFC 6901) into the request body.
    pub pointer: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ErrorBody {
    /// An error with no field pointer.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            pointer: None,
            problems: Vec::new(),
            current_status: None,
        }
    }

    /// An error about the field at `pointer`.
    pub fn at(code: &str, message: impl Into<String>, pointer: &str) -> Self {
        Self {
            pointer: Some(pointer.to_owned()),
            ..Self::new(code, message)
        }
    }

    /// This error as a response with `status`.
    pub fn into_response_with(self, status: StatusCode) -> Response {
        poem::web::Json(self).with_status(status).into_response()
    }
}

/// The `WWW-Authenticate` challenge of every 401.
const BEARER_CHALLENGE: &str = "Bearer";

/// The message of a 401 for a request without usable credentials.
const SIGN_IN_HINT: &str = "This endpoint needs a bearer token: sign in with POST /auth/login and send \
     `Authorization: Bearer <token>`.";

/// Every error response an operation may give. Each carries an [`ErrorBody`].
#[derive(ApiResponse, Debug)]
#[oai(bad_request_handler = "bad_request")]
pub enum ApiError {
    /// The request is malformed (unparseable body, bad query parameter or cursor, or a JSON
    /// body nested deeper than the server accepts: `json_too_deep`).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid credentials: the token is missing, malformed, expired or revoked, or sign-in
    /// failed.
    #[oai(status = 401)]
    Unauthorized(
        Json<ErrorBody>,
        /// Always `Bearer`.
        #[oai(header = "WWW-Authenticate")]
        String,
    ),
    /// Signed in, but not allowed to do this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource (or not one the caller may see).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the resource's current state (a taken name, an illegal
    /// transition).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body is larger than the server accepts (`payload_too_large`); the message
    /// says the limit. Answered before the body is read, and the connection is closed.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// A field's value is not acceptable; `pointer` names it. Also text that cannot be stored
    /// (`invalid_field`: a NUL character or a lone UTF-16 surrogate in any JSON string or key,
    /// query parameter or path segment), on every operation.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many attempts; retry after the given number of seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// The server failed; the cause is logged, never shown.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database cannot be reached right now (code `database_unavailable`). Nothing was
    /// changed: retry after the given number of seconds.
    #[oai(status = 503)]
    ServiceUnavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

/// The `Retry-After` of a `503 database_unavailable`, in seconds: a database restart or fail-over
/// takes about this long, and clients retrying sooner would only add to the wait.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 5;

impl ApiError {
    /// 400 with `code`.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::BadRequest(Json(ErrorBody::new(code, message)))
    }

    /// 401 with `code`.
    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        Self::Unauthorized(
            Json(ErrorBody::new(code, message)),
            BEARER_CHALLENGE.to_owned(),
        )
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(Json(ErrorBody::new("forbidden", message)))
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(Json(ErrorBody::new("not_found", message)))
    }

    /// 409 with `code`, about the field at `pointer` when given.
    pub fn conflict(code: &str, message: impl Into<String>, pointer: Option<&str>) -> Self {
        let body = match pointer {
            Some(pointer) => ErrorBody::at(code, message, pointer),
            None => ErrorBody::new(code, message),
        };
        Self::Conflict(Json(body))
    }

    /// 422 with `code` about the field at `pointer`.
    pub fn unprocessable(code: &str, message: impl Into<String>, pointer: &str) -> Self {
        Self::Unprocessable(Json(ErrorBody::at(code, message, pointer)))
    }

    /// 422 listing every problem of a document; `pointer` names the first.
    pub fn problems(code: &str, message: impl Into<String>, problems: Vec<Problem>) -> Self {
        let mut body = ErrorBody::new(code, message);
        body.pointer = problems.first().map(|problem| problem.pointer.clone());
        body.problems = problems;
        Self::Unprocessable(Json(body))
    }

    /// 429, retry after `seconds`.
    pub fn too_many_requests(message: impl Into<String>, seconds: u64) -> Self {
        Self::TooManyRequests(Json(ErrorBody::new("too_many_attempts", message)), seconds)
    }

    /// 503 `database_unavailable`, retry after [`UNAVAILABLE_RETRY_AFTER_SECONDS`].
    pub fn unavailable() -> Self {
        Self::ServiceUnavailable(
            Json(ErrorBody::new(
                "database_unavailable",
                format!(
                    "The database cannot be reached right now, so nothing was done. Retry in \
                     {UNAVAILABLE_RETRY_AFTER_SECONDS} seconds; if this persists, the operator \
                     should check that PostgreSQL is running and reachable."
                ),
            )),
            UNAVAILABLE_RETRY_AFTER_SECONDS,
        )
    }

    /// A storage failure: 503 when the database could not be reached (the request may be
    /// retried), otherwise 500. Either way the cause is logged, never shown.
    pub fn storage(error: &StorageError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(error = %error, "request refused: the database is unavailable");
            Self::unavailable()
        } else {
            Self::internal(error)
        }
    }

    /// 500: logs `error` and tells the client nothing about it.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error, cause = ?error.source(), "request failed");
        Self::Internal(Json(internal_body()))
    }
}

fn internal_body() -> ErrorBody {
    ErrorBody::new(
        "internal",
        "The server failed to handle the request; it has been logged.",
    )
}

/// Unparseable requests (bad JSON, wrong types, missing fields or parameters) as 400s in the
/// common shape. (poem-openapi hands the error over by value.)
#[allow(clippy::needless_pass_by_value)]
fn bad_request(err: poem::Error) -> ApiError {
    ApiError::bad_request("bad_request", err.to_string())
}

/// Turns an error that reached the top of the application into a JSON error response. Errors
/// that already are responses ([`ApiError`]s raised outside a handler, such as by the bearer
/// check) pass through. Client errors keep their status and get a code derived from it; anything
/// else is logged and answered as a generic 500 that reveals nothing internal.
pub async fn catch_all(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (
            "not_found",
            "No such resource. See /docs for the API.".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This resource does not support that method.".to_owned(),
        ),
        StatusCode::UNAUTHORIZED => {
            return ApiError::unauthorized("unauthorized", SIGN_IN_HINT).into_response();
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            format!("{err}. Send the request body as JSON, with `Content-Type: application/json`."),
        ),
        status if status.is_client_error() => ("bad_request", err.to_string()),
        _ => {
            tracing::error!(error = %err, "request failed");
            return internal_body().into_response_with(status);
        }
    };
    ErrorBody::new(code, message).into_response_with(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_storage_is_a_503_with_retry_after_and_any_other_failure_a_500() {
        let down = ApiError::storage(&StorageError::unavailable(
            "reading a user",
            "connection refused",
        ))
        .into_response();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            down.headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()),
            Some(UNAVAILABLE_RETRY_AFTER_SECONDS.to_string().as_str())
        );
        let failed =
            ApiError::storage(&StorageError::new("reading a user", "bad row")).into_response();
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(failed.headers().get("retry-after").is_none());
    }
}
