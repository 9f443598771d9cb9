//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//! Internal causes are logged, never sent: a response carries no SQL and no stack trace.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

/// Result of anything a handler calls.
pub type ApiResult<T> = Result<T, ApiError>;

/// One invalid input field of a `422` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field in the request (`email`, `items[2].phone`, or a query parameter).
    #[schema(example = "email")]
    pub field: String,
    /// Stable machine-readable code (`email`, `length`, `range`, `required`, `invalid_type`, ...).
    #[schema(example = "email")]
    pub code: String,
    /// Human-readable explanation.
    #[schema(example = "must be a valid e-mail address")]
    pub message: String,
}

impl FieldError {
    /// A field error from its three parts.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The same error for a field inside `parent` (`customer.email`, `items[2].tags`).
    pub fn within(self, parent: &str) -> Self {
        Self {
            field: format!("{parent}.{}", self.field),
            ..self
        }
    }
}

/// An RFC 9457 problem document, the body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI reference naming the kind of problem (`about:blank` for plain HTTP errors).
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation-failed")]
    pub problem_type: &'static str,
    /// Short summary of the kind of problem.
    #[schema(example = "Validation failed")]
    pub title: &'static str,
    /// The HTTP status code.
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong with this request.
    #[schema(example = "1 field is invalid")]
    pub detail: String,
    /// Per-field problems: of a `422` validation failure or a `409` business-rule conflict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Of a `409` refusing a workflow move: the states reachable from the current one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["in_progress"]))]
    pub allowed: Vec<String>,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allowed: Vec<String> },
    #[error("conflict: {0}")]
    Conflict(String),
    /// `409` for a move a workflow does not allow from the current state, with the states it
    /// does allow (`kit::workflow`).
    #[error("illegal move: {detail}")]
    IllegalMove {
        detail: String,
        allowed: Vec<String>,
    },
    /// `409` naming fields: the request is well formed, but breaks a business rule given the
    /// stored state (a reference to a missing record, a change that would leave the resource
    /// inconsistent). Rules a request breaks on its own are `Validation` (`422`).
    #[error("business rule conflict")]
    Rules(Vec<FieldError>),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    #[error("rate limited")]
    TooManyRequests { retry_after: Duration },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Still starting (a `503` like [`ApiError::Unavailable`], but expected, so not logged:
    /// orchestrators poll `/readyz` until it passes).
    #[error("start-up is not finished")]
    Starting,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A `422` for a single field.
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    /// A `409` for a single field.
    pub fn rule(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Rules(vec![FieldError::new(field, code, message)])
    }

    /// A `500` whose cause goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("/problems/bad-request", "Bad request"),
            Self::Unauthorized(_) => ("/problems/unauthorized", "Authentication required"),
            Self::Forbidden(_) => ("/problems/forbidden", "Forbidden"),
            Self::NotFound(_) => ("about:blank", "Not Found"),
            Self::MethodNotAllowed { .. } => ("about:blank", "Method Not Allowed"),
            Self::Conflict(_) | Self::Rules(_) => ("/problems/conflict", "Conflict"),
            Self::IllegalMove { .. } => ("/problems/illegal-move", "Illegal move"),
            Self::PreconditionFailed => ("/problems/precondition-failed", "Precondition failed"),
            Self::PayloadTooLarge { .. } => ("about:blank", "Payload Too Large"),
            Self::UnsupportedMediaType => ("about:blank", "Unsupported Media Type"),
            Self::Validation(_) => ("/problems/validation-failed", "Validation failed"),
            Self::Unprocessable(_) => ("/problems/unprocessable", "Unprocessable request"),
            Self::TooManyRequests { .. } => ("/problems/rate-limited", "Too many requests"),
            Self::Unavailable(_) | Self::Starting => {
                ("/problems/unavailable", "Service unavailable")
            }
            Self::Internal(_) => ("about:blank", "Internal Server Error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::Unprocessable(d)
            | Self::Unavailable(d)
            | Self::IllegalMove { detail: d, .. } => d.clone(),
            Self::MethodNotAllowed { allowed } => {
                format!("this resource allows {}", allowed.join(", "))
            }
            Self::Starting => "start-up is not finished (waiting for the database)".into(),
            Self::PreconditionFailed => {
                "the resource has changed since you read it (If-Match does not match its ETag); read it again".into()
            }
            Self::PayloadTooLarge { limit } => format!("the request body exceeds {limit} bytes"),
            Self::UnsupportedMediaType => "send the body as application/json".into(),
            Self::Validation(errors) | Self::Rules(errors) => match errors.len() {
                1 => format!("{}: {}", errors[0].field, errors[0].message),
                n => format!("{n} fields are invalid"),
            },
            Self::TooManyRequests { retry_after } => {
                format!("rate limit exceeded; retry in {} s", retry_after_secs(*retry_after))
            }
            Self::Internal(_) => "an unexpected error occurred; it has been logged".into(),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (problem_type, title) = self.kind();
        Problem {
            problem_type,
            title,
            status: self.status_code().as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Validation(errors) | Self::Rules(errors) => errors.clone(),
                _ => Vec::new(),
            },
            allowed: match self {
                Self::IllegalMove { allowed, .. } => allowed.clone(),
                _ => Vec::new(),
            },
        }
    }
}

fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::Rules(_) | Self::IllegalMove { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Starting => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => tracing::error!(%cause, "request failed"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "dependency unavailable"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::MethodNotAllowed { allowed } => {
                response.insert_header((header::ALLOW, allowed.join(", ")));
            }
            Self::TooManyRequests { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs(*retry_after)));
            }
            Self::Unavailable(_) | Self::Starting => {
                response.insert_header((header::RETRY_AFTER, 1));
            }
            _ => {}
        }
        response.body(serde_json::to_vec(&self.problem()).unwrap_or_default())
    }
}

impl From<DieselError> for ApiError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::NotFound => Self::NotFound("no such resource".into()),
            DieselError::DatabaseError(kind, info) => match kind {
                DatabaseErrorKind::UniqueViolation => {
                    Self::Conflict("a record with the same unique value already exists".into())
                }
                DatabaseErrorKind::ForeignKeyViolation | DatabaseErrorKind::RestrictViolation => {
                    Self::Conflict(
                        "the change refers to, or is referred to by, another record".into(),
                    )
                }
                DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation => {
                    Self::Unprocessable("the change breaks a rule of the data model".into())
                }
                DatabaseErrorKind::SerializationFailure => {
                    Self::Conflict("a concurrent change conflicted with this one; retry".into())
                }
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                    Self::Unavailable(error.to_string())
                }
                _ if is_unavailability(info.message()) => Self::Unavailable(error.to_string()),
                _ => Self::internal(&error),
            },
            _ => Self::internal(&error),
        }
    }
}

/// Errors that mean "the database is away or overloaded", not "this request is wrong".
fn is_unavailability(message: &str) -> bool {
    const MARKERS: [&str; 6] = [
        "statement timeout",
        "terminating connection",
        "connection closed",
        "the database system is",
        "connection reset",
        "lock timeout",
    ];
    MARKERS.iter().any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_lists_fields() {
        let e = ApiError::invalid("email", "email", "must be a valid e-mail address");
        let p = e.problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.detail, "email: must be a valid e-mail address");
    }

    #[test]
    fn internal_details_are_not_exposed() {
        let e = ApiError::internal("SELECT * FROM secret");
        assert!(!e.problem().detail.contains("SELECT"));
    }

    #[test]
    fn still_starting_is_a_503_that_is_not_logged() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tracing_subscriber::layer::SubscriberExt;

        /// Counts the events logged.
        struct Events(Arc<AtomicUsize>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
            fn on_event(
                &self,
                _: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let events = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(Events(events.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let starting = ApiError::Starting.error_response();
            assert_eq!(starting.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(starting.headers().contains_key(header::RETRY_AFTER));
            assert_eq!(events.load(Ordering::Relaxed), 0, "expected, not logged");
            ApiError::Unavailable("connection refused".into()).error_response();
            assert_eq!(events.load(Ordering::Relaxed), 1, "a real outage is logged");
        });
        assert_eq!(
            ApiError::Starting.problem().problem_type,
            ApiError::Unavailable(String::new()).problem().problem_type
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
    }
}
