//! Log set-up for the binaries: lines on stderr, as text for people or as one
//! JSON object a line for a cluster's log collector; `RUST_LOG` to tune.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines look on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object a line (`timestamp`, `level`, `target`, `message` and the event's fields at the
    /// top level), for Loki, Elasticsearch, Cloud Logging and the like.
    Json,
}

/// The `--log-format` flag, shared by the three binaries.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct LogArgs {
    /// Log format on stderr: text, or json (one object a line) for clusters.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Logs to stderr at `default` (e.g. "info") unless `RUST_LOG` says otherwise.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            use std::io::IsTerminal as _;
            // Colour codes only for a terminal, not for `kubectl logs`.
            builder.with_ansi(std::io::stderr().is_terminal()).try_init()
        }
        // Flattened, so collectors find `message` and the fields without a
        // nested "fields" object; no span lists: the binaries log events only.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
