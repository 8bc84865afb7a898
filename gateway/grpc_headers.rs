//! The gRPC headers every call through the gateway carries besides its
//! messages: the `grpc-timeout` it is given, and the status it ends with.
//! A leaf: the ingress passes calls through with them, and the upstream's
//! own unary calls (REST's Greet, the health checks) write and read them.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

/// Names made once: a lookup by `&str` parses the name on every call.
pub(crate) static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub(crate) static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The first value of `name` in `headers`. A call's few headers are
/// scanned: comparing names costs less than hashing one (a custom name's
/// hash reads each of its bytes), and most lookups here find nothing or
/// one of a handful of entries.
pub(crate) fn first<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a http::HeaderValue> {
    const SCAN_UP_TO: usize = 8;
    if headers.len() > SCAN_UP_TO {
        return headers.get(name);
    }
    headers.iter().find_map(|(key, value)| (key == name).then_some(value))
}

/// `remaining` as a `grpc-timeout` value: the finest unit that keeps it
/// within the spec's 8 digits (rounded up, so a call is never given less).
pub(crate) fn grpc_timeout(remaining: Duration) -> http::HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = remaining.as_nanos().max(1);
    let units: [(u128, &str); 6] = [
        (1, "n"),
        (1_000, "u"),
        (1_000_000, "m"),
        (1_000_000_000, "S"),
        (60_000_000_000, "M"),
        (3_600_000_000_000, "H"),
    ];
    let (amount, unit) = units
        .iter()
        .map(|&(size, unit)| (nanos.div_ceil(size), unit))
        .find(|&(amount, _)| amount <= MAX)
        .unwrap_or((MAX, "H"));
    http::HeaderValue::from_str(&format!("{amount}{unit}"))
        .unwrap_or_else(|_| http::HeaderValue::from_static("99999999H"))
}

/// Whether these headers or trailers end the call OK (`grpc-status: 0`).
pub(crate) fn ends_ok(headers: &HeaderMap) -> bool {
    first(headers, &GRPC_STATUS).is_some_and(|code| code == "0")
}

/// The status a response's headers or trailers carry, if they carry one.
pub(crate) fn status_in(headers: &HeaderMap) -> Option<tonic::Status> {
    // Most calls end OK: no message or details to decode then.
    if ends_ok(headers) {
        return Some(tonic::Status::new(tonic::Code::Ok, ""));
    }
    tonic::Status::from_header_map(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_value_is_found_in_a_small_map_and_a_large_one() {
        let mut headers = HeaderMap::new();
        assert_eq!(first(&headers, &GRPC_STATUS), None);
        headers.append("x-a", http::HeaderValue::from_static("1"));
        headers.append(&GRPC_STATUS, http::HeaderValue::from_static("0"));
        headers.append(&GRPC_STATUS, http::HeaderValue::from_static("2"));
        assert_eq!(first(&headers, &GRPC_STATUS).unwrap(), "0");
        assert_eq!(first(&headers, &GRPC_TIMEOUT), None);
        for i in 0..10 {
            headers.append(
                HeaderName::try_from(format!("x-more-{i}")).unwrap(),
                http::HeaderValue::from(i),
            );
        }
        assert!(headers.len() > 8, "looked up by hash");
        assert_eq!(first(&headers, &GRPC_STATUS).unwrap(), "0");
        assert_eq!(first(&headers, &HeaderName::from_static("x-more-9")).unwrap(), "9");
        assert_eq!(first(&headers, &GRPC_TIMEOUT), None);
    }
}
