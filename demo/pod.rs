//! One loopback "pod": a real greet-server task on its own 127.0.0.x
//! address, and how pods are named.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use greet_server::{MaxConnectionAge, ReplyDelay, ServerConfig};

/// How a pod's greet-server treats connections.
#[derive(Clone, Copy, Debug)]
pub struct PodOptions {
    /// GOAWAY after this age (greet-server's `--max-connection-age`), at start.
    pub max_connection_age: Option<Duration>,
    /// Longest wait for in-flight calls when the pod stops.
    pub drain_timeout: Duration,
    /// Serve `GET /metrics` on the pod's IP, any free port, as greet-server's
    /// METRICS_PORT does: what greet-top's pods' own metrics view reads.
    pub metrics: bool,
}

impl Default for PodOptions {
    fn default() -> Self {
        PodOptions {
            max_connection_age: None,
            drain_timeout: Duration::from_secs(1),
            metrics: false,
        }
    }
}

/// A running greet-server. Dropping it stops it without waiting.
pub struct LocalPod {
    pub name: String,
    pub addr: SocketAddr,
    /// Added to every reply: set it to make this pod slow, at run time.
    pub reply_delay: ReplyDelay,
    /// Its max connection age: set it to change the age at run time.
    pub max_connection_age: MaxConnectionAge,
    /// Where its metrics are served, with [`PodOptions::metrics`].
    pub metrics_addr: Option<SocketAddr>,
    drain_timeout: Duration,
    stop: CancellationToken,
    /// `None` once stopped.
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl LocalPod {
    /// A greet-server named `name` on exactly `addr` (port 0: any free port),
    /// reporting the address's IP as its pod IP.
    pub async fn start(name: impl Into<String>, addr: SocketAddr, options: PodOptions) -> anyhow::Result<LocalPod> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding a greet-server on {addr}"))?;
        LocalPod::serve(name, listener, options)
    }

    /// A greet-server on `preferred` if it is free, else on any free port of the same IP.
    pub async fn start_preferring(
        name: impl Into<String>,
        preferred: SocketAddr,
        options: PodOptions,
    ) -> anyhow::Result<LocalPod> {
        match TcpListener::bind(preferred).await {
            Ok(listener) => LocalPod::serve(name, listener, options),
            Err(_) => LocalPod::start(name, SocketAddr::new(preferred.ip(), 0), options).await,
        }
    }

    /// A greet-server on an already bound listener.
    pub fn serve(name: impl Into<String>, listener: TcpListener, options: PodOptions) -> anyhow::Result<LocalPod> {
        let name = name.into();
        let addr = listener.local_addr().context("reading a greet-server's address")?;
        let stop = CancellationToken::new();
        let config = ServerConfig {
            pod_name: name.clone(),
            pod_ip: addr.ip().to_string(),
            max_connection_age: options.max_connection_age,
            shutdown_delay: Duration::ZERO,
            drain_timeout: options.drain_timeout,
            reply_delay: ReplyDelay::default(),
        };
        let reply_delay = config.reply_delay.clone();
        let max_connection_age = MaxConnectionAge::new(options.max_connection_age);
        let metrics_listener = if options.metrics {
            // Bound here, synchronously, so the address is known on return.
            let std_listener = std::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0))
                .with_context(|| format!("binding {name}'s metrics listener on {}", addr.ip()))?;
            std_listener
                .set_nonblocking(true)
                .context("making the metrics listener non-blocking")?;
            Some(TcpListener::from_std(std_listener).context("handing the metrics listener to tokio")?)
        } else {
            None
        };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let task = tokio::spawn(greet_server::serve_with_max_age(
            listener,
            metrics_listener,
            config,
            max_connection_age.clone(),
            stop.clone().cancelled_owned(),
        ));
        Ok(LocalPod {
            name,
            addr,
            reply_delay,
            max_connection_age,
            metrics_addr,
            drain_timeout: options.drain_timeout,
            stop,
            task: Some(task),
        })
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// Stops the server and waits for its drain: an error if it failed,
    /// panicked or did not stop within its drain timeout and 2 s more.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let name = &self.name;
        let bound = self.drain_timeout + Duration::from_secs(2);
        match tokio::time::timeout(bound, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(anyhow::anyhow!("pod {name} panicked: {join}")),
            Err(_) => Err(anyhow::anyhow!("pod {name} did not stop within {bound:?}")),
        }
    }
}

impl Drop for LocalPod {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How a cluster names its pods.
#[derive(Clone, Debug)]
pub enum PodNames {
    /// `<prefix>-<hash>-<id>` like a Deployment's pods: one five-letter hash
    /// per cluster (the pod-template hash), a random five-letter id per pod.
    Kube { prefix: String },
    /// `<prefix>-<n>`, n counting from 0: stable names for tests.
    Numbered { prefix: String },
}

impl PodNames {
    /// The name of the `ordinal`-th pod of a cluster whose hash is `hash`.
    pub(crate) fn name(&self, hash: &str, ordinal: usize) -> String {
        match self {
            PodNames::Kube { prefix } => {
                format!("{prefix}-{hash}-{}", kube_style_id(random_seed() ^ ordinal as u64))
            }
            PodNames::Numbered { prefix } => format!("{prefix}-{ordinal}"),
        }
    }
}

/// A five-letter, lower-case id in the style of Kubernetes pod-name suffixes.
pub(crate) fn kube_style_id(mut seed: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[(seed % ALPHABET.len() as u64) as usize] as char;
            seed /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

pub(crate) use greet_runtime::random::seed as random_seed;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_kubernetes_suffixes() {
        let id = kube_style_id(123_456_789);
        assert_eq!(id.len(), 5);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(kube_style_id(1), kube_style_id(2));
    }

    #[test]
    fn numbered_names_count_from_zero() {
        let names = PodNames::Numbered {
            prefix: "greetserver-test".into(),
        };
        assert_eq!(names.name("ignored", 0), "greetserver-test-0");
        assert_eq!(names.name("ignored", 2), "greetserver-test-2");
    }

    #[test]
    fn kube_names_share_the_hash_and_differ_in_the_id() {
        let names = PodNames::Kube {
            prefix: "greetserver-demo".into(),
        };
        let (a, b) = (names.name("9j4bd", 0), names.name("9j4bd", 1));
        for name in [&a, &b] {
            let id = name.strip_prefix("greetserver-demo-9j4bd-").expect(name);
            assert_eq!(id.len(), 5, "{name}");
        }
        assert_ne!(a, b);
    }
}
