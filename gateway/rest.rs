//! The REST face of the gateway: `POST /greet` as in the article, plus
//! `/mode` and `/healthz`. Every error is JSON `{"error": "..."}`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use self::auth::ControlAccess;
use self::body::{GreetBody, ModeBody};
use super::Gateway;
use super::skipped;
use super::upstream::UpstreamError;
use greet_proto::Mode;

mod auth;
pub mod body;

/// Largest accepted request body; a greeting is a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

const GREET_USAGE: &str = r#"send JSON like {"first_name": "Ada", "last_name": "Lovelace"}"#;
const MODE_USAGE: &str =
    r#"send JSON like {"mode": "balanced"}, {"mode": "least-loaded"}, {"mode": "dns"} or {"mode": "sticky"}"#;

/// An error response: a status and a message that says what failed and what to do.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A JSON body rejection, with the right status (400, 413 or 415) and a usage hint.
    fn from_rejection(rejection: &JsonRejection, usage: &str) -> Self {
        // axum says 422 for well-formed JSON with wrong fields; clients of this
        // API get 400 for every malformed body, as documented.
        let status = match rejection {
            JsonRejection::JsonDataError(_) => StatusCode::BAD_REQUEST,
            other => other.status(),
        };
        let message = match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                format!("expected Content-Type: application/json; {usage}")
            }
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
                format!("request body is larger than {MAX_BODY_BYTES} bytes; {usage}")
            }
            other => format!("{}; {usage}", other.body_text()),
        };
        ApiError::new(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

impl From<UpstreamError> for ApiError {
    fn from(err: UpstreamError) -> Self {
        let status = match err {
            UpstreamError::NoEndpoints { .. } | UpstreamError::NoDnsAnswer(_) | UpstreamError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Failed { .. } | UpstreamError::BadEndpoint { .. } => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, err.to_string())
    }
}

/// The REST routes, sharing `gateway`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/greet", post(greet))
        .route("/mode", get(get_mode).put(put_mode))
        .route("/healthz", get(healthz))
        .route("/metrics", get(super::metrics::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gateway)
}

async fn greet(State(gateway): State<Arc<Gateway>>, body: Result<Json<serde_json::Value>, JsonRejection>) -> Response {
    let Json(value) = match body {
        Ok(body) => body,
        Err(rejection) => {
            gateway.metrics.rejected(gateway.upstream.mode());
            return ApiError::from_rejection(&rejection, GREET_USAGE).into_response();
        }
    };
    let body = match body::object::<GreetBody>(value).and_then(GreetBody::checked) {
        Ok(body) => body,
        Err(problem) => {
            gateway.metrics.rejected(gateway.upstream.mode());
            return ApiError::new(StatusCode::BAD_REQUEST, format!("{problem}; {GREET_USAGE}")).into_response();
        }
    };
    // In its own task: a client that hangs up must not cancel the upstream
    // call half-way, or its request event would never be published.
    let upstream = Arc::clone(&gateway);
    // Boxed: the task cell then holds a pointer, not the call's whole state,
    // which spawning moved several times (callgrind).
    let call = tokio::spawn(Box::pin(async move {
        upstream.upstream.greet(body.first_name, body.last_name).await
    }));
    let outcome = match call.await {
        Ok(outcome) => outcome,
        Err(join) => {
            tracing::error!("upstream call task failed: {join}");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the gateway failed while calling greet-server; see its log and retry",
            )
            .into_response();
        }
    };
    match outcome {
        // The article's exact text, typo included: existing scripts grep for it.
        Ok(reply) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("reponse from Greet rpc: {}", reply.result),
        )
            .into_response(),
        Err(err) => ApiError::from(err).into_response(),
    }
}

async fn get_mode(State(gateway): State<Arc<Gateway>>) -> Response {
    Json(serde_json::json!({ "mode": gateway.upstream.mode() })).into_response()
}

/// `_access` first: a caller without the control token is refused before
/// the body is read.
async fn put_mode(
    _access: ControlAccess,
    State(gateway): State<Arc<Gateway>>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Response {
    let Json(value) = match body {
        Ok(body) => body,
        Err(rejection) => return ApiError::from_rejection(&rejection, MODE_USAGE).into_response(),
    };
    let body = match body::object::<ModeBody>(value) {
        Ok(body) => body,
        Err(problem) => {
            return ApiError::new(StatusCode::BAD_REQUEST, format!("{problem}; {MODE_USAGE}")).into_response();
        }
    };
    let mode: Mode = match body.mode.parse() {
        Ok(mode) => mode,
        Err(err) => return ApiError::new(StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    gateway.upstream.set_mode(mode).await;
    Json(serde_json::json!({ "mode": mode })).into_response()
}

async fn healthz(State(gateway): State<Arc<Gateway>>) -> Response {
    if gateway.is_draining() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down; send requests to another replica",
        )
        .into_response();
    }
    let upstream = &gateway.upstream;
    // Read once: a switch while this runs must not mix two modes' answers.
    let mode = upstream.mode();
    let report = upstream.pool(mode).report();
    let skipped = skipped::skipped_endpoints(&report, tokio::time::Instant::now());
    let usable = skipped::usable(&report);
    if mode == Mode::Dns && !upstream.can_serve_in(mode) {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, upstream.dns().no_address_message()).into_response();
    }
    if !upstream.can_serve_in(mode) {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, upstream.no_endpoints(mode).to_string()).into_response();
    }
    if mode != Mode::Sticky && usable == 0 {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, skipped::all_skipped_message(&skipped)).into_response();
    }
    let body = serde_json::json!({
        "mode": mode,
        "ready_endpoints": usable,
        "skipped_endpoints": skipped,
        "discovery": upstream.discovery_state(tokio::time::Instant::now()),
    });
    (StatusCode::OK, Json(body)).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such path; the gateway serves POST /greet, GET and PUT /mode, GET /healthz",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed here; the gateway serves POST /greet, GET and PUT /mode, GET /healthz",
    )
}
