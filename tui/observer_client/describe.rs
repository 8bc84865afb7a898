//! A failed Observer call in words: the cause first, then what to check.
//! A gateway that is down, a port that is not the Observer's, a server that
//! is not gRPC (or not HTTP/2), and a message over greet-top's limit each say
//! so. The text is sanitised where it enters the state (network_text.rs).

use crate::state::gateways::cause::{CERTIFICATE_REJECTED, NOT_AN_OBSERVER, TLS_FAILED};
use std::error::Error as _;

use tonic::{Code, Status};

use super::link::MAX_MESSAGE_BYTES;

/// What to check when the address answers but not as the Observer does.
const WRONG_PORT: &str = "is this the gateway's Observer port (9092)?";

/// The innermost cause of `err`, e.g. what the connector reported.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

pub(super) fn describe(status: &Status) -> String {
    let cause = status.source().map(root_cause);
    match status.code() {
        Code::Unavailable => match cause {
            // A port-forward that could not open says why and what to do (RBAC).
            Some(cause) if cause.contains("port-forward") => format!("gateway unreachable: {cause}"),
            // rustls's words for a certificate it does not trust.
            Some(cause) if cause.contains("certificate") => {
                format!("{CERTIFICATE_REJECTED}: {cause}; pass --insecure to accept a self-signed one")
            }
            // A plaintext server answering a TLS hello.
            Some(cause) if cause.contains("corrupt message") || cause.contains("InvalidContentType") => {
                format!("{TLS_FAILED}: {cause}; does the gateway serve TLS here? (use http:// if not)")
            }
            Some(cause) => format!("gateway unreachable: {cause} (is it running, or the port-forward up?)"),
            None => "gateway unreachable (is it running, or the port-forward up?)".to_owned(),
        },
        Code::Unimplemented => {
            "this address serves gRPC but not the Observer: is it the gateway's observe port (9092)?".to_owned()
        }
        Code::OutOfRange if status.message().contains("message length too large") => {
            let sent = sent_bytes(status.message()).map_or_else(String::new, |n| format!("{n} bytes, "));
            format!(
                "message too large: the gateway sent {sent}over greet-top's limit of {} MiB; {WRONG_PORT}",
                MAX_MESSAGE_BYTES / (1024 * 1024)
            )
        }
        // An HTTP server that is not gRPC, e.g. the gateway's REST port: its
        // status says so at once, whole.
        Code::Internal | Code::Unknown if http_status(status.message()).is_some() => {
            let answered = http_status(status.message()).unwrap_or_default();
            format!("{NOT_AN_OBSERVER}: it answered HTTP {answered} — {POINT_AT_OBSERVER}")
        }
        // Bytes that are not HTTP/2 (the h2 error is the cause), or HTTP/2
        // whose body is not gRPC (tonic's message says what it found).
        Code::Internal | Code::Unknown if status.message().contains("protocol error") => {
            let detail = cause.unwrap_or_else(|| status.message().to_owned());
            format!("not a gRPC answer: {detail}; {WRONG_PORT}")
        }
        // The connection went away under the call, e.g. when the server
        // answered the HTTP/2 preface with something else.
        Code::Cancelled if cause.is_some() => match cause.as_deref() {
            Some("connection closed") => format!("connection closed before any answer; {WRONG_PORT}"),
            _ => format!(
                "connection closed before any answer: {}; {WRONG_PORT}",
                cause.unwrap_or_default()
            ),
        },
        code => format!("{code:?}: {}", status.message()),
    }
}

/// What to do when the address is some other HTTP server.
const POINT_AT_OBSERVER: &str = "point --gateway at the gateway's Observer port (OBSERVE_PORT, default 9092)";

/// The HTTP status other than 200 that tonic found instead of a gRPC
/// answer ("... while receiving response with status: 404 Not Found").
fn http_status(message: &str) -> Option<&str> {
    let (_, answered) = message.rsplit_once("response with status: ")?;
    let answered = answered.trim();
    (!answered.starts_with("200")).then_some(answered)
}

/// N of tonic's "found N bytes, the limit is ...".
fn sent_bytes(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("found ")?;
    rest.split_once(' ')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::gateways::cause::fails_until_changed;

    fn with_cause(code: Code, message: &str, cause: &str) -> Status {
        let mut status = Status::new(code, message);
        status.set_source(Arc::new(std::io::Error::other(cause.to_owned())));
        status
    }

    #[test]
    fn each_failure_says_its_cause_first() {
        let too_large = Status::out_of_range(
            "Error, decoded message length too large: found 17825905 bytes, the limit is: 16777216 bytes",
        );
        assert_eq!(
            describe(&too_large),
            "message too large: the gateway sent 17825905 bytes, over greet-top's limit of 16 MiB; is this the \
             gateway's Observer port (9092)?"
        );
        let not_http2 = with_cause(
            Code::Internal,
            "h2 protocol error: http2 error",
            "connection error detected: frame with invalid size",
        );
        assert_eq!(
            describe(&not_http2),
            "not a gRPC answer: connection error detected: frame with invalid size; is this the gateway's Observer \
             port (9092)?"
        );
        let web_page = Status::internal(
            "protocol error: received message with invalid compression flag: 60 (valid flags are 0 and 1) while \
             receiving response with status: 200 OK",
        );
        assert!(
            describe(&web_page).starts_with("not a gRPC answer: protocol error: received message with invalid"),
            "{}",
            describe(&web_page)
        );
        let closed = with_cause(Code::Cancelled, "operation was canceled", "connection closed");
        assert_eq!(
            describe(&closed),
            "connection closed before any answer; is this the gateway's Observer port (9092)?"
        );
        let reset = with_cause(Code::Cancelled, "operation was canceled", "connection reset");
        assert_eq!(
            describe(&reset),
            "connection closed before any answer: connection reset; is this the gateway's Observer port (9092)?"
        );
        assert_eq!(
            describe(&with_cause(Code::Unavailable, "", "Connection refused (os error 111)")),
            "gateway unreachable: Connection refused (os error 111) (is it running, or the port-forward up?)"
        );
        assert_eq!(describe(&Status::internal("boom")), "Internal: boom");
        // The gateway's REST port, as tonic reports it.
        let rest_port = Status::internal(
            "protocol error: received message with invalid compression flag: 123 (valid flags are 0 and 1) while \
             receiving response with status: 404 Not Found",
        );
        assert!(fails_until_changed(&describe(&rest_port)));
        assert!(!fails_until_changed(&describe(&closed)));
        assert_eq!(
            describe(&rest_port),
            "not an Observer endpoint: it answered HTTP 404 Not Found — point --gateway at the gateway's Observer \
             port (OBSERVE_PORT, default 9092)"
        );
        assert_eq!(describe(&Status::cancelled("gone")), "Cancelled: gone");
    }
}
