//! gRPC status codes by name, as the gRPC spec spells them.

/// The canonical name of a gRPC status code.
pub fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}

/// Whether a failure with this code is the caller's doing rather than the
/// pod's: the request itself was wrong (a method the server does not have,
/// a bad argument, a missing or refused credential, a state the request
/// does not fit). Retrying the same request on another pod gets the same
/// answer, so these never make the pods `FAILING`. CANCELLED and
/// DEADLINE_EXCEEDED stay the pods' (a caller gives up on a slow pod), as do
/// RESOURCE_EXHAUSTED (an overloaded pod), UNAVAILABLE, INTERNAL, UNKNOWN,
/// ABORTED and DATA_LOSS. UNIMPLEMENTED is the caller's even though a pod on
/// an old version also answers it: then every caller of that method sees it,
/// and the verdict still names the code.
pub fn is_client_error(code: i32) -> bool {
    matches!(code, 3 | 5 | 6 | 7 | 9 | 11 | 12 | 16)
}

/// A gRPC status code as grpc-go's `codes.Code.String()` spells it, which
/// go-grpc-prometheus puts in its `grpc_code` label ("Unavailable",
/// "DeadlineExceeded", ...). A code outside the spec is "Unknown", so a
/// peer cannot make new label values.
pub fn go_code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|c| NAMES.get(c))
        .copied()
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_have_their_names() {
        assert_eq!(grpc_code_name(14), "UNAVAILABLE");
        assert_eq!(grpc_code_name(4), "DEADLINE_EXCEEDED");
        assert_eq!(grpc_code_name(99), "UNKNOWN_CODE");
        assert_eq!(go_code_name(0), "OK");
        assert_eq!(go_code_name(1), "Canceled");
        assert_eq!(go_code_name(14), "Unavailable");
        assert_eq!(go_code_name(16), "Unauthenticated");
        assert_eq!(go_code_name(17), "Unknown");
        assert_eq!(go_code_name(-1), "Unknown");
    }

    #[test]
    fn the_callers_mistakes_are_client_errors_and_the_pods_failures_are_not() {
        let client: Vec<&str> = (0..=17).filter(|c| is_client_error(*c)).map(grpc_code_name).collect();
        assert_eq!(
            client,
            [
                "INVALID_ARGUMENT",
                "NOT_FOUND",
                "ALREADY_EXISTS",
                "PERMISSION_DENIED",
                "FAILED_PRECONDITION",
                "OUT_OF_RANGE",
                "UNIMPLEMENTED",
                "UNAUTHENTICATED"
            ]
        );
        assert!(!is_client_error(0), "OK is no error");
        assert!(!is_client_error(-1), "a code outside the spec may be the pod's");
    }
}
