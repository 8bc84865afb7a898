//! greet-gateway's flags and start-up: the binary parses [`Args`] and calls [`run`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};

use super::discovery::{self, DiscoveryHealth, DiscoveryStream};
use super::dns_mode::DnsModeConfig;
use super::listen::FrontDoorLimits;
use super::resolve::Resolver;
use super::upstream::UpstreamTimeouts;
use super::{GatewayConfig, Listeners, start_checking};
use greet_proto::Mode;
use greet_runtime::auth::{ControlToken, TokenSetting};
use greet_runtime::logging::LogArgs;
use greet_runtime::shutdown::{DrainPolicy, serve_until_drained, termination_signal};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiscoveryKind {
    /// `static` when --endpoints is given, else `kube` in a pod (KUBERNETES_SERVICE_HOST set), else `dns`.
    Auto,
    /// The fixed list in --endpoints.
    Static,
    /// Re-resolve GRPC_SERVER_HOST every --dns-interval (a headless Service
    /// resolves to one address per ready pod).
    Dns,
    /// Watch the EndpointSlices of GRPC_SVC in POD_NAMESPACE through the Kubernetes API.
    Kube,
}

/// REST gateway in front of greet-server pods: POST /greet as in the article,
/// sent upstream in one of four modes: sticky (one HTTP/2 connection, the
/// article's bug), balanced (round robin per request across the discovered
/// endpoints), least-loaded (per request, the less loaded of two random
/// endpoints) or dns (round robin over GRPC_SERVER_HOST's last DNS answer).
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// REST port (POST /greet, GET|PUT /mode, GET /healthz).
    #[arg(long, env = "GATEWAY_PORT", default_value_t = 9091)]
    port: u16,
    /// Observer gRPC port (Watch, SetMode, GetState).
    #[arg(long, env = "OBSERVE_PORT", default_value_t = 9092)]
    observe_port: u16,
    /// gRPC ingress port: any gRPC call, forwarded sticky, balanced,
    /// least-loaded or dns as the mode says.
    #[arg(long, env = "GATEWAY_GRPC_PORT", default_value_t = 9093)]
    grpc_port: u16,
    /// Address to bind the ports on.
    #[arg(long, env = "GATEWAY_BIND", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    bind: IpAddr,
    /// Upstream host for sticky mode (and DNS discovery), as in the article.
    #[arg(long, env = "GRPC_SERVER_HOST", default_value = "localhost")]
    grpc_server_host: String,
    /// Upstream port.
    #[arg(long, env = "GRPC_SERVER_PORT", default_value_t = 50051)]
    grpc_server_port: u16,
    /// Kubernetes Service name of the greet-server pods (for kube discovery).
    #[arg(long, env = "GRPC_SVC")]
    grpc_svc: Option<String>,
    /// Kubernetes namespace of that Service.
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// Mode at start (sticky, balanced, least-loaded or dns); switch at run
    /// time with PUT /mode or Observer.SetMode.
    #[arg(long, env = "GATEWAY_MODE", value_enum, default_value_t = Mode::Sticky)]
    mode: Mode,
    /// Where balanced and least-loaded mode learn the endpoints.
    #[arg(long, value_enum, default_value_t = DiscoveryKind::Auto)]
    discovery: DiscoveryKind,
    /// EndpointSlice port to dial, by name (falls back to GRPC_SERVER_PORT by number).
    #[arg(long, env = "GRPC_PORT_NAME", default_value = "grpc")]
    port_name: String,
    /// Kubeconfig context for kube discovery outside a cluster.
    #[arg(long)]
    context: Option<String>,
    /// Comma-separated host:port list for static discovery.
    #[arg(long, env = "GATEWAY_ENDPOINTS", value_name = "HOST:PORT,...")]
    endpoints: Option<String>,
    /// How often `dns` mode and DNS discovery re-resolve GRPC_SERVER_HOST.
    #[arg(long, env = "GATEWAY_DNS_INTERVAL", value_parser = parse_resolve_interval, default_value = "5s", value_name = "DURATION")]
    dns_interval: Duration,
    /// Deadline of one upstream call for POST /greet. The gRPC ingress uses
    /// each call's own grpc-timeout instead (a stream may rightly last hours).
    /// Within it, a try on one of several pods waits at most 10 times that
    /// pod's usual latency (500 ms at least, 2 s before its first answer),
    /// then goes to another pod.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s", value_name = "DURATION")]
    upstream_timeout: Duration,
    /// How often the gateway checks every endpoint discovery lists (ready or
    /// not, in every mode) with grpc.health.v1 Check on the endpoint's
    /// connection once requests opened it, else on one of its own; each
    /// check waits the interval, 1s at most. The Observer shows
    /// each endpoint's failure, and the answers name the pods. The checks do not route: a failing endpoint still gets
    /// requests until a request fails on it (then the balancer skips it).
    /// 0 turns the checks off; else at least 100ms.
    #[arg(long, env = "GATEWAY_HEALTH_CHECK_INTERVAL", value_parser = parse_check_interval, default_value = "1s", value_name = "DURATION")]
    health_check_interval: Duration,
    /// TCP connect deadline for an upstream endpoint.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s", value_name = "DURATION")]
    connect_timeout: Duration,
    /// On SIGTERM, answer /healthz with 503 this long before refusing
    /// connections, so the Service stops routing here first.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s", value_name = "DURATION")]
    shutdown_delay: Duration,
    /// Then wait at most this long for in-flight requests and open connections.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s", value_name = "DURATION")]
    drain_timeout: Duration,
    /// Token that PUT /mode and the Observer RPCs (Watch, GetState, SetMode)
    /// require as `authorization: Bearer <token>`. Without it they are open to
    /// anyone who reaches the ports.
    #[arg(long, env = "GATEWAY_CONTROL_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    control_token: Option<TokenSetting>,
    /// Hostile and idle clients: a PING this often on every gRPC ingress
    /// (and REST HTTP/2) connection; 0 turns the PINGs off.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s", value_name = "DURATION")]
    keepalive_interval: Duration,
    /// A connection whose client does not answer a PING within this is closed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s", value_name = "DURATION")]
    keepalive_timeout: Duration,
    /// A gRPC ingress connection with no call for this long is asked to go
    /// (GOAWAY). 0: never. (REST: --first-request-timeout.)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s", value_name = "DURATION")]
    idle_timeout: Duration,
    /// A connection that has not sent a complete request (an ingress call's
    /// headers) this long after it opened is closed; on the REST port, each
    /// request's header must come within it, so an idle keep-alive
    /// connection is closed after it too.
    #[arg(long, value_parser = parse_positive, default_value = "10s", value_name = "DURATION")]
    first_request_timeout: Duration,
    /// A gRPC ingress call that moves no message either way for this long is
    /// reset (CANCEL). 0: never.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m", value_name = "DURATION")]
    stream_idle_timeout: Duration,
    /// A gRPC ingress response that the client gives no flow-control window
    /// for this long is reset (CANCEL), its upstream stream with it.
    #[arg(long, value_parser = parse_positive, default_value = "10s", value_name = "DURATION")]
    stall_timeout: Duration,
    /// The deadline of a gRPC ingress call that sends no grpc-timeout; a
    /// longer stream sends its own. 0: none.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h", value_name = "DURATION")]
    default_call_timeout: Duration,
    /// Open connections on the three ports together; new ones wait in the
    /// listen queue while their port's share is taken. The Observer port
    /// has a sixteenth (at least 1), the gRPC ingress and REST ports the rest.
    #[arg(long, default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// gRPC ingress calls in flight across all connections. At the cap, a
    /// new call of a client holding fewer than the heaviest holder (by peer
    /// IP, then by connection) takes the place of that holder's oldest call
    /// (reset ENHANCE_YOUR_CALM); any other is refused (REFUSED_STREAM:
    /// safe to retry).
    #[arg(long, default_value_t = 4096, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_streams: u32,
    #[command(flatten)]
    pub log: LogArgs,
}

