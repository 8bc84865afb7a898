//! Why a gateway's stream failed, as the Observer client words it
//! (observer_client/describe.rs) and the verdict reads it: the few causes
//! that mean the address answered, but not as an Observer would.

/// Another kind of server at the address (the gateway's REST port, say).
pub(crate) const NOT_AN_OBSERVER: &str = "not an Observer endpoint";
/// A certificate greet-top does not trust.
pub(crate) const CERTIFICATE_REJECTED: &str = "the gateway's TLS certificate was rejected";
/// TLS against a server that speaks plain text, or no TLS at all.
pub(crate) const TLS_FAILED: &str = "TLS handshake failed";

/// Whether `described` (an Observer client's failure text) is one that
/// retrying cannot cure: another kind of server at the address, or a
/// certificate greet-top does not trust. Only a change of the command line
/// helps, and the cause, not "unreachable", is the news.
pub fn fails_until_changed(described: &str) -> bool {
    described.starts_with(NOT_AN_OBSERVER)
        || described.starts_with(CERTIFICATE_REJECTED)
        || described.starts_with(TLS_FAILED)
}
