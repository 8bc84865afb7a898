//! A connection's I/O error in words, for skip reasons and health checks
//! alike. A leaf: the upstream connections, the balancer's skips and the
//! health checks all word errors the same way.

/// A connection's I/O error in a few words, e.g. "connection refused".
pub(crate) fn io_reason(io: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match io.kind() {
        ErrorKind::TimedOut => "connection timed out".to_owned(),
        kind @ (ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::AddrNotAvailable) => kind.to_string(),
        _ => greet_proto::sanitize::sanitize_truncated(&io.to_string(), 200),
    }
}
