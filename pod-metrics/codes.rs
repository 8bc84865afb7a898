//! gRPC status codes from metric labels, whatever spelling the exporter
//! used: grpc-go's (`Canceled`, `InvalidArgument`; go-grpc-prometheus,
//! greet-server), the spec's UPPER_SNAKE (`CANCELLED`; py-grpc-prometheus,
//! OpenTelemetry's newer `rpc.response.status_code`) or the number (older
//! OpenTelemetry's `rpc.grpc.status_code`). The reverse of
//! `greet_proto::grpc_code`'s names, kept here so the wire crate stays small.

use greet_proto::grpc_code::{go_code_name, grpc_code_name};

/// The code UNKNOWN: what an unreadable or out-of-range code counts as, so
/// a peer cannot make new error-code keys.
pub(crate) const UNKNOWN: i32 = 2;

/// The gRPC code a label value names; [`UNKNOWN`] for anything else.
pub(crate) fn code_from_label(text: &str) -> i32 {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return if (0..=16).contains(&number) { number } else { UNKNOWN };
    }
    (0..=16)
        .find(|&code| text == grpc_code_name(code) || text == go_code_name(code))
        .unwrap_or(UNKNOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_every_code_maps_back() {
        for code in 0..=16 {
            assert_eq!(code_from_label(grpc_code_name(code)), code);
            assert_eq!(code_from_label(go_code_name(code)), code);
            assert_eq!(code_from_label(&code.to_string()), code);
        }
        assert_eq!(code_from_label("Canceled"), 1);
        assert_eq!(code_from_label("CANCELLED"), 1);
        assert_eq!(code_from_label("InvalidArgument"), 3);
        assert_eq!(code_from_label("INVALID_ARGUMENT"), 3);
        assert_eq!(code_from_label("14"), 14);
    }

    #[test]
    fn anything_else_is_unknown() {
        assert_eq!(code_from_label("17"), UNKNOWN);
        assert_eq!(code_from_label("-1"), UNKNOWN);
        assert_eq!(code_from_label("Nope"), UNKNOWN);
        assert_eq!(code_from_label(""), UNKNOWN);
    }
}
