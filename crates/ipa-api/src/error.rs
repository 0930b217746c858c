//! The shape of every error the API returns, and the mapping of errors no handler produced
//! (unknown routes, wrong methods, unparseable requests) to it.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::Object;

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
}

impl ErrorBody {
    /// An error with no field pointer.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            pointer: None,
        }
    }

    /// This error as a response with `status`.
    pub fn into_response_with(self, status: StatusCode) -> Response {
        poem::web::Json(self).with_status(status).into_response()
    }
}

/// Turns an error that reached the top of the application into a JSON error response. Client
/// errors keep their status and get a code derived from it; anything else is logged and answered
/// as a generic 500 that reveals nothing internal.
pub async fn catch_all(err: poem::Error) -> Response {
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
        status if status.is_client_error() => ("bad_request", err.to_string()),
        _ => {
            tracing::error!(error = %err, "request failed");
            (
                "internal",
                "The server failed to handle the request; it has been logged.".to_owned(),
            )
        }
    };
    ErrorBody::new(code, message).into_response_with(status)
}
