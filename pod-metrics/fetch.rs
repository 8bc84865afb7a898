//! Fetching a pod's metrics page: the [`Fetch`] trait (so tests can stand
//! in), and the body read under a size cap, whatever the transport.

mod http_url;
mod pod_proxy;

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use greet_proto::sanitize::sanitize_truncated;
use http_body_util::BodyExt;

pub use http_url::HttpFetch;
pub use pod_proxy::{PodProxyFetch, pod_proxy_path};

use crate::reading::{Target, Via};

/// What a scrape asks for: OpenMetrics first (exemplars and `# EOF`, which
/// tell a cut body from a whole one), the classic text format otherwise.
pub(crate) const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";

/// Longest excerpt of an error page kept in a cause.
const EXCERPT_CHARS: usize = 200;
/// Most of an error page read, for its first line or its Status.
const ERROR_BODY_BYTES: usize = 64 << 10;

/// A metrics page as fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub body: Bytes,
    /// The `Content-Type` header, sanitised.
    pub content_type: Option<String>,
}

/// Why a fetch failed, in words, the cause first (sanitised).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// The future a [`Fetch`] returns.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + 'a>>;

/// Reads one target's metrics page. Time limits are the caller's (the
/// scraper puts one round every fetch).
pub trait Fetch: Send + Sync {
    /// Fetches `target`'s page, failing when the body is over `max_bytes`.
    fn fetch<'a>(&'a self, target: &'a Target, max_bytes: usize) -> FetchFuture<'a>;
}

/// Where a target is read, as shown: its URL, or `namespace/pod:port/path`
/// through the API server.
pub(crate) fn where_of(target: &Target) -> String {
    match &target.via {
        Via::Url(url) => sanitize_truncated(url, 300),
        Via::PodProxy {
            namespace,
            pod,
            port,
            path,
        } => sanitize_truncated(&format!("{namespace}/{pod}:{port}{path}"), 300),
    }
}

/// The URL a target is read from, for `--once` rows: its own, or the API
/// server's path to the pod's proxy.
pub(crate) fn url_of(target: &Target) -> String {
    match &target.via {
        Via::PodProxy {
            namespace,
            pod,
            port,
            path,
        } => pod_proxy_path(namespace, pod, *port, path)
            .map_or_else(|_| where_of(target), |p| sanitize_truncated(&p, 300)),
        Via::Url(_) => where_of(target),
    }
}

/// `n` bytes as shown in a cause (`8 MiB`, `512 KiB`, `100 bytes`).
pub(crate) fn size_text(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// Why reading a body stopped.
pub(crate) enum BodyError {
    TooBig,
    Failed(String),
}

/// The whole body, or [`BodyError::TooBig`] as soon as it passes `max_bytes`
/// (never buffering more than that).
pub(crate) async fn read_capped<B>(body: B, max_bytes: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Failed(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max_bytes {
                return Err(BodyError::TooBig);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// The start of an error page: up to [`ERROR_BODY_BYTES`], whatever follows
/// or fails after.
pub(crate) async fn read_excerpt<B>(body: B) -> Bytes
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut out = BytesMut::new();
    while out.len() < ERROR_BODY_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    out.truncate(ERROR_BODY_BYTES);
    out.freeze()
}

/// The first non-blank line of an error page, sanitised and cut.
pub(crate) fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    sanitize_truncated(line, EXCERPT_CHARS)
}

/// `HTTP 404 from {where}`, with the page's first line when it has one.
pub(crate) fn http_status_cause(status: http::StatusCode, from: &str, body: &[u8]) -> String {
    let line = first_line(body);
    if line.is_empty() {
        format!("HTTP {} from {from}", status.as_u16())
    } else {
        format!("HTTP {} from {from}: {line}", status.as_u16())
    }
}

/// A cause for a page over the cap.
pub(crate) fn too_big_cause(max_bytes: usize) -> String {
    let size = size_text(max_bytes);
    format!("the answer is over {size}; greet-top reads at most {size} of metrics (is the metrics path right?)")
}

/// An error and its sources, `: `-joined, sanitised (a source that repeats
/// the text before it is left out).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    sanitize_truncated(&parts.join(": "), 400)
}

/// The `Content-Type` header, sanitised.
pub(crate) fn content_type(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| sanitize_truncated(&String::from_utf8_lossy(v.as_bytes()), 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(8 << 20), "8 MiB");
        assert_eq!(size_text(512 << 10), "512 KiB");
        assert_eq!(size_text(1000), "1000 bytes");
        assert_eq!(
            too_big_cause(8 << 20),
            "the answer is over 8 MiB; greet-top reads at most 8 MiB of metrics (is the metrics path right?)"
        );
    }

    #[test]
    fn an_error_page_shows_its_first_line_sanitised() {
        assert_eq!(first_line(b"\n  Not \x1b[31mFound \r\nmore"), "Not [31mFound");
        assert_eq!(
            http_status_cause(http::StatusCode::NOT_FOUND, "http://x/metrics", b"404 page not found\n"),
            "HTTP 404 from http://x/metrics: 404 page not found"
        );
        assert_eq!(
            http_status_cause(http::StatusCode::BAD_GATEWAY, "http://x/metrics", b""),
            "HTTP 502 from http://x/metrics"
        );
    }
}