impl Args {
    /// The front doors' limits these flags set.
    fn front_door_limits(&self) -> FrontDoorLimits {
        FrontDoorLimits {
            keepalive_interval: self.keepalive_interval,
            keepalive_timeout: self.keepalive_timeout,
            idle_timeout: self.idle_timeout,
            first_request_timeout: self.first_request_timeout,
            stream_idle_timeout: self.stream_idle_timeout,
            stall_timeout: self.stall_timeout,
            default_call_timeout: self.default_call_timeout,
            max_connections: self.max_connections as usize,
            max_streams: self.max_streams as usize,
        }
    }
}

/// A time limit that cannot be off: more than zero.
fn parse_positive(value: &str) -> Result<Duration, String> {
    let limit = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if limit.is_zero() {
        return Err(format!("{value} would close every connection at once: use more than 0"));
    }
    Ok(limit)
}

/// Names the token's flag and variable in start-up errors.
const TOKEN_SETTING: &str = "--control-token / GATEWAY_CONTROL_TOKEN";

/// The control token, checked; without one, a warning that the controls are open.
fn control_token(args: &Args) -> anyhow::Result<Option<ControlToken>> {
    let Some(setting) = &args.control_token else {
        tracing::warn!(
            "the gateway's controls are open: anyone who reaches its ports can switch the mode (PUT /mode, \
             Observer.SetMode) and watch every pod (Observer.Watch); set GATEWAY_CONTROL_TOKEN (or \
             --control-token) to require a bearer token"
        );
        return Ok(None);
    };
    setting.token(TOKEN_SETTING).map(Some)
}

