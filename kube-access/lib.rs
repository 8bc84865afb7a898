//! Kubernetes access shared by the gateway and greet-top: building a client
//! the way kubectl finds its config, and explaining watch failures.

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};

mod transport;
pub use transport::{CLOSED, REFUSED, TIMED_OUT, transport_cause};

/// A client and where it points.
#[derive(Clone)]
pub struct KubeTarget {
    pub client: Client,
    /// What the client was built from: for a client with other settings
    /// (the pods' metrics scrapes want no retries).
    pub config: Config,
    /// The context's namespace (or the pod's, in a cluster).
    pub default_namespace: String,
    /// The kubeconfig context used, or "in-cluster".
    pub context: String,
}

/// A client from `KUBECONFIG` / `~/.kube/config` (optionally another
/// `context`), or the in-cluster service account.
pub async fn connect(context: Option<&str>) -> anyhow::Result<KubeTarget> {
    let config = match context {
        Some(name) => Config::from_kubeconfig(&KubeConfigOptions {
            context: Some(name.to_owned()),
            ..KubeConfigOptions::default()
        })
        .await
        .with_context(|| format!("cannot load kubeconfig context {name:?}: check `kubectl config get-contexts`"))?,
        None => Config::infer().await.context(
            "no Kubernetes configuration: set KUBECONFIG or ~/.kube/config (as for kubectl), or run inside a pod",
        )?,
    };
    let context = match context {
        Some(name) => name.to_owned(),
        None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() && Kubeconfig::read().is_err() => {
            "in-cluster".to_owned()
        }
        None => Kubeconfig::read()
            .ok()
            .and_then(|k| k.current_context)
            .unwrap_or_else(|| "in-cluster".to_owned()),
    };
    let default_namespace = config.default_namespace.clone();
    let client =
        Client::try_from(config.clone()).context("cannot build a Kubernetes client from that configuration")?;
    Ok(KubeTarget {
        client,
        config,
        default_namespace,
        context,
    })
}

/// Why a watch is failing, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchProblem {
    /// RBAC denies it: `rule` is the missing permission.
    Forbidden {
        rule: String,
    },
    Other(String),
}

impl std::fmt::Display for WatchProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchProblem::Forbidden { rule } => write!(f, "forbidden: {rule}"),
            WatchProblem::Other(text) => f.write_str(text),
        }
    }
}

/// The API status inside a watcher error, if the API server answered.
pub(crate) fn api_status(err: &watcher::Error) -> Option<&kube::core::Status> {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => Some(status),
        watcher::Error::WatchError(status) => Some(status),
        _ => None,
    }
}

/// Explains `err` from a watch of `resource` (e.g. "pods",
/// "endpointslices.discovery.k8s.io") in `namespace`; `hint` names the
/// manifest that grants the permission.
pub fn describe_watch_error(err: &watcher::Error, resource: &str, namespace: &str, hint: &str) -> WatchProblem {
    match api_status(err) {
        Some(status) if status.code == 403 => WatchProblem::Forbidden {
            rule: format!("needs get, list and watch on {resource} in namespace {namespace} ({hint})"),
        },
        Some(status) if status.code == 401 => {
            WatchProblem::Other("unauthorized: the credentials were rejected; refresh them (kubectl login)".into())
        }
        Some(status) => WatchProblem::Other(greet_proto::sanitize::sanitize_truncated(
            &format!("API server answered {}: {}", status.code, status.message),
            200,
        )),
        None => WatchProblem::Other(match transport_cause(err) {
            Some(cause) => cause.to_owned(),
            None => greet_proto::sanitize::sanitize_truncated(&err.to_string(), 200),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> Box<kube::core::Status> {
        Box::new(kube::core::Status {
            code,
            message: message.into(),
            ..kube::core::Status::default()
        })
    }

    #[test]
    fn forbidden_names_the_missing_rule() {
        let err = watcher::Error::InitialListFailed(kube::Error::Api(status(403, "pods is forbidden")));
        let problem = describe_watch_error(&err, "pods", "default", "apply k8s/greet-top-rbac.yaml");
        assert_eq!(
            problem.to_string(),
            "forbidden: needs get, list and watch on pods in namespace default (apply k8s/greet-top-rbac.yaml)"
        );
    }

    #[test]
    fn an_api_server_restart_reads_cause_first_not_as_a_tls_fault() {
        let err = watcher::Error::WatchFailed(kube::Error::ReadEvents(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify",
        )));
        assert_eq!(
            describe_watch_error(&err, "pods", "ns", "").to_string(),
            "the API server closed the connection — restarting?"
        );
        let refused = watcher::Error::InitialListFailed(kube::Error::Service(
            "tcp connect error: Connection refused (os error 111)".into(),
        ));
        assert_eq!(
            describe_watch_error(&refused, "pods", "ns", "").to_string(),
            "the API server refuses connections — down or restarting?"
        );
        // The API server's own words are its status, not transport noise.
        let answered = watcher::Error::WatchError(status(503, "etcd: connection refused"));
        assert_eq!(
            describe_watch_error(&answered, "pods", "ns", "").to_string(),
            "API server answered 503: etcd: connection refused"
        );
    }

    #[test]
    fn other_api_errors_keep_the_servers_words_sanitized() {
        let err = watcher::Error::WatchError(status(500, "etcd\u{1b}[31m down"));
        assert_eq!(
            describe_watch_error(&err, "pods", "ns", "").to_string(),
            "API server answered 500: etcd[31m down"
        );
    }
}
