//! What greet-top's binaries share at run time: graceful shutdown and
//! drain, logging, the control token, the metrics endpoint, gRPC reflection.
//! Nothing here knows Kubernetes (kube-access does) or the wire format's
//! details (greet-proto does).

pub mod auth;
pub mod logging;
pub mod metrics;
pub mod random;
pub mod reflection;
pub mod shutdown;

/// Runs a binary's main future; on error prints `Error: <cause chain>` (no
/// backtrace: the message says what failed and what to do) and exits 1.
pub fn exit_on_error(result: anyhow::Result<()>) {
    if let Err(err) = result {
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}
