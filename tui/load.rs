//! The load generator: POSTs /greet to the gateway at a steady rate.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::app::LoadState;
use crate::common::http::RestClient;

/// Requests in flight at most; beyond that ticks are skipped, not queued.
const MAX_IN_FLIGHT: usize = 256;

/// Sends `POST /greet` at `control`'s rate while it says running, until `cancel`.
pub async fn run(rest: RestClient, mut control: watch::Receiver<LoadState>, cancel: CancellationToken) {
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
                    let last_name = format!("Request-{sent}");
                    tokio::spawn(async move {
                        // Outcomes are observed through the gateway's event stream.
                        let _ = rest.greet("Load", &last_name).await;
                        drop(permit);
                    });
                }
            }
        }
    }
}
