//! The client of the gateway's Observer (gateway/observer.rs): the worker
//! that follows one gateway's stream, feeding the dashboard's channel and
//! reconnecting with backoff, and the mode switch. Proto events become the
//! dashboard's own [`GatewayEvent`](crate::state::GatewayEvent)s here, their text sanitised.

mod convert;
mod describe;
mod link;
mod tls;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

pub use self::convert::{MAX_PODS, discovery_event, gateway_event, mode_set};
use self::describe::describe;
pub use self::link::{GatewayLink, MAX_MESSAGE_BYTES};
pub use self::tls::{Verify, https_connector, rest_client};
use super::network_text;
use super::state::{AppEvent, Refusal};
pub use crate::state::gateways::cause::fails_until_changed;
use greet_proto::Mode;
use greet_proto::observe::{GetStateRequest, SetModeRequest, State, WatchRequest, event};

/// First and largest wait between reconnection attempts.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A subscription that lasted this long was healthy: the next failure
/// retries after [`BACKOFF_START`] again. One that fails sooner (a gateway
/// that accepts, then sends garbage or too much) keeps backing off.
const HEALTHY_FOR: Duration = BACKOFF_MAX;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a summary subscription gets the gateway's counters: often
/// enough for smooth rates, rarely enough to cost nothing at any request rate.
pub const SUMMARY_INTERVAL: Duration = Duration::from_millis(250);
/// Sampled requests per second for the tail (a screen shows a dozen).
pub const SAMPLE_PER_SECOND: u32 = 20;

/// What a subscription asks the gateway for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subscription {
    /// A summary every [`SUMMARY_INTERVAL`] and [`SAMPLE_PER_SECOND`] sampled
    /// requests: exact counts at a cost that does not grow with the rate.
    Summaries,
    /// Every request as an event (`--raw-events`): costs the gateway and
    /// greet-top work per request, and a view that falls behind resubscribes.
    Raw,
}

impl Subscription {
    fn request(self) -> WatchRequest {
        match self {
            Subscription::Summaries => WatchRequest {
                summary_interval_ms: SUMMARY_INTERVAL.as_millis() as u32,
                sample_per_second: SAMPLE_PER_SECOND,
            },
            Subscription::Raw => WatchRequest::default(),
        }
    }
}

/// A lazily connecting channel to the gateway's Observer port; TLS for an
/// `https://` URL, checked against the system's roots.
pub fn observer_channel(url: &str) -> anyhow::Result<Channel> {
    observer_channel_with(url, Verify::SystemRoots)
}

/// [`observer_channel`], with `verify` for an `https://` URL's certificate.
pub fn observer_channel_with(url: &str, verify: Verify) -> anyhow::Result<Channel> {
    let url = observer_url(url);
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| anyhow::anyhow!("--gateway {url:?} is not a valid URL ({e}); use e.g. http://127.0.0.1:9092"))?;
    let endpoint = tls::secure(endpoint, verify)?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy())
}

/// `url` with `http://` added when it names no scheme (`127.0.0.1:9092`).
fn observer_url(url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// The next backoff after `current`: doubled, capped.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_MAX)
}

