//! Text from the network (pod names, error messages, kube fields) is cleaned
//! where it enters the dashboard, so the state and the screen only ever see
//! printable, bounded text.

use greet_proto::sanitize::sanitize_truncated;

/// Longest name (pod, gateway, node, IP) kept from the network.
pub(crate) const MAX_NAME: usize = 120;
/// Longest error text kept: room for an RBAC rule and what to apply.
pub(crate) const MAX_ERROR: usize = 240;
/// Longest Kubernetes phase kept.
pub(crate) const MAX_PHASE: usize = 20;

/// A name from the network, sanitised and bounded.
pub(crate) fn name(text: &str) -> String {
    sanitize_truncated(text, MAX_NAME)
}

/// An error or notice from the network, sanitised and bounded.
pub(crate) fn error(text: &str) -> String {
    sanitize_truncated(text, MAX_ERROR)
}

/// The host part of `host:port` (brackets of an IPv6 literal removed), sanitised.
pub(crate) fn host_of(address: &str) -> String {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => address,
    };
    name(host.trim_start_matches('[').trim_end_matches(']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_ports_and_brackets() {
        assert_eq!(host_of("10.0.0.1:50051"), "10.0.0.1");
        assert_eq!(host_of("[::1]:50051"), "::1");
        assert_eq!(host_of("greetserver"), "greetserver");
    }

    #[test]
    fn names_and_errors_are_cleaned_and_bounded() {
        assert_eq!(name("pod\u{1b}[2J-1"), "pod[2J-1");
        assert_eq!(name(&"x".repeat(500)).chars().count(), MAX_NAME);
        assert_eq!(error(&"e".repeat(500)).chars().count(), MAX_ERROR);
        assert!(error(&"e".repeat(500)).ends_with('…'));
    }
}
