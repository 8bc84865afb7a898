//! `--once`: observe without a terminal for a while, then print the report.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::observer_client::{self, GatewayLink, Subscription};
use super::record::Recorder;
use super::report::{self, FailOn, FailOnMatched, OutputFormat};
use super::state::{App, AppEvent, GatewayEvent, POD_METRICS};

/// The app `--once` counts with, and the recorder (`--record`) that keeps
/// every event it folds, at the instant it folds it.
pub(crate) struct OnceApp {
    app: App,
    recorder: Option<Recorder>,
}

impl OnceApp {
    pub(crate) fn new(app: App, recorder: Option<Recorder>) -> Self {
        OnceApp { app, recorder }
    }

    pub(crate) fn update(&mut self, event: AppEvent, now: Instant) {
        if let Some(recorder) = &self.recorder {
            recorder.event(&event, now);
        }
        self.app.update(event, now);
    }

    /// Writes what is left of the recording; its failure, if it had one.
    fn finish_recording(&mut self) -> anyhow::Result<()> {
        match self.recorder.take() {
            Some(recorder) => recorder.finish(),
            None => Ok(()),
        }
    }
}

impl std::ops::Deref for OnceApp {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

/// Folds events into `app` for `duration`, without a terminal. Fails if the
/// gateway never answered.
pub(crate) async fn observe_for(
    app: &mut OnceApp,
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
                    let mut lasting = false;
                    if let AppEvent::Disconnected { error, .. } = &event {
                        last_error = Some(error.clone());
                        lasting = observer_client::fails_until_changed(error);
                    }
                    app.update(event, Instant::now());
                    // One gateway, which no retry will make answer: say so now.
                    if lasting && !app.synced() && app.gateways().len() == 1 {
                        break;
                    }
                }
                None => break,
            }
        }
    }
    if !app.synced() {
        if let Some((_, refusal)) = app.refused().next() {
            anyhow::bail!(
                "the gateway's Observer at {} refused greet-top: {}",
                app.title(),
                refusal.reason()
            );
        }
        let error = last_error.unwrap_or_else(|| "no answer".into());
        // Reached, but something else answered: say what the address is.
        if error.starts_with("not an Observer endpoint") {
            anyhow::bail!("{} is {error}", app.title());
        }
        if observer_client::fails_until_changed(&error) {
            anyhow::bail!("cannot follow the gateway's Observer at {}: {error}", app.title());
        }
        anyhow::bail!(
            "could not reach the gateway's Observer at {} within {:?}: {error}",
            app.title(),
            duration,
        );
    }
    Ok(())
}

/// `--once` on the pods' own metrics: waits for the first scrape of every
/// pod (at most [`FIRST_SCRAPE_WAIT`]), counts from there for `duration`
/// (said on stderr, so a caller knows when counting starts), then takes
/// one more round so the counts end exactly.
pub(crate) async fn observe_pod_metrics(
    app: &mut OnceApp,
    events: &mut mpsc::Receiver<AppEvent>,
    duration: Duration,
    scrape_interval: Duration,
) -> anyhow::Result<()> {
    let give_up = tokio::time::Instant::now() + FIRST_SCRAPE_WAIT;
    while !app.synced() {
        match tokio::time::timeout_at(give_up, events.recv()).await {
            Ok(Some(event)) => app.update(event, Instant::now()),
            Ok(None) | Err(_) => anyhow::bail!(
                "no scrape of the pods' metrics finished within {FIRST_SCRAPE_WAIT:?}: \
                 are the pod selector and namespace, or --metrics-url, right?"
            ),
        }
    }
    let pods = app.stats().pods.len();
    greet_runtime::say(format_args!(
        "greet-top: counting from the first scrape of {pods} pods, for {duration:?}"
    ));
    let deadline = tokio::time::Instant::now() + duration;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        app.update(event, Instant::now());
    }
    // The round after the window ends the count (cumulative, like a summary).
    let give_up = tokio::time::Instant::now() + scrape_interval * 2 + Duration::from_millis(500);
    while let Ok(Some(event)) = tokio::time::timeout_at(give_up, events.recv()).await {
        let last =
            matches!(&event, AppEvent::Gateway { gateway, event: GatewayEvent::Summary(_) } if gateway == POD_METRICS);
        app.update(event, Instant::now());
        if last {
            break;
        }
    }
    Ok(())
}

/// How long `--once` on the pods' metrics waits for their first scrape:
/// longer than the feed waits for a pod that never answers.
const FIRST_SCRAPE_WAIT: Duration = Duration::from_secs(15);