async fn discovery_from(args: &Args, health: &DiscoveryHealth) -> anyhow::Result<(String, DiscoveryStream)> {
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let kind = match (args.discovery, &args.endpoints) {
        (DiscoveryKind::Auto, Some(_)) => DiscoveryKind::Static,
        (DiscoveryKind::Auto, None) if in_cluster && args.grpc_svc.is_some() => DiscoveryKind::Kube,
        (DiscoveryKind::Auto, None) => DiscoveryKind::Dns,
        (kind, _) => kind,
    };
    match kind {
        DiscoveryKind::Static => {
            let Some(list) = &args.endpoints else {
                bail!("--discovery static needs --endpoints host:port,host:port,...");
            };
            let set = discovery::parse_endpoint_list(list).context("invalid --endpoints")?;
            Ok((
                format!("static {} endpoints", set.len()),
                discovery::static_endpoints(set),
            ))
        }
        DiscoveryKind::Kube => {
            let Some(service) = &args.grpc_svc else {
                bail!("--discovery kube needs the Service name: set GRPC_SVC or --grpc-svc");
            };
            let target = kube_access::connect(args.context.as_deref()).await?;
            let namespace = args.namespace.clone().unwrap_or(target.default_namespace);
            let port = discovery::PortSelector {
                name: args.port_name.clone(),
                number: args.grpc_server_port,
            };
            let name = format!("kube EndpointSlices of {namespace}/{service}");
            let stream = discovery::endpoint_slices(target.client, &namespace, service, port, health.clone());
            Ok((name, stream))
        }
        DiscoveryKind::Dns | DiscoveryKind::Auto => {
            let name = format!(
                "dns {}:{} every {:?}",
                args.grpc_server_host, args.grpc_server_port, args.dns_interval
            );
            let stream = discovery::dns(
                args.grpc_server_host.clone(),
                args.grpc_server_port,
                args.dns_interval,
                health.clone(),
            );
            Ok((name, stream))
        }
    }
}

async fn bind(addr: SocketAddr, what: &str, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}: is the port in use? Choose another with {flag}"))
}

/// Runs greet-gateway with `args` until SIGTERM or SIGINT, then drains.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // First: from here on, SIGTERM drains instead of killing.
    let terminated = termination_signal();
    let control_token = control_token(&args)?;
    let discovery_health = DiscoveryHealth::default();
    let (discovery_name, discovery) = discovery_from(&args, &discovery_health).await?;
    let name = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "greet-gateway".to_owned());
    let config = GatewayConfig {
        name,
        mode: args.mode,
        sticky_target: format!("{}:{}", args.grpc_server_host, args.grpc_server_port),
        discovery_name,
        discovery_health,
        timeouts: UpstreamTimeouts {
            request: args.upstream_timeout,
            connect: args.connect_timeout,
        },
        dns: DnsModeConfig {
            name: format!("{}:{}", args.grpc_server_host, args.grpc_server_port),
            resolver: Resolver::system(args.grpc_server_host.clone(), args.grpc_server_port),
            interval: args.dns_interval,
        },
        control_token,
        front_door: args.front_door_limits(),
    };
    let rest = bind(SocketAddr::new(args.bind, args.port), "REST", "--port / GATEWAY_PORT").await?;
    let observe = bind(
        SocketAddr::new(args.bind, args.observe_port),
        "the Observer",
        "--observe-port / OBSERVE_PORT",
    )
    .await?;
    let grpc = bind(
        SocketAddr::new(args.bind, args.grpc_port),
        "the gRPC ingress",
        "--grpc-port / GATEWAY_GRPC_PORT",
    )
    .await?;
    let listeners = Listeners { rest, observe, grpc };
    let handle = start_checking(config, discovery, listeners, Some(args.health_check_interval)).await?;
    let gateway = Arc::clone(&handle.gateway);
    let stop = handle.shutdown_token();
    let announce = async move { gateway.start_draining() };
    let policy = DrainPolicy {
        delay: args.shutdown_delay,
        timeout: args.drain_timeout,
    };
    serve_until_drained("greet-gateway", handle.wait(), terminated, announce, stop, policy).await
}

