//! What can go wrong upstream: each error names the endpoint, says what to
//! check, and maps to the gRPC code the request's observation carries.

use std::time::Duration;

use greet_proto::sanitize::sanitize_truncated;

use crate::io_reason::io_reason;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(
        "no ready greet-server endpoint in balanced mode (discovery: {discovery}); check that greet-server pods are running and ready, or switch to sticky mode with PUT /mode"
    )]
    NoEndpoints { discovery: String },
    /// `dns` mode has no answer to route by: the message says why and what to check.
    #[error("{0}")]
    NoDnsAnswer(String),
    #[error(
        "greet-server at {endpoint} did not answer within {after:?}; check its load and the network, or raise --upstream-timeout"
    )]
    Timeout { endpoint: String, after: Duration },
    #[error("greet-server at {endpoint} is unavailable ({message}); check that it is running and reachable")]
    Unavailable {
        endpoint: String,
        message: String,
        /// Why the balancer skips the endpoint, in a few words (e.g.
        /// "connection refused"); `None` when only this call's connection
        /// broke (the retry goes elsewhere, the next call reconnects).
        skip: Option<String>,
    },
    #[error("greet-server at {endpoint} failed the call with {code:?}: {message}")]
    Failed {
        endpoint: String,
        code: tonic::Code,
        message: String,
    },
    #[error("endpoint {endpoint:?} is not a valid address: {message}")]
    BadEndpoint { endpoint: String, message: String },
}

impl UpstreamError {
    /// The gRPC status code reported in request events.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            UpstreamError::NoEndpoints { .. } | UpstreamError::NoDnsAnswer(_) | UpstreamError::Unavailable { .. } => {
                tonic::Code::Unavailable
            }
            UpstreamError::Timeout { .. } => tonic::Code::DeadlineExceeded,
            UpstreamError::Failed { code, .. } => *code,
            UpstreamError::BadEndpoint { .. } => tonic::Code::InvalidArgument,
        }
    }

    pub(super) fn from_status(endpoint: &str, status: &tonic::Status) -> Self {
        let message = sanitize_truncated(status.message(), 300);
        let endpoint = endpoint.to_owned();
        // A status the client made itself from a broken connection has the
        // error under it (a server's status never does): whatever its code
        // (UNKNOWN "transport error", CANCELLED when a closing pod's GOAWAY
        // raced the call), the call did not get through: as UNAVAILABLE.
        let broken_connection = std::error::Error::source(status).is_some();
        match status.code() {
            code if code == tonic::Code::Unavailable || broken_connection => UpstreamError::Unavailable {
                skip: unavailable_reason(status, &message),
                endpoint,
                message,
            },
            code => UpstreamError::Failed {
                endpoint,
                code,
                message,
            },
        }
    }
}

/// Why a failed call makes the balancer skip its endpoint, e.g. "connection
/// refused"; `None` when it does not (the server answered with an error, or
/// only this call's connection broke).
pub(crate) fn skip_reason(err: &UpstreamError) -> Option<String> {
    match err {
        UpstreamError::Unavailable { skip, .. } => skip.clone(),
        UpstreamError::Timeout { after, .. } => Some(format!("no answer within {after:?}")),
        UpstreamError::BadEndpoint { message, .. } => Some(format!("not a valid address: {message}")),
        UpstreamError::Failed { .. } | UpstreamError::NoEndpoints { .. } | UpstreamError::NoDnsAnswer(_) => None,
    }
}

/// Why the balancer skips the endpoint a call found unavailable: the I/O
/// error under the status when there is one (tonic's own message is only
/// "tcp connect error"), or the server's UNAVAILABLE message. `None` for a
/// status the client made from a connection that closed under the call with
/// no I/O error (a GOAWAY race while a pod drains or its connection ages out):
/// the pod may well be fine.
fn unavailable_reason(status: &tonic::Status, message: &str) -> Option<String> {
    let mut source = std::error::Error::source(status);
    let client_made = source.is_some();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io_reason(io));
        }
        source = err.source();
    }
    (!client_made).then(|| format!("unavailable: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_grpc_codes_and_say_what_to_do() {
        let no = UpstreamError::NoEndpoints {
            discovery: "static".into(),
        };
        assert_eq!(no.grpc_code(), tonic::Code::Unavailable);
        assert!(no.to_string().contains("switch to sticky mode"));
        let status = tonic::Status::unavailable("connection refused\u{1b}[2J");
        let err = UpstreamError::from_status("10.0.0.1:50051", &status);
        assert_eq!(
            err.to_string(),
            "greet-server at 10.0.0.1:50051 is unavailable (connection refused[2J); check that it is running and reachable"
        );
        let err = UpstreamError::from_status("e", &tonic::Status::internal("boom"));
        assert_eq!(err.grpc_code(), tonic::Code::Internal);
        // Made by the client from a broken connection, not sent by the server.
        let broken = tonic::Status::from_error(Box::new(std::io::Error::other("closed")));
        assert_eq!(broken.code(), tonic::Code::Unknown);
        let err = UpstreamError::from_status("e", &broken);
        assert_eq!(err.grpc_code(), tonic::Code::Unavailable);
        assert_eq!(
            err.to_string(),
            "greet-server at e is unavailable (closed); check that it is running and reachable"
        );
    }

    #[test]
    fn reasons_say_what_failed_in_a_few_words() {
        // As tonic makes them: the OS error under a connect error.
        let connect_error = |io: std::io::Error| {
            let status = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(io))));
            assert_eq!(status.code(), tonic::Code::Unavailable);
            unavailable_reason(&status, status.message())
        };
        const ECONNREFUSED: i32 = 111;
        let refused = std::io::Error::from_raw_os_error(ECONNREFUSED);
        assert_eq!(refused.to_string(), "Connection refused (os error 111)");
        assert_eq!(connect_error(refused).as_deref(), Some("connection refused"));
        let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(connect_error(timed_out).as_deref(), Some("connection timed out"));
        let from_server = tonic::Status::unavailable("draining");
        assert_eq!(
            unavailable_reason(&from_server, "draining").as_deref(),
            Some("unavailable: draining")
        );
        let other = std::io::Error::other("broken pipe");
        let status = tonic::Status::from_error(Box::new(other));
        assert_eq!(
            unavailable_reason(&status, "broken pipe").as_deref(),
            Some("broken pipe")
        );
        // A status the client made with no I/O error under it (in practice
        // hyper's "operation was canceled" for a call a closing connection dropped).
        let dropped = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(unavailable_reason(&dropped, dropped.message()), None);
        let timeout = UpstreamError::Timeout {
            endpoint: "e".into(),
            after: Duration::from_secs(5),
        };
        assert_eq!(skip_reason(&timeout).as_deref(), Some("no answer within 5s"));
        let dropped = UpstreamError::Unavailable {
            endpoint: "e".into(),
            message: "operation was canceled".into(),
            skip: None,
        };
        assert_eq!(skip_reason(&dropped), None);
    }
}