/// Follows the Observer stream of the gateway called `gateway` until
/// `cancel`; every event goes to `tx`. Sending waits when the dashboard is
/// behind: a summary subscription then gets the latest summary, which counts
/// everything; a raw one is marked lagged instead of slowing requests.
pub async fn follow(
    gateway: String,
    link: impl Into<GatewayLink>,
    subscription: Subscription,
    tx: mpsc::Sender<AppEvent>,
    cancel: CancellationToken,
) {
    let link = link.into();
    let mut backoff = BACKOFF_START;
    loop {
        let started = tokio::time::Instant::now();
        let ended = tokio::select! {
            () = cancel.cancelled() => return,
            ended = watch_once(&gateway, &link, subscription, &tx) => ended,
        };
        if started.elapsed() >= HEALTHY_FOR {
            backoff = BACKOFF_START;
        }
        let down = match ended {
            Ended::DashboardGone => return,
            // The new subscription starts with a snapshot whose totals
            // include what this one missed.
            Ended::Lagged => continue,
            Ended::Failed(error) => AppEvent::Disconnected {
                gateway: gateway.clone(),
                error: network_text::error(&error),
                retry_in: backoff,
            },
            // Retried on the same backoff: the gateway's token may change.
            Ended::Refused(refusal) => AppEvent::Refused {
                gateway: gateway.clone(),
                refusal,
                retry_in: backoff,
            },
        };
        if tx.send(down).await.is_err() {
            return;
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = next_backoff(backoff);
    }
}

/// How one subscription ended.
enum Ended {
    /// The dashboard's channel is closed: stop.
    DashboardGone,
    /// The gateway dropped events for us: resubscribe at once.
    Lagged,
    /// Why the stream failed: retry after a backoff.
    Failed(String),
    /// The gateway refused greet-top's token (or its lack of one).
    Refused(Refusal),
}

/// One subscription, until it ends.
async fn watch_once(
    gateway: &str,
    link: &GatewayLink,
    subscription: Subscription,
    tx: &mpsc::Sender<AppEvent>,
) -> Ended {
    let failed = |status: &tonic::Status| match link.refusal(status) {
        Some(refusal) => Ended::Refused(refusal),
        None => Ended::Failed(describe(status)),
    };
    let mut stream = match link.client().watch(subscription.request()).await {
        Ok(response) => response.into_inner(),
        Err(status) => return failed(&status),
    };
    let gateway = gateway.to_owned();
    // Connected once the first message arrives, not with the response's
    // headers: a server that answers every path (a REST port's 404) fails
    // on its body, and must read as down all along, not as up for a moment.
    let mut connected = false;
    loop {
        match stream.next().await {
            Some(Ok(event)) => {
                if !connected {
                    connected = true;
                    let up = AppEvent::Connected {
                        gateway: gateway.clone(),
                    };
                    if tx.send(up).await.is_err() {
                        return Ended::DashboardGone;
                    }
                }
                let Some(kind) = event.kind else { continue };
                let lagged = matches!(kind, event::Kind::Lagged(_));
                let discovery = discovery_event(&kind);
                let event = AppEvent::Gateway {
                    gateway: gateway.clone(),
                    event: gateway_event(kind, subscription == Subscription::Summaries),
                };
                if tx.send(event).await.is_err() {
                    return Ended::DashboardGone;
                }
                if let Some(event) = discovery {
                    let event = AppEvent::Gateway {
                        gateway: gateway.clone(),
                        event,
                    };
                    if tx.send(event).await.is_err() {
                        return Ended::DashboardGone;
                    }
                }
                if lagged {
                    return Ended::Lagged;
                }
            }
            Some(Err(status)) => return failed(&status),
            None => return Ended::Failed("the gateway closed the stream".to_owned()),
        }
    }
}

/// The gateway's totals now, as a snapshot event: what `--once` ends with,
/// so its counts are exact whatever the last summary missed. `None` when
/// the gateway does not answer within 5 s.
pub async fn final_state(gateway: String, link: GatewayLink) -> Option<AppEvent> {
    let mut client = link.client();
    let call = client.get_state(GetStateRequest::default());
    let state = tokio::time::timeout(Duration::from_secs(5), call).await.ok()?.ok()?;
    Some(AppEvent::Gateway {
        gateway,
        event: gateway_event(event::Kind::Snapshot(state.into_inner()), false),
    })
}

/// Asks the gateway to switch mode; the answer is reported as [`AppEvent::ModeSet`].
pub async fn set_mode(gateway: String, link: GatewayLink, mode: Mode) -> AppEvent {
    let result = switch_mode(&link, mode)
        .await
        .and_then(|state| Mode::from_proto(state.mode).ok_or_else(|| "the gateway answered with no mode".to_owned()));
    mode_set(gateway, result)
}

/// Switches the gateway to `mode`: its state after the switch, or why not
/// (its words, not yet sanitised).
pub async fn switch_mode(link: &GatewayLink, mode: Mode) -> Result<State, String> {
    let request = SetModeRequest {
        mode: mode.to_proto() as i32,
    };
    answer(link, link.client().set_mode(request)).await
}

/// The gateway's state now, or why not (as [`switch_mode`]).
pub async fn current_state(link: &GatewayLink) -> Result<State, String> {
    answer(link, link.client().get_state(GetStateRequest::default())).await
}

/// A unary call's answer within 5 s, or why not: a refusal, else the failure described.
async fn answer<T>(
    link: &GatewayLink,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Err(_) => Err("the gateway did not answer within 5 s".to_owned()),
        Ok(Err(status)) => Err(match link.refusal(&status) {
            Some(refusal) => refusal.to_string(),
            None => describe(&status),
        }),
        Ok(Ok(answer)) => Ok(answer.into_inner()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = BACKOFF_START;
        let mut seen = vec![b];
        for _ in 0..6 {
            b = next_backoff(b);
            seen.push(b);
        }
        assert_eq!(
            seen.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
            [250, 500, 1000, 2000, 4000, 5000, 5000]
        );
    }

    #[test]
    fn urls_without_scheme_get_http() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(observer_channel("127.0.0.1:9092").is_ok());
            assert_eq!(observer_url("127.0.0.1:9092"), "http://127.0.0.1:9092");
            assert_eq!(observer_url("https://gw:9092"), "https://gw:9092");
            let err = observer_channel("http://bad host:1").unwrap_err();
            assert!(err.to_string().contains("is not a valid URL"), "{err}");
        });
    }
}
