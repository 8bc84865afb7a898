//! Which metrics endpoints to scrape: each watched pod through the API
//! server's pod proxy, or URLs given on the command line.

use k8s_openapi::api::core::v1::Pod;
use pod_metrics::{Target, Via};

use crate::network_text;

/// The container port greet-top scrapes when `--metrics-port` is not given.
pub(crate) const METRICS_PORT_NAME: &str = "metrics";

/// How the watched pods' metrics are reached through the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProxyTargets {
    pub namespace: String,
    /// `--metrics-port`; else each pod's container port named `metrics`.
    pub port: Option<u16>,
    /// `--metrics-path`, starting with `/`.
    pub path: String,
}

impl ProxyTargets {
    /// The pods' targets, and the names of running pods that have no port
    /// to scrape (none named `metrics` and no `--metrics-port`). A pod
    /// without an IP yet is left out: the API server could not reach it.
    pub(crate) fn of<'a>(&self, pods: impl IntoIterator<Item = &'a Pod>) -> (Vec<Target>, Vec<String>) {
        let mut targets = Vec::new();
        let mut portless = Vec::new();
        for pod in pods {
            let name = network_text::name(pod.metadata.name.as_deref().unwrap_or_default());
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .unwrap_or_default();
            if name.is_empty() || ip.is_empty() || pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(port) = self.port.or_else(|| named_port(pod)) else {
                portless.push(name);
                continue;
            };
            targets.push(Target {
                pod: name.clone(),
                ip: network_text::name(ip),
                via: Via::PodProxy {
                    namespace: self.namespace.clone(),
                    pod: name,
                    port,
                    path: self.path.clone(),
                },
            });
        }
        targets.sort_by(|a, b| a.pod.cmp(&b.pod));
        (targets, portless)
    }
}

fn named_port(pod: &Pod) -> Option<u16> {
    let containers = &pod.spec.as_ref()?.containers;
    containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(METRICS_PORT_NAME))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// `--metrics-url`'s values: `URL` or `NAME=URL`; the row is named NAME,
/// else (the name left empty) by the pod the metrics name, else
/// `host:port` (pod-metrics decides).
pub(crate) fn from_urls(urls: &[String]) -> Result<Vec<Target>, String> {
    urls.iter()
        .map(|given| {
            let (name, url) = match given.split_once('=') {
                Some((name, url)) if !name.contains('/') && !name.contains(':') => (Some(name), url),
                _ => (None, given.as_str()),
            };
            let uri: http::Uri = url
                .parse()
                .map_err(|err| format!("--metrics-url {given:?} is not a URL ({err}); e.g. http://10.0.0.7:9090/metrics"))?;
            if uri.scheme_str() != Some("http") {
                return Err(format!(
                    "--metrics-url {given:?}: only http:// is scraped directly; for TLS endpoints use a port-forward or the pod proxy"
                ));
            }
            if uri.authority().is_none() {
                return Err(format!("--metrics-url {given:?} names no host; e.g. http://10.0.0.7:9090/metrics"));
            }
            let ip = uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
            Ok(Target {
                pod: name.map(str::to_owned).unwrap_or_default(),
                ip,
                via: Via::Url(url.to_owned()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
