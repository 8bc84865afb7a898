//! What greet-top's binaries share at run time: graceful shutdown and
//! drain, logging, the allocator, the control token, the metrics endpoint, gRPC reflection.
//! Nothing here knows Kubernetes (kube-access does) or the wire format's
//! details (greet-proto does).

pub mod allocator;
pub mod auth;
pub mod logging;
pub mod metrics;
pub mod random;
pub mod reflection;
pub mod shutdown;
pub mod write_batch;

/// Runs a binary's main future; on error prints `Error: <cause chain>` (no
/// backtrace: the message says what failed and what to do) and exits 1.
pub fn exit_on_error(result: anyhow::Result<()>) {
    if let Err(err) = result {
        say(format_args!("Error: {err:#}"));
        std::process::exit(1);
    }
}

/// Writes `line` to stderr, a failed write ignored: where stderr has gone
/// (the terminal closed, a full disk) there is nobody to tell, and
/// `eprintln!` would panic in place of the exit status the caller gives.
pub fn say(line: std::fmt::Arguments) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
