//! greet-top's command line and how each command wires the parts together.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::observer_client;
use super::observer_client::Subscription;
use super::report::{FailOn, FailOnMatched, OutputFormat};
use super::terminal;

mod attach;
mod checks;
mod pod_source;
mod record_args;
mod replay;
mod run_demo;
mod set_mode;

pub use self::pod_source::{MetricsArgs, Source};
pub use self::record_args::RecordArgs;
pub use self::replay::ReplayArgs;
pub use self::run_demo::DemoArgs;
use greet_runtime::auth::TokenSetting;
use greet_runtime::logging::LogArgs;

/// Live view of how a gRPC gateway spreads requests over pods, and the switch
/// between its modes: sticky (one HTTP/2 connection), dns (round robin over
/// the last DNS answer), balanced (round robin over the watched endpoints)
/// and least-loaded (the less loaded of two, per request).
#[derive(Parser, Debug)]
#[command(name = "greet-top", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub attach: AttachArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub once: OnceArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub record: RecordArgs,
    /// Logs go to stderr with --once only: the dashboard owns the terminal.
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Args, Debug)]
pub struct StreamArgs {
    /// Receive every request from the gateway instead of a summary every
    /// 250 ms and a sample for the tail: costs the gateway and greet-top
    /// CPU per request; for debugging the stream itself.
    #[arg(long, global = true)]
    pub raw_events: bool,
}

impl StreamArgs {
    fn subscription(&self) -> Subscription {
        if self.raw_events {
            Subscription::Raw
        } else {
            Subscription::Summaries
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run everything on loopback: greet-servers, a Service that balances
    /// connections like kube-proxy, the gateway, load, and the dashboard.
    Demo(DemoArgs),
    /// Switch a gateway to MODE (sticky, dns, balanced, least-loaded) and
    /// print its state: for scripts; the dashboard's keys are m and M.
    SetMode(set_mode::SetModeArgs),
    /// Play back a recording made with --record: the same dashboard, with
    /// pause (space), seek (←/→, [ ]), go to (g) and speed (< >); with
    /// --once [--from T] [--to T], the report of that window.
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The gateway's Observer address, e.g. http://127.0.0.1:9092 with
    /// `kubectl -n greet port-forward svc/greetclient 9092`. Without it, greet-top finds
    /// the gateway pods (--gateway-selector) and reaches each one through the
    /// API server's port-forward; with no cluster configured, it uses
    /// http://127.0.0.1:9092.
    /// An https:// URL is spoken to over TLS, its certificate checked
    /// against the system's roots (see --insecure).
    #[arg(long, env = "GREET_TOP_GATEWAY", value_name = "URL")]
    pub gateway: Option<String>,
    /// With an https:// --gateway or --load-url: accept any certificate (e.g.
    /// a self-signed one). Still encrypted, not authenticated.
    #[arg(long)]
    pub insecure: bool,
    /// Kubernetes namespace of the pods (default: the context's namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Label selector of the greet-server pods.
    #[arg(long, short = 'l', default_value = "run=greetserver")]
    pub selector: String,
    /// Label selector of the gateway pods, found when --gateway is not given.
    #[arg(long, default_value = "run=greetclient")]
    pub gateway_selector: String,
    /// The gateway pods' Observer port, for the API server's port-forward.
    #[arg(long, default_value_t = 9092)]
    pub observe_port: u16,
    /// kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Do not use the Kubernetes API: pods come from the gateway's endpoint list.
    #[arg(long)]
    pub no_kube: bool,
    /// The gateway's REST address, to let `l` and `+`/`-` drive load through
    /// it (https:// speaks TLS, checked as for --gateway).
    #[arg(long, value_name = "URL")]
    pub load_url: Option<String>,
    /// Load rate for --load-url, requests per second (load starts off; default 50).
    #[arg(long, value_name = "RPS")]
    pub load_rate: Option<u32>,
    /// The gateways' control token (their GATEWAY_CONTROL_TOKEN), sent with
    /// every Observer call as `authorization: Bearer <token>`.
    #[arg(long, env = "GREET_TOP_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<TokenSetting>,
}

impl AttachArgs {
    fn verify(&self) -> observer_client::Verify {
        if self.insecure {
            observer_client::Verify::Insecure
        } else {
            observer_client::Verify::SystemRoots
        }
    }
}

#[derive(Args, Debug)]
pub struct OnceArgs {
    /// No terminal UI: observe for DURATION (e.g. 5s), print per-pod stats,
    /// exit. With replay, no DURATION: the window is --from and --to.
    #[arg(long, value_parser = checks::once_duration, value_name = "DURATION", global = true)]
    pub once: Option<Duration>,
    /// With --once: the report's format, table by default (markdown: for
    /// pasting into an incident channel).
    #[arg(long, value_enum, global = true)]
    pub output: Option<OutputFormat>,
    /// With --once: exit 3 after the report when one of these holds: stuck,
    /// skipped, errors (any), errors>N, errors>N% (client errors such as
    /// UNIMPLEMENTED not counted), p99>DURATION (any pod's, e.g. p99>50ms),
    /// fairness<X (0 to 1). Quote the ones with > or < in a shell.
    #[arg(long, value_delimiter = ',', value_name = "CONDITION,...", global = true)]
    pub fail_on: Vec<FailOn>,
}

impl OnceArgs {
    fn format(&self) -> OutputFormat {
        self.output.unwrap_or(OutputFormat::Table)
    }
}

/// --load-rate's default, requests per second.
const DEFAULT_LOAD_RATE: u32 = 50;

/// Where `kubectl -n greet port-forward svc/greetclient 9092` puts the Observer.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:9092";

/// Exits as the outcome of [`run`] says: 0, 3 when a `--fail-on` condition
/// held (the report is already printed), else 1 with the cause.
pub fn exit(result: anyhow::Result<()>) {
    if let Err(err) = &result
        && let Some(matched) = err.downcast_ref::<FailOnMatched>()
    {
        greet_runtime::say(format_args!("greet-top: {matched}"));
        std::process::exit(3);
    }
    if let Err(err) = &result
        && let Some(stopped) = err.downcast_ref::<terminal::StoppedBySignal>()
    {
        // The terminal may be gone (SIGHUP): a failed write is no reason to panic.
        greet_runtime::say(format_args!("greet-top: {stopped}"));
        std::process::exit(128 + stopped.number);
    }
    greet_runtime::exit_on_error(result);
}

/// The command line, or clap's usage error (exit 2) for flags that do not
/// go together.
pub fn parse() -> Cli {
    use clap::CommandFactory as _;
    let cli = Cli::parse_from(checks::replay_once_without_duration(std::env::args_os()));
    if let Err(message) = checks::check(&cli) {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    cli
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.once.once.is_some() {
        greet_runtime::logging::init(cli.log.log_format, "warn");
    }
    match cli.command {
        Some(Command::Demo(args)) => run_demo::run(args, cli.once, cli.stream.subscription(), cli.record).await,
        Some(Command::SetMode(args)) => set_mode::run(args).await,
        Some(Command::Replay(args)) => replay::run(args, cli.once).await,
        None => attach::run(cli.attach, cli.metrics, cli.once, cli.stream.subscription(), cli.record).await,
    }
}