/// A re-resolve interval: a duration of at least 100 ms (0 would resolve
/// in a busy loop; tokio's interval refuses it).
fn parse_resolve_interval(value: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if interval < Duration::from_millis(100) {
        return Err(format!("{value} is too short to re-resolve every: use 100ms or more"));
    }
    Ok(interval)
}

/// A health-check interval: 0 (no checks) or at least 100 ms (shorter
/// would check every endpoint in a busy loop).
fn parse_check_interval(value: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if !interval.is_zero() && interval < Duration::from_millis(100) {
        return Err(format!(
            "{value} is too short an interval for health checks: use 100ms or more, or 0 to turn the checks off"
        ));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_every_mode_wherever_it_names_modes() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        let about = help.split("\n\n").next().unwrap().replace('\n', " ");
        for mode in Mode::ALL {
            assert!(about.contains(mode.as_str()), "{mode} not in the about text: {about}");
        }
        let paragraph = |flag: &str| -> String {
            let at = help.find(flag).unwrap_or_else(|| panic!("no {flag} in {help}"));
            let rest = &help[at..];
            rest[..rest.find("\n\n").unwrap_or(rest.len())].replace('\n', " ")
        };
        for flag in ["--grpc-port", "--mode <MODE>"] {
            let text = paragraph(flag);
            for mode in ["sticky", "balanced", "least-loaded", "dns"] {
                assert!(text.contains(mode), "{mode} not in {flag}'s help: {text}");
            }
        }
    }

    #[test]
    fn health_checks_default_to_every_second_and_0_turns_them_off() {
        let parse = |extra: &[&str]| {
            let args = Args::try_parse_from([&["greet-gateway"], extra].concat()).unwrap();
            args.health_check_interval
        };
        assert_eq!(parse(&[]), Duration::from_secs(1));
        assert_eq!(parse(&["--health-check-interval", "200ms"]), Duration::from_millis(200));
        assert_eq!(parse(&["--health-check-interval", "0s"]), Duration::ZERO);
        assert_eq!(
            parse_check_interval("10ms"),
            Err(
                "10ms is too short an interval for health checks: use 100ms or more, or 0 to turn the checks off"
                    .to_owned()
            )
        );
    }

    #[test]
    fn the_front_doors_limits_default_as_documented() {
        let args = Args::try_parse_from(["greet-gateway"]).unwrap();
        assert_eq!(args.front_door_limits(), FrontDoorLimits::default());
        let args = Args::try_parse_from(["greet-gateway", "--idle-timeout", "0", "--stall-timeout", "2s"]).unwrap();
        assert_eq!(args.front_door_limits().idle_timeout, Duration::ZERO);
        assert_eq!(args.front_door_limits().stall_timeout, Duration::from_secs(2));
        assert_eq!(
            parse_positive("0s"),
            Err("0s would close every connection at once: use more than 0".to_owned())
        );
    }

    #[test]
    fn a_re_resolve_interval_is_at_least_100_ms() {
        assert_eq!(
            parse_resolve_interval("0s"),
            Err("0s is too short to re-resolve every: use 100ms or more".to_owned())
        );
        assert_eq!(parse_resolve_interval("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_resolve_interval("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_resolve_interval("soon").is_err());
    }
}
