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

/// Whether a failed call's `code` says the caller is at fault, not the pod:
/// the request was malformed or not allowed (INVALID_ARGUMENT, NOT_FOUND,
/// ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE,
/// UNAUTHENTICATED), named a method the server does not have
/// (UNIMPLEMENTED), or was given up by the caller (CANCELLED). Such errors
/// say nothing about the pod's health; every other code may (UNAVAILABLE,
/// DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED, ABORTED,
/// DATA_LOSS, and any code outside the spec).
pub fn is_client_error(code: i32) -> bool {
    matches!(code, 1 | 3 | 5 | 6 | 7 | 9 | 11 | 12 | 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_the_callers_doing_and_the_rest_may_be_the_pods() {
        let client: Vec<&str> = (0..=17).filter(|&c| is_client_error(c)).map(grpc_code_name).collect();
        assert_eq!(
            client,
            [
                "CANCELLED",
                "INVALID_ARGUMENT",
                "NOT_FOUND",
                "ALREADY_EXISTS",
                "PERMISSION_DENIED",
                "FAILED_PRECONDITION",
                "OUT_OF_RANGE",
                "UNIMPLEMENTED",
                "UNAUTHENTICATED",
            ]
        );
        assert!(!is_client_error(0), "OK is no error");
        assert!(!is_client_error(-1));
    }

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
}
