//! What can go wrong upstream: each error names the endpoint, says what to
//! check, and maps to the gRPC code the request's observation carries.

use std::time::Duration;

use greet_proto::sanitize::sanitize_truncated;

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
                skip: crate::skipped::unavailable_reason(status, &message),
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
}
