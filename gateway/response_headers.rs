//! What the gateway reads from a greet-server's response headers: the pod
//! that answered (`x-pod-name`, `x-pod-ip`), sanitised where it enters.
//! A leaf: the ingress and the health checks both read them.

use http::{HeaderMap, HeaderName};

use greet_proto::sanitize::sanitize_truncated;

/// The pod that answered, as greet-server names it (made once: a lookup by
/// `&str` parses the name on every call).
pub(crate) static POD_NAME: HeaderName = HeaderName::from_static("x-pod-name");
pub(crate) static POD_IP: HeaderName = HeaderName::from_static("x-pod-ip");

/// A response header's value, sanitised (it came from the network).
pub(crate) fn header(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    crate::grpc_headers::first(headers, name)
        .and_then(|v| v.to_str().ok())
        .map(|v| sanitize_truncated(v, 253))
        .filter(|v| !v.is_empty())
}

/// The pod a response names (`x-pod-name`, which greet-server sets).
pub(crate) fn pod_header(headers: &HeaderMap) -> Option<String> {
    header(headers, &POD_NAME)
}