/// Ends the count exactly. A summary is cumulative and names failures by
/// gRPC code, so each gateway's next summary (within a second) ends its
/// count; a gateway that sends none in time (or a raw subscription, which
/// has none) gets a `GetState`, whose totals are exact but name no codes,
/// so its last failures would count in `errors` but not in `client_errors`.
/// A gateway that does not answer keeps its last counts.
pub(crate) async fn settle(
    app: &mut OnceApp,
    events: &mut mpsc::Receiver<AppEvent>,
    gateways: impl IntoIterator<Item = (String, GatewayLink)>,
    subscription: Subscription,
) {
    let gateways: Vec<(String, GatewayLink)> = gateways.into_iter().collect();
    let mut waiting: BTreeSet<String> = gateways.iter().map(|(name, _)| name.clone()).collect();
    if subscription == Subscription::Summaries {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(1);
        while !waiting.is_empty() {
            let Ok(Some(event)) = tokio::time::timeout_at(give_up, events.recv()).await else {
                break;
            };
            if let AppEvent::Gateway {
                gateway,
                event: GatewayEvent::Summary(_),
            } = &event
            {
                waiting.remove(gateway);
            }
            app.update(event, Instant::now());
        }
    }
    for (gateway, link) in gateways {
        if !waiting.contains(&gateway) {
            continue;
        }
        if let Some(event) = observer_client::final_state(gateway, link).await {
            app.update(event, Instant::now());
        }
    }
}

/// `demo --once`: counts from the gateway's first snapshot, then starts the
/// load (`start_load`), so the window holds whole requests only; observes
/// for `duration`, lets the requests in flight finish and settles the
/// counts with `gateway`. Returns how long the load ran.
pub(crate) async fn observe_demo(
    app: &mut OnceApp,
    events: &mut mpsc::Receiver<AppEvent>,
    duration: Duration,
    start_load: impl FnOnce() -> JoinHandle<()>,
    gateway: (String, GatewayLink),
    subscription: Subscription,
) -> anyhow::Result<Duration> {
    let connected = wait_for_snapshot(app, events).await;
    let started = Instant::now();
    let load = start_load();
    let observed = match connected {
        Ok(()) => observe_for(app, events, duration).await,
        Err(err) => Err(err),
    };
    load.abort();
    let took = started.elapsed();
    // Requests already sent finish before the report is cut.
    drain_in_flight(app, events).await;
    settle(app, events, [gateway], subscription).await;
    observed.map(|()| took)
}

/// Prints the report of what `app` counted over `observed`; then the first
/// of `fail_on` (`--fail-on`) that holds, as an error the binary turns into
/// exit status 3.
pub(crate) fn print_report(
    app: &mut OnceApp,
    observed: Duration,
    format: OutputFormat,
    fail_on: &[FailOn],
) -> anyhow::Result<()> {
    let now = Instant::now();
    if let Some(recorder) = &app.recorder {
        recorder.reported(observed, now);
    }
    app.finish_recording()?;
    print_built(
        &report::build_at(app, observed, now, SystemTime::now()),
        observed,
        format,
        fail_on,
    )
}

/// Writes `text` (`what` it is) to stdout. A reader that went away
/// (`| head`) has what it wanted: not an error. Any other failure is said
/// plainly, not a panic.
pub(crate) fn write_stdout(what: &str, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::anyhow!(
            "could not write {what} to stdout: {err} — check where stdout is redirected"
        )),
        _ => Ok(()),
    }
}

/// Prints `report` (over `observed`), then the first of `fail_on` that
/// holds, as an error the binary turns into exit status 3.
pub(crate) fn print_built(
    report: &report::Report,
    observed: Duration,
    format: OutputFormat,
    fail_on: &[FailOn],
) -> anyhow::Result<()> {
    let text = match format {
        OutputFormat::Json => format!("{}\n", report.to_json()),
        OutputFormat::Table => report.to_table(observed),
        OutputFormat::Markdown => report.to_markdown(observed),
    };
    write_stdout("the report", &text)?;
    match fail_on
        .iter()
        .find_map(|condition| Some((condition, condition.holds(report)?)))
    {
        Some((condition, reason)) => Err(FailOnMatched {
            condition: condition.clone(),
            reason,
        }
        .into()),
        None => Ok(()),
    }
}

async fn wait_for_snapshot(app: &mut OnceApp, rx: &mut mpsc::Receiver<AppEvent>) -> anyhow::Result<()> {
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

/// Folds in what arrives until the count stays unchanged for longer than a
/// summary interval (at most 10 s): the requests in flight have finished.
async fn drain_in_flight(app: &mut OnceApp, rx: &mut mpsc::Receiver<AppEvent>) {
    let quiet = observer_client::SUMMARY_INTERVAL + Duration::from_millis(100);
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut counted = app.stats().total();
    let mut changed = tokio::time::Instant::now();
    loop {
        let until = (changed + quiet).min(give_up);
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(event)) => {
                app.update(event, Instant::now());
                if app.stats().total() != counted {
                    counted = app.stats().total();
                    changed = tokio::time::Instant::now();
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}
