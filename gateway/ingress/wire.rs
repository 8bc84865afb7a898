//! What the ingress reads and writes on the wire besides the messages, which
//! it never decodes: the `grpc-timeout` deadline, the hop-by-hop headers it
//! drops, the status of a call and the answer it makes itself.

use std::time::Duration;

use http::{HeaderMap, HeaderName, header};
use tokio::time::Instant;

pub(super) use crate::grpc_headers::{grpc_timeout, status_in};

/// Headers that describe one hop's connection, not the call: never passed on
/// (RFC 9110 7.6.1; HTTP/2 forbids them, `te` other than "trailers" included).
// A static, not a const: a const array is built and dropped at each use.
static HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Drops the hop-by-hop headers, and those the `connection` header names.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // A gRPC call rarely has any: one pass over its few entries costs less
    // than the nine hashed removals (a few % of the ingress's CPU per call).
    let mut te = 0;
    let clean = headers.iter().all(|(name, value)| {
        if name == header::TE {
            te += 1;
            return value == "trailers";
        }
        name != header::HOST && !HOP_BY_HOP.contains(name)
    });
    if clean && te <= 1 {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
    // The next hop's authority is the upstream's; the channel sets it.
    headers.remove(header::HOST);
}

/// When a call with these headers must end: now + its `grpc-timeout`, if it
/// has a valid one (at most 8 digits and a unit, as the gRPC spec says).
pub(super) fn deadline(headers: &HeaderMap, now: Instant) -> Option<Instant> {
    let value = crate::grpc_headers::first(headers, &crate::grpc_headers::GRPC_TIMEOUT)?
        .to_str()
        .ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    now.checked_add(timeout)
}

/// When a call must end, and whose limit that is: the client's own
/// `grpc-timeout` (passed upstream as the time left), or the gateway's
/// `--default-call-timeout` for a call that sent none (kept here only: the
/// upstream sees the call as it came).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Deadline {
    pub(super) at: Instant,
    /// The gateway's default, when the client gave none.
    default: Option<Duration>,
}

impl Deadline {
    /// The deadline of a call with these headers arriving at `now`; none
    /// when it sent no valid `grpc-timeout` and `default` is zero.
    pub(super) fn of(headers: &HeaderMap, now: Instant, default: Duration) -> Option<Self> {
        match deadline(headers, now) {
            Some(at) => Some(Deadline { at, default: None }),
            None if default.is_zero() => None,
            None => now.checked_add(default).map(|at| Deadline {
                at,
                default: Some(default),
            }),
        }
    }

    /// What the upstream is told: the client's own deadline only.
    pub(super) fn sent(&self) -> Option<Instant> {
        self.default.is_none().then_some(self.at)
    }

    /// Why the call ended when it passed, `before` what (the upstream's
    /// answer, or its end), in whose words.
    pub(super) fn passed(&self, before: &str) -> tonic::Status {
        tonic::Status::deadline_exceeded(match self.default {
            None => format!("{before} within the call's grpc-timeout"),
            Some(default) => format!(
                "{before} within the gateway's default of {default:?} for a call that sent no grpc-timeout \
                 (--default-call-timeout); send a grpc-timeout for a longer call"
            ),
        })
    }
}

/// A trailers-only answer the ingress makes itself (no upstream, a deadline
/// passed, the upstream unreachable).
pub(super) fn status_response(status: tonic::Status) -> http::Response<()> {
    status.into_http()
}

/// `status` as trailers, to end a response whose upstream ended badly.
pub(super) fn status_trailers(status: &tonic::Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    // Only a header value that cannot be made fails here; the code alone then.
    if status.add_header(&mut trailers).is_err() {
        trailers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    }
    trailers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), http::HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn grpc_timeout_units_as_the_spec_says() {
        let now = Instant::now();
        let after = |value: &'static str| deadline(&headers(&[("grpc-timeout", value)]), now).map(|d| d - now);
        assert_eq!(after("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(after("3M"), Some(Duration::from_secs(180)));
        assert_eq!(after("5S"), Some(Duration::from_secs(5)));
        assert_eq!(after("250m"), Some(Duration::from_millis(250)));
        assert_eq!(after("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(after("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(after("123456789S"), None, "more than 8 digits");
        assert_eq!(after("S"), None);
        assert_eq!(after("5s"), None);
        assert_eq!(after("-5S"), None);
        assert_eq!(after(""), None);
        assert_eq!(deadline(&HeaderMap::new(), now), None);
    }

    #[test]
    fn a_call_without_grpc_timeout_gets_the_default_kept_in_the_gateway() {
        let now = Instant::now();
        let own = Deadline::of(&headers(&[("grpc-timeout", "5S")]), now, Duration::from_secs(3600)).unwrap();
        assert_eq!(
            (own.at, own.sent()),
            (now + Duration::from_secs(5), Some(now + Duration::from_secs(5)))
        );
        assert_eq!(
            own.passed("no response from a:1").message(),
            "no response from a:1 within the call's grpc-timeout"
        );
        let default = Deadline::of(&HeaderMap::new(), now, Duration::from_secs(1)).unwrap();
        assert_eq!((default.at, default.sent()), (now + Duration::from_secs(1), None));
        let status = default.passed("no response from a:1");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "no response from a:1 within the gateway's default of 1s for a call that sent no grpc-timeout (--default-call-timeout); send a grpc-timeout for a longer call"
        );
        assert_eq!(
            Deadline::of(&HeaderMap::new(), now, Duration::ZERO),
            None,
            "0: no default"
        );
    }

    #[test]
    fn the_time_left_goes_on_in_the_finest_unit_that_fits() {
        assert_eq!(grpc_timeout(Duration::from_nanos(1500)), "1500n");
        assert_eq!(grpc_timeout(Duration::from_millis(250)), "250000u");
        assert_eq!(grpc_timeout(Duration::from_secs(5)), "5000000u");
        assert_eq!(grpc_timeout(Duration::from_secs(1000)), "1000000m");
        assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
        assert_eq!(grpc_timeout(Duration::ZERO), "1n");
        // 1 ns over 100 s needs 9 digits in µs: milliseconds, rounded up.
        assert_eq!(grpc_timeout(Duration::new(100, 1)), "100001m");
        let now = Instant::now();
        let left = Duration::from_millis(1234);
        let mut header = HeaderMap::new();
        header.insert("grpc-timeout", grpc_timeout(left));
        assert_eq!(deadline(&header, now), Some(now + left), "read back as sent");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_rest_kept() {
        let mut h = headers(&[
            ("connection", "x-private, keep-alive"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("host", "gateway:9093"),
            ("te", "trailers"),
            ("x-user", "kept"),
            ("grpc-timeout", "1S"),
            ("content-type", "application/grpc"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "grpc-timeout", "te", "x-user"]);
        let mut gzip = headers(&[("te", "gzip")]);
        strip_hop_by_hop(&mut gzip);
        assert!(gzip.is_empty());
    }

    #[test]
    fn a_status_survives_as_trailers() {
        let status = tonic::Status::unavailable("no ready endpoint: check the pods");
        let read = status_in(&status_trailers(&status)).unwrap();
        assert_eq!(read.code(), tonic::Code::Unavailable);
        assert_eq!(read.message(), "no ready endpoint: check the pods");
        let response = status_response(tonic::Status::deadline_exceeded("late"));
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert_eq!(response.headers()["grpc-status"], "4");
    }
}
