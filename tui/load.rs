//! The load generator: POSTs /greet to the gateway at a steady rate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::network_text;
use super::state::{AppEvent, LoadState};
use greet_demo::rest_client::RestClient;

/// Requests in flight at most; beyond that ticks are skipped, not queued.
const MAX_IN_FLIGHT: usize = 256;
/// A failing load target is reported at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Tells the dashboard when the load cannot reach the gateway's REST API
/// (its answers, errors included, are seen through the gateway's events).
#[derive(Clone)]
struct FailureReporter {
    events: mpsc::Sender<AppEvent>,
    last: Arc<Mutex<Option<Instant>>>,
}

impl FailureReporter {
    fn report(&self, error: &anyhow::Error) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < REPORT_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let _ = self.events.try_send(AppEvent::Notice {
            text: network_text::error(&format!("load generator: {error:#}; check --load-url")),
            error: true,
        });
    }
}

/// Sends `POST /greet` at `control`'s rate while it says running, until
/// `cancel`; failures to reach the gateway go to `events` (rate-limited).
pub(crate) async fn run(
    rest: RestClient,
    mut control: watch::Receiver<LoadState>,
    events: mpsc::Sender<AppEvent>,
    cancel: CancellationToken,
) {
    let reporter = FailureReporter {
        events,
        last: Arc::new(Mutex::new(None)),
    };
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut sent: u64 = 0;
    loop {
        let state = *control.borrow_and_update();
        if !state.running || state.rate == 0 {
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = control.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(state.rate)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = control.changed() => {
                    if changed.is_err() { return }
                    break;
                }
                _ = ticker.tick() => {
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else { continue };
                    sent += 1;
                    let rest = rest.clone();
                    let reporter = reporter.clone();
                    let last_name = format!("Request-{sent}");
                    tokio::spawn(async move {
                        // Answers, errors included, are observed through the
                        // gateway's event stream; only an unreachable gateway
                        // is reported from here.
                        if let Err(err) = rest.greet("Load", &last_name).await {
                            reporter.report(&err);
                        }
                        drop(permit);
                    });
                }
            }
        }
    }
}
