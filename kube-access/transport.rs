//! kube's transport errors in words an operator reads right: the cause
//! first. Its own, such as rustls's `peer closed connection without sending
//! TLS close_notify`, read like a TLS fault when the API server merely
//! restarted.

use kube::runtime::watcher;

pub const CLOSED: &str = "the API server closed the connection — restarting?";
pub const REFUSED: &str = "the API server refuses connections — down or restarting?";
pub const TIMED_OUT: &str = "the API server did not answer in time — overloaded or unreachable?";

/// A transport error's cause, first by the types in its chain (an
/// `io::Error`'s kind, hyper's), else by the words of an error that kept
/// only its text; `None` for anything else (the API server answered).
pub fn transport_cause(err: &watcher::Error) -> Option<&'static str> {
    if crate::api_status(err).is_some() {
        return None;
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => return Some(REFUSED),
                ErrorKind::UnexpectedEof
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe => return Some(CLOSED),
                ErrorKind::TimedOut => return Some(TIMED_OUT),
                _ => {}
            }
            // io::Error's `source()` skips the error it wraps; look at that one too.
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
                continue;
            }
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_closed() {
                return Some(CLOSED);
            }
            if hyper.is_timeout() {
                return Some(TIMED_OUT);
            }
        }
        next = error.source();
    }
    by_words(&err.to_string())
}

/// A chain that lost its types (a boxed message) still says what happened.
fn by_words(text: &str) -> Option<&'static str> {
    const CLOSED_WORDS: [&str; 4] = [
        "close_notify",
        "connection closed before message completed",
        "connection reset",
        "broken pipe",
    ];
    let text = text.to_ascii_lowercase();
    if CLOSED_WORDS.iter().any(|words| text.contains(words)) {
        Some(CLOSED)
    } else if text.contains("connection refused") {
        Some(REFUSED)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn status(code: u16) -> Box<kube::core::Status> {
        Box::new(kube::core::Status {
            code,
            message: format!("answered {code}"),
            ..kube::core::Status::default()
        })
    }

    fn refused() -> watcher::Error {
        watcher::Error::WatchStartFailed(kube::Error::Service(Box::new(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        ))))
    }

    #[test]
    fn a_chain_that_kept_only_words_still_reads_cause_first() {
        let words = |text: &str| watcher::Error::WatchFailed(kube::Error::Service(text.into()));
        assert_eq!(
            transport_cause(&words(
                "client error: peer closed connection without sending TLS close_notify"
            )),
            Some(CLOSED)
        );
        assert_eq!(
            transport_cause(&words("connection closed before message completed")),
            Some(CLOSED)
        );
        assert_eq!(
            transport_cause(&words("tcp connect error: Connection refused")),
            Some(REFUSED)
        );
        assert_eq!(transport_cause(&words("invalid certificate: UnknownIssuer")), None);
    }

    #[test]
    fn transport_errors_read_cause_first() {
        let closed = |kind| watcher::Error::WatchFailed(kube::Error::ReadEvents(io::Error::from(kind)));
        assert_eq!(transport_cause(&refused()), Some(REFUSED));
        assert_eq!(transport_cause(&closed(io::ErrorKind::UnexpectedEof)), Some(CLOSED));
        assert_eq!(transport_cause(&closed(io::ErrorKind::ConnectionReset)), Some(CLOSED));
        assert_eq!(transport_cause(&closed(io::ErrorKind::TimedOut)), Some(TIMED_OUT));
        // rustls's words for a server that went away without a TLS goodbye.
        let tls = watcher::Error::WatchFailed(kube::Error::ReadEvents(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify",
        )));
        assert_eq!(transport_cause(&tls), Some(CLOSED));
        // Wrapped in an io::Error of another kind.
        let wrapped = watcher::Error::WatchStartFailed(kube::Error::Service(Box::new(io::Error::other(
            io::Error::from(io::ErrorKind::ConnectionRefused),
        ))));
        assert_eq!(transport_cause(&wrapped), Some(REFUSED));
        assert_eq!(transport_cause(&watcher::Error::WatchError(status(403))), None);
        assert_eq!(transport_cause(&watcher::Error::WatchError(status(410))), None);
        assert_eq!(transport_cause(&watcher::Error::NoResourceVersion), None);
    }
}
