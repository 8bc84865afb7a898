//! The pods' own metrics as a source: its flags, which view greet-top
//! shows, and the scraper's start.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use pod_metrics::{Fetch, HttpFetch, PodProxyFetch, ScrapeConfig, Target};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::metrics_targets::{self, ProxyTargets};
use crate::pod_metrics_feed;
use crate::state::AppEvent;

/// What the dashboard shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// What a greet-gateway sent each pod (its Observer stream).
    Gateway,
    /// What each pod's own Prometheus metrics say: any gRPC workload, no
    /// gateway needed.
    Metrics,
    /// Both side by side (`v` steps through the views).
    Both,
}

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// What to show: gateway, metrics (the pods' own Prometheus metrics:
    /// any gRPC server that counts its calls, go-grpc-prometheus or
    /// OpenTelemetry style) or both. Default: gateway when --gateway is
    /// given or gateway pods are found, else metrics; both with
    /// --gateway and --metrics-url.
    #[arg(long, value_enum)]
    pub source: Option<Source>,
    /// Scrape these metrics endpoints directly instead of each watched
    /// pod through the API server: http://host:port/path, or NAME=URL to
    /// name the row (else the pod the metrics name, or host:port).
    #[arg(long, value_delimiter = ',', value_name = "[NAME=]URL,...")]
    pub metrics_url: Vec<String>,
    /// The pods' metrics port, reached through the API server's pod proxy
    /// (default: each pod's container port named `metrics`).
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// The pods' metrics path.
    #[arg(long, default_value = "/metrics", value_name = "PATH")]
    pub metrics_path: String,
    /// How often each pod is scraped: one request per pod per interval.
    #[arg(long, default_value = "1s", value_parser = scrape_interval, value_name = "DURATION")]
    pub scrape_interval: Duration,
}

fn scrape_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|err| format!("{err} (e.g. 1s, 500ms)"))?;
    if interval < Duration::from_millis(100) {
        return Err("scraping faster than every 100ms loads the pods for nothing; e.g. 1s".to_owned());
    }
    Ok(interval)
}

impl MetricsArgs {
    /// The source shown when `--source` is not given: `gateway_given` is
    /// `--gateway`; `gateway_pods` whether the cluster has gateway pods
    /// (`None` without a cluster).
    pub(super) fn source(&self, gateway_given: bool, gateway_pods: Option<bool>) -> Source {
        if let Some(source) = self.source {
            return source;
        }
        match (gateway_given, !self.metrics_url.is_empty(), gateway_pods) {
            (true, true, _) => Source::Both,
            (true, false, _) => Source::Gateway,
            (false, true, _) | (false, false, Some(false)) => Source::Metrics,
            (false, false, _) => Source::Gateway,
        }
    }

    /// Each scrape's limits: the interval, and a time limit of the
    /// interval (at most 5 s), so a slow pod's scrape never spans rounds.
    pub(super) fn config(&self) -> ScrapeConfig {
        ScrapeConfig {
            interval: self.scrape_interval,
            timeout: self.scrape_interval.min(Duration::from_secs(5)),
            ..ScrapeConfig::default()
        }
    }

    /// The pod proxy's targets in `namespace`.
    pub(super) fn proxy_targets(&self, namespace: &str) -> ProxyTargets {
        ProxyTargets {
            namespace: namespace.to_owned(),
            port: self.metrics_port,
            path: if self.metrics_path.starts_with('/') {
                self.metrics_path.clone()
            } else {
                format!("/{}", self.metrics_path)
            },
        }
    }

    /// `--metrics-url`'s targets, or why they are refused.
    pub(super) fn url_targets(&self) -> anyhow::Result<Vec<Target>> {
        metrics_targets::from_urls(&self.metrics_url).map_err(anyhow::Error::msg)
    }
}

/// Starts scraping `targets` (kept current by the pod watch or fixed by
/// `--metrics-url`) and feeding the rounds to the dashboard.
pub(super) fn start(
    targets: watch::Receiver<Vec<Target>>,
    kube: Option<kube::Config>,
    config: ScrapeConfig,
    tx: mpsc::Sender<AppEvent>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let fetch: Arc<dyn Fetch> = match kube {
        Some(kube) => Arc::new(PodProxyFetch::new(kube).map_err(|err| anyhow::anyhow!("{err}"))?),
        None => Arc::new(HttpFetch::new()),
    };
    let (rounds_tx, rounds_rx) = mpsc::channel(4);
    tokio::spawn(pod_metrics::run(targets, fetch, config, rounds_tx, cancel.clone()));
    tokio::spawn(pod_metrics_feed::forward(rounds_rx, tx, cancel));
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::Cli;

    fn metrics(args: &[&str]) -> MetricsArgs {
        let argv = std::iter::once("greet-top").chain(args.iter().copied());
        Cli::try_parse_from(argv).unwrap().metrics
    }

    #[test]
    fn the_source_follows_what_is_given_and_found() {
        assert_eq!(metrics(&[]).source(false, None), Source::Gateway);
        assert_eq!(metrics(&[]).source(false, Some(true)), Source::Gateway);
        assert_eq!(metrics(&[]).source(false, Some(false)), Source::Metrics);
        assert_eq!(metrics(&[]).source(true, Some(false)), Source::Gateway);
        let urls = ["--metrics-url", "http://127.0.0.1:9090/metrics"];
        assert_eq!(metrics(&urls).source(false, None), Source::Metrics);
        assert_eq!(metrics(&urls).source(true, None), Source::Both);
        assert_eq!(metrics(&["--source", "both"]).source(false, Some(false)), Source::Both);
    }

    #[test]
    fn a_scrape_interval_under_100ms_is_refused() {
        let argv = ["greet-top", "--scrape-interval", "10ms"];
        let err = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(
            err.contains("scraping faster than every 100ms loads the pods for nothing; e.g. 1s"),
            "{err}"
        );
        assert_eq!(
            metrics(&["--scrape-interval", "2s"]).config().timeout,
            Duration::from_secs(2)
        );
        assert_eq!(
            metrics(&["--scrape-interval", "10s"]).config().timeout,
            Duration::from_secs(5)
        );
    }
}
