//! The gRPC headers every call through the gateway carries besides its
//! messages: the `grpc-timeout` it is given, and the status it ends with.
//! A leaf: the ingress passes calls through with them, and the upstream's
//! own unary calls (REST's Greet, the health checks) write and read them.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

/// Names made once: a lookup by `&str` parses the name on every call.
pub(crate) static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub(crate) static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// `remaining` as a `grpc-timeout` value: the finest unit that keeps it
/// within the spec's 8 digits (rounded up, so a call is never given less).
pub(crate) fn grpc_timeout(remaining: Duration) -> http::HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = remaining.as_nanos().max(1);
    let units: [(u128, &str); 6] = [
        (1, "n"),
        (1_000, "u"),
        (1_000_000, "m"),
        (1_000_000_000, "S"),
        (60_000_000_000, "M"),
        (3_600_000_000_000, "H"),
    ];
    let (amount, unit) = units
        .iter()
        .map(|&(size, unit)| (nanos.div_ceil(size), unit))
        .find(|&(amount, _)| amount <= MAX)
        .unwrap_or((MAX, "H"));
    http::HeaderValue::from_str(&format!("{amount}{unit}"))
        .unwrap_or_else(|_| http::HeaderValue::from_static("99999999H"))
}

/// Whether these headers or trailers end the call OK (`grpc-status: 0`).
pub(crate) fn ends_ok(headers: &HeaderMap) -> bool {
    headers.get(&GRPC_STATUS).is_some_and(|code| code == "0")
}

/// The status a response's headers or trailers carry, if they carry one.
pub(crate) fn status_in(headers: &HeaderMap) -> Option<tonic::Status> {
    // Most calls end OK: no message or details to decode then.
    if ends_ok(headers) {
        return Some(tonic::Status::new(tonic::Code::Ok, ""));
    }
    tonic::Status::from_header_map(headers)
}
