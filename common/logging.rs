//! Log set-up for the binaries: human-readable lines on stderr, `RUST_LOG` to tune.

use tracing_subscriber::EnvFilter;

/// Logs to stderr at `info` unless `RUST_LOG` says otherwise.
pub fn init_stderr() {
    init_stderr_at("info");
}

/// Logs to stderr at `default` unless `RUST_LOG` says otherwise.
pub fn init_stderr_at(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a terminal, not for `kubectl logs`.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
