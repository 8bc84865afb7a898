//! Graceful shutdown, shared by greet-server and greet-gateway: on SIGTERM
//! report not-ready, give load balancers time to notice, stop accepting, and
//! wait a bounded time for in-flight requests.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How a server leaves: the order Kubernetes needs during a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainPolicy {
    /// Reported not-ready this long before new connections are refused, so
    /// endpoints and load balancers stop routing here first.
    pub delay: Duration,
    /// Then at most this long for in-flight work: a stuck client must not
    /// block a rollout.
    pub timeout: Duration,
}

/// Runs `serving` until `shutdown` completes, then drains it by `policy`:
/// `announce` (report not-ready), wait `policy.delay`, cancel `stop` (the
/// server stops accepting and finishes what it has), and wait at most
/// `policy.timeout` for `serving` to end. `what` names the server in logs.
pub async fn serve_until_drained(
    what: &str,
    serving: impl Future<Output = anyhow::Result<()>>,
    shutdown: impl Future<Output = ()>,
    announce: impl Future<Output = ()>,
    stop: CancellationToken,
    policy: DrainPolicy,
) -> anyhow::Result<()> {
    tokio::pin!(serving);
    tokio::select! {
        // It stopped by itself: a server error, or `stop` cancelled elsewhere.
        result = &mut serving => return result,
        () = shutdown => {}
    }
    tracing::info!(delay = ?policy.delay, "{what} shutting down: reporting not ready, then finishing in-flight requests");
    announce.await;
    tokio::time::sleep(policy.delay).await;
    stop.cancel();
    match tokio::time::timeout(policy.timeout, serving).await {
        Ok(result) => {
            tracing::info!("{what} drained; exiting");
            result
        }
        Err(_) => {
            tracing::warn!(
                "{what}: connections still open {:?} after it stopped accepting; exiting anyway",
                policy.timeout
            );
            Ok(())
        }
    }
}

/// Completes on SIGINT or SIGTERM (Kubernetes sends SIGTERM before killing a pod).
/// The handlers are installed when this is called, not when the future is
/// first polled: a SIGTERM that arrives while the process starts up (before
/// it serves) must drain it, not kill it with the default action.
pub fn termination_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(signal) => Some(signal),
            Err(err) => {
                tracing::warn!("cannot listen for {name}: {err}");
                None
            }
        };
        let wait = |signal: Option<Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let (terminate, interrupt) = (
            wait(listen(SignalKind::terminate(), "SIGTERM")),
            wait(listen(SignalKind::interrupt(), "SIGINT")),
        );
        async move {
            tokio::select! {
                () = terminate => {}
                () = interrupt => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    const POLICY: DrainPolicy = DrainPolicy {
        delay: Duration::from_secs(5),
        timeout: Duration::from_secs(20),
    };

    /// A server that ends `finish_after` after `stop` is cancelled, and
    /// checks it was announced not-ready before that.
    fn server(
        stop: &CancellationToken,
        announced: &Arc<AtomicBool>,
        finish_after: Duration,
    ) -> impl Future<Output = anyhow::Result<()>> + use<> {
        let (stop, announced) = (stop.clone(), Arc::clone(announced));
        async move {
            stop.cancelled().await;
            anyhow::ensure!(
                announced.load(Ordering::SeqCst),
                "stopped before not-ready was announced"
            );
            tokio::time::sleep(finish_after).await;
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn announces_waits_the_delay_then_stops_and_drains() {
        let stop = CancellationToken::new();
        let announced = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&announced);
        let started = tokio::time::Instant::now();
        let result = serve_until_drained(
            "test",
            server(&stop, &announced, Duration::from_secs(3)),
            std::future::ready(()),
            async move { flag.store(true, Ordering::SeqCst) },
            stop.clone(),
            POLICY,
        )
        .await;
        result.unwrap();
        assert!(stop.is_cancelled());
        // The delay, then the 3 s the in-flight work took.
        assert_eq!(started.elapsed(), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_drain_timeout() {
        let stop = CancellationToken::new();
        let announced = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&announced);
        let started = tokio::time::Instant::now();
        serve_until_drained(
            "test",
            server(&stop, &announced, Duration::from_secs(3600)),
            std::future::ready(()),
            async move { flag.store(true, Ordering::SeqCst) },
            stop,
            POLICY,
        )
        .await
        .unwrap();
        assert_eq!(started.elapsed(), POLICY.delay + POLICY.timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_fails_on_its_own_returns_its_error_at_once() {
        let started = tokio::time::Instant::now();
        let error = serve_until_drained(
            "test",
            async { anyhow::bail!("port in use") },
            std::future::pending(),
            async { panic!("nothing to announce") },
            CancellationToken::new(),
            POLICY,
        )
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "port in use");
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
