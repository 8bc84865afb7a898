//! `--once`: observe without a terminal for a while, then print the report.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::report::{self, OutputFormat};
use super::state::{App, AppEvent};

/// Folds events into `app` for `duration`, without a terminal. Fails if the
/// gateway never answered.
pub async fn observe_for(
    app: &mut App,
    events: &mut mpsc::Receiver<AppEvent>,
    duration: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + duration;
    let mut last_error = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            event = events.recv() => match event {
                Some(event) => {
                    if let AppEvent::Disconnected { error, .. } = &event {
                        last_error = Some(error.clone());
                    }
                    app.update(event, Instant::now());
                }
                None => break,
            }
        }
    }
    if !app.synced() {
        anyhow::bail!(
            "could not reach the gateway's Observer at {} within {:?}: {}",
            app.title(),
            duration,
            last_error.unwrap_or_else(|| "no answer".into())
        );
    }
    Ok(())
}

/// `demo --once`: counts from the gateway's first snapshot, then starts the
/// load (`start_load`), so the window holds whole requests only; observes
/// for `duration` and lets the requests in flight finish. Returns how long
/// the counted requests took.
pub async fn observe_demo(
    app: &mut App,
    events: &mut mpsc::Receiver<AppEvent>,
    duration: Duration,
    start_load: impl FnOnce() -> JoinHandle<()>,
) -> anyhow::Result<Duration> {
    let connected = wait_for_snapshot(app, events).await;
    let started = Instant::now();
    let load = start_load();
    let observed = match connected {
        Ok(()) => observe_for(app, events, duration).await,
        Err(err) => Err(err),
    };
    load.abort();
    // Requests already sent finish before the report is cut.
    let last = drain_in_flight(app, events).await;
    // Rates over the time the counted requests really took: the window,
    // or until the last in-flight one finished.
    let took = last.map_or(duration, |at| at.duration_since(started).max(duration));
    observed.map(|()| took)
}

/// Prints the report of what `app` counted over `observed`.
pub fn print_report(app: &App, observed: Duration, format: OutputFormat) {
    let report = report::build(app, observed);
    match format {
        OutputFormat::Json => println!("{}", report.to_json()),
        OutputFormat::Table => print!("{}", report.to_table(observed)),
    }
}

async fn wait_for_snapshot(app: &mut App, rx: &mut mpsc::Receiver<AppEvent>) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !app.synced() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) => app.update(event, Instant::now()),
            Ok(None) => anyhow::bail!("the demo stopped before its gateway answered"),
            Err(_) => anyhow::bail!("the demo gateway did not answer within 10 s"),
        }
    }
    Ok(())
}

/// Folds in what arrives until 300 ms pass quietly; returns when the last event came.
async fn drain_in_flight(app: &mut App, rx: &mut mpsc::Receiver<AppEvent>) -> Option<Instant> {
    let quiet = Duration::from_millis(300);
    let mut last = None;
    while let Ok(Some(event)) = tokio::time::timeout(quiet, rx.recv()).await {
        let now = Instant::now();
        app.update(event, now);
        last = Some(now);
    }
    last
}
