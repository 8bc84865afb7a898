//! One unary gRPC call on an endpoint's [`RawH2`] connection, the one the
//! ingress passes its calls through: REST's Greet calls and the health
//! checks ride it too, so the gateway holds one HTTP/2 connection per
//! endpoint, not one per front door. On `h2` directly for raw_h2.rs's
//! reason: tonic's `Channel` hands each call to its buffer task and a task
//! per response, which cost REST about twice the ingress's CPU per call.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::HeaderMap;
use prost::Message;

use super::raw_h2::{RawFailure, RawH2};
use crate::grpc_headers::{grpc_timeout, status_in};

/// The largest reply read (tonic's default decoding limit).
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// Why a unary call got no reply message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnaryFailure {
    /// The call did not get through: the connection could not be made, or
    /// it broke (or was reset, or went away) under the call.
    #[error("{0}")]
    Raw(#[from] RawFailure),
    /// No whole answer within the call's limit.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// The server ended the call with a status other than OK; the response
    /// headers came with it (they may name the pod).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(tonic::Status, Box<HeaderMap>),
    /// What came back was not a gRPC reply of the expected kind.
    #[error("{0}")]
    BadReply(String),
}

/// Calls `path` (e.g. "/greet.GreetService/Greet") on `raw` with `request`,
/// waiting at most `limit` (also sent as its `grpc-timeout`, so the server
/// gives up when the gateway does). Dropping the call resets its stream.
pub(crate) async fn call<Request: Message, Reply: Message + Default>(
    raw: &RawH2,
    path: &'static str,
    request: &Request,
    limit: Duration,
) -> Result<(Reply, HeaderMap), UnaryFailure> {
    let body = frame(request);
    let head = || {
        let mut head = http::Request::new(());
        *head.method_mut() = http::Method::POST;
        *head.uri_mut() = uri(raw, path);
        let headers = head.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        headers.insert(crate::grpc_headers::GRPC_TIMEOUT.clone(), grpc_timeout(limit));
        head
    };
    match tokio::time::timeout(limit, exchange(raw, head, body)).await {
        Ok(result) => result,
        Err(_) => Err(UnaryFailure::NoAnswer(limit)),
    }
}

async fn exchange<Reply: Message + Default>(
    raw: &RawH2,
    head: impl Fn() -> http::Request<()>,
    body: Bytes,
) -> Result<(Reply, HeaderMap), UnaryFailure> {
    let (response, mut send) = raw.open(head, false).await?;
    send.send_data(body, true).map_err(RawFailure::H2)?;
    let (parts, mut body) = response.await.map_err(RawFailure::H2)?.into_parts();
    if parts.status != http::StatusCode::OK {
        let status = tonic::Status::new(code_of_http(parts.status), format!("HTTP {}", parts.status));
        return Err(UnaryFailure::Status(status, Box::new(parts.headers)));
    }
    // Trailers-only: the call ended with its headers, with no message.
    if let Some(status) = status_in(&parts.headers) {
        return Err(ended_without_reply(status, parts.headers));
    }
    let mut received = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(RawFailure::H2)?;
        // Read at once: its window goes back to the shared connection now.
        let _ = body.flow_control().release_capacity(chunk.len());
        if received.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(UnaryFailure::BadReply(format!("a reply over {MAX_REPLY_BYTES} bytes")));
        }
        received.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.map_err(RawFailure::H2)?.unwrap_or_default();
    let status =
        status_in(&trailers).unwrap_or_else(|| tonic::Status::internal("the reply ended without a grpc-status"));
    if status.code() != tonic::Code::Ok {
        return Err(UnaryFailure::Status(status, Box::new(parts.headers)));
    }
    let reply = unframe(received.freeze())?;
    Ok((reply, parts.headers))
}

/// A status that ended the call before any message: the server's, or (OK
/// with no message) a reply that is not one.
fn ended_without_reply(status: tonic::Status, headers: HeaderMap) -> UnaryFailure {
    if status.code() == tonic::Code::Ok {
        return UnaryFailure::BadReply("the call ended OK with no reply message".to_owned());
    }
    UnaryFailure::Status(status, Box::new(headers))
}

/// `message` as one gRPC frame: uncompressed, its length, its bytes.
fn frame(message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    let mut framed = BytesMut::with_capacity(5 + len);
    framed.put_u8(0);
    // A request over 4 GiB cannot be made from what the gateway sends.
    framed.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer with room for it cannot fail.
    let _ = message.encode(&mut framed);
    framed.freeze()
}

/// The one message of a unary reply's body.
fn unframe<Reply: Message + Default>(mut body: Bytes) -> Result<Reply, UnaryFailure> {
    let bad = |why: &str| UnaryFailure::BadReply(why.to_owned());
    if body.len() < 5 {
        return Err(bad("the call ended OK with no reply message"));
    }
    let compressed = body.get_u8();
    let len = usize::try_from(body.get_u32()).unwrap_or(usize::MAX);
    if compressed != 0 {
        return Err(bad("a compressed reply, though the gateway accepts none"));
    }
    if body.len() != len {
        return Err(bad("a reply whose length prefix does not match its body"));
    }
    Reply::decode(body).map_err(|err| UnaryFailure::BadReply(format!("a reply that does not decode: {err}")))
}

/// `path` on the connection's authority.
fn uri(raw: &RawH2, path: &'static str) -> http::Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(http::uri::Scheme::HTTP);
    parts.authority = Some(raw.authority().clone());
    parts.path_and_query = Some(http::uri::PathAndQuery::from_static(path));
    // Scheme, authority and path always make a URI.
    http::Uri::from_parts(parts).unwrap_or_default()
}

/// The gRPC code of an HTTP status a server (or a proxy in front of it)
/// answered with instead of a gRPC response, as the gRPC spec maps them
/// (doc/http-grpc-status-mapping.md).
fn code_of_http(status: http::StatusCode) -> tonic::Code {
    match status.as_u16() {
        400 => tonic::Code::Internal,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 => tonic::Code::Unimplemented,
        429 | 502 | 503 | 504 => tonic::Code::Unavailable,
        _ => tonic::Code::Unknown,
    }
}

#[cfg(test)]
mod tests;
