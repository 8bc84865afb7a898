//! Small pieces every component shares.

pub mod auth;
pub mod grpc_code;
pub mod kube;
pub mod latency_buckets;
pub mod logging;
pub mod metrics;
pub mod mode;
pub mod random;
pub mod reflection;
pub mod sanitize;
pub mod shutdown;

pub use mode::Mode;

/// Runs a binary's main future; on error prints `Error: <cause chain>` (no
/// backtrace: the message says what failed and what to do) and exits 1.
pub fn exit_on_error(result: anyhow::Result<()>) {
    if let Err(err) = result {
        eprintln!("Error: {err:#}");
        std::process::exit(1);
    }
}
