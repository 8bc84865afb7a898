//! Limits the gateway keeps to and greet-top relies on.

/// Methods named per pod in a summary; calls of any further one are counted
/// as "(other methods)". With names of at most [`MAX_METHOD_CHARS`], a
/// summary of 1,000 pods stays far below greet-top's message limit.
pub const MAX_METHODS: usize = 16;
/// Longest method name kept (the gRPC ingress cuts longer paths).
pub const MAX_METHOD_CHARS: usize = 100;
