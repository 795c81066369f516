//! The service's error answers: JSON with a stable `code` (clients branch
//! on it, never on the message), and `field` when the input was at fault.
//! Bad input is a 400 naming the field; a recorder that could not answer
//! is a 503; nothing the client sends produces a 500.

use crate::backend::BackendError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An answer other than success.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum ApiError {
    /// `invalid_input` (400): `field` is missing or malformed.
    Invalid {
        /// The path segment or query parameter at fault.
        field: String,
        /// Why, and what would be accepted.
        message: String,
    },
    /// `backend_unavailable` (503), or `write_in_doubt` (503) when a write
    /// was sent and may have applied: read the payment before retrying.
    Backend(BackendError),
    /// `no_route` (404).
    NoRoute,
    /// `method_not_allowed` (405): the route exists, the method does not.
    MethodNotAllowed,
}

impl ApiError {
    /// Input `field` at fault, because `message`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { .. } => "invalid_input",
            ApiError::Backend(e) if e.in_doubt => "write_in_doubt",
            ApiError::Backend(_) => "backend_unavailable",
            ApiError::NoRoute => "no_route",
            ApiError::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        ApiError::Backend(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = self.status();
        let body = match self {
            ApiError::Invalid { field, message } => {
                json!({ "code": code, "field": field, "message": message })
            }
            ApiError::Backend(e) => json!({ "code": code, "message": e.message }),
            ApiError::NoRoute => json!({ "code": code, "message": "no such route" }),
            ApiError::MethodNotAllowed => {
                json!({ "code": code, "message": "this route does not take that method" })
            }
        };
        (status, Json(body)).into_response()
    }
}
