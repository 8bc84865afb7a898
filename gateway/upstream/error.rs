//! What can go wrong upstream: each error names the endpoint, says what to
//! check, and maps to the gRPC code the request's observation carries.

use std::time::Duration;

use greet_proto::sanitize::sanitize_truncated;

use crate::connection::unary::UnaryFailure;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The one wording of "nowhere to send it" for both front doors and
    /// `/healthz`.
    #[error(
        "no ready endpoint in {mode} mode (discovery: {discovery}); check that the gRPC pods are running and ready, or switch the gateway to sticky mode (PUT /mode)"
    )]
    NoEndpoints { mode: greet_proto::Mode, discovery: String },
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

    /// What a Greet attempt's failure on `endpoint` means for the REST
    /// client; `after` is the time a timeout names (the try's limit, or
    /// --upstream-timeout when the call's whole deadline passed).
    pub(super) fn from_unary(endpoint: &str, failure: UnaryFailure, after: Duration) -> Self {
        let endpoint = endpoint.to_owned();
        match failure {
            UnaryFailure::NoAnswer(_) => UpstreamError::Timeout { endpoint, after },
            // The connection could not be made, or broke under the call; the
            // endpoint is skipped only for an I/O cause (a GOAWAY race while a
            // pod drains says nothing against the pod).
            UnaryFailure::Raw(raw) => UpstreamError::Unavailable {
                skip: raw.skip_reason(),
                message: sanitize_truncated(&raw.to_string(), 300),
                endpoint,
            },
            UnaryFailure::Status(status, _) => {
                let message = sanitize_truncated(status.message(), 300);
                match status.code() {
                    // The server enforces the deadline the call carried
                    // (grpc-timeout) and may answer first: still our timeout.
                    tonic::Code::DeadlineExceeded => UpstreamError::Timeout { endpoint, after },
                    tonic::Code::Unavailable => UpstreamError::Unavailable {
                        skip: Some(format!("unavailable: {message}")),
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
            UnaryFailure::BadReply(why) => UpstreamError::Failed {
                endpoint,
                code: tonic::Code::Internal,
                message: format!("not a Greet reply: {}", sanitize_truncated(&why, 300)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::raw_h2::RawFailure;

    const LIMIT: Duration = Duration::from_millis(300);

    fn status(status: tonic::Status) -> UpstreamError {
        UpstreamError::from_unary("10.0.0.1:50051", UnaryFailure::Status(status, Box::default()), LIMIT)
    }

    #[test]
    fn errors_map_to_grpc_codes_and_say_what_to_do() {
        let no = UpstreamError::NoEndpoints {
            mode: greet_proto::Mode::LeastLoaded,
            discovery: "static".into(),
        };
        assert_eq!(no.grpc_code(), tonic::Code::Unavailable);
        assert_eq!(
            no.to_string(),
            "no ready endpoint in least-loaded mode (discovery: static); check that the gRPC pods are running and ready, or switch the gateway to sticky mode (PUT /mode)"
        );
        let err = status(tonic::Status::unavailable("connection refused\u{1b}[2J"));
        assert_eq!(
            err.to_string(),
            "greet-server at 10.0.0.1:50051 is unavailable (connection refused[2J); check that it is running and reachable"
        );
        assert_eq!(skip_reason(&err).as_deref(), Some("unavailable: connection refused[2J"));
        let err = status(tonic::Status::internal("boom"));
        assert_eq!(err.grpc_code(), tonic::Code::Internal);
        assert_eq!(
            err.to_string(),
            "greet-server at 10.0.0.1:50051 failed the call with Internal: boom"
        );
        assert_eq!(skip_reason(&err), None, "the server answered: it is up");
        let late = status(tonic::Status::deadline_exceeded("late"));
        assert_eq!(late.grpc_code(), tonic::Code::DeadlineExceeded);
        assert_eq!(
            late.to_string(),
            "greet-server at 10.0.0.1:50051 did not answer within 300ms; check its load and the network, or raise --upstream-timeout"
        );
        let bad = UpstreamError::from_unary(
            "e",
            UnaryFailure::BadReply("a compressed reply, though the gateway accepts none".into()),
            LIMIT,
        );
        assert_eq!(
            bad.to_string(),
            "greet-server at e failed the call with Internal: not a Greet reply: a compressed reply, though the gateway accepts none"
        );
    }

    #[test]
    fn reasons_say_what_failed_in_a_few_words() {
        const ECONNREFUSED: i32 = 111;
        let refused = RawFailure::Connect(std::io::Error::from_raw_os_error(ECONNREFUSED));
        let err = UpstreamError::from_unary("e", UnaryFailure::Raw(refused), LIMIT);
        assert_eq!(err.grpc_code(), tonic::Code::Unavailable);
        assert_eq!(skip_reason(&err).as_deref(), Some("connection refused"));
        assert_eq!(
            err.to_string(),
            "greet-server at e is unavailable (Connection refused (os error 111)); check that it is running and reachable"
        );
        let slow = RawFailure::ConnectTimeout(Duration::from_secs(1));
        let err = UpstreamError::from_unary("e", UnaryFailure::Raw(slow), LIMIT);
        assert_eq!(skip_reason(&err).as_deref(), Some("connection timed out"));
        // A GOAWAY race: the call did not get through, the pod may be fine.
        let gone = RawFailure::H2(h2::Error::from(h2::Reason::REFUSED_STREAM));
        let err = UpstreamError::from_unary("e", UnaryFailure::Raw(gone), LIMIT);
        assert_eq!(err.grpc_code(), tonic::Code::Unavailable);
        assert_eq!(skip_reason(&err), None);
        let timeout = UpstreamError::from_unary("e", UnaryFailure::NoAnswer(LIMIT), Duration::from_secs(5));
        assert_eq!(skip_reason(&timeout).as_deref(), Some("no answer within 5s"));
    }
}
