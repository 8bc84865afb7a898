//! The `/metrics` answer both binaries give: a registry encoded by
//! prometheus-client in the OpenMetrics text format, which Prometheus asks
//! for first and parses natively.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `registry` encoded, as an HTTP response.
pub fn exposition(registry: &Registry) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(err) => {
            tracing::error!("encoding the metrics failed: {err}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed; see the log",
            )
                .into_response()
        }
    }
}
