//! The client of the gateway's Observer (gateway/observer.rs): the worker
//! that follows one gateway's stream, feeding the dashboard's channel and
//! reconnecting with backoff, and the mode switch. Proto events become the
//! dashboard's own [`GatewayEvent`]s here, their text sanitised.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::network_text;
use super::state::{AppEvent, GatewayEvent, PodInfo, PodTotals, Request, Snapshot};
use crate::common::Mode;
use crate::proto::observe::observer_client::ObserverClient;
use crate::proto::observe::{self, SetModeRequest, WatchRequest, event};

/// First and largest wait between reconnection attempts.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A lazily connecting channel to the gateway's Observer port.
pub fn observer_channel(url: &str) -> anyhow::Result<Channel> {
    let url = observer_url(url);
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| anyhow::anyhow!("--gateway {url:?} is not a valid URL ({e}); use e.g. http://127.0.0.1:9092"))?;
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
/// behind, which makes the gateway mark this subscriber lagged instead of
/// slowing requests.
pub async fn follow(gateway: String, channel: Channel, tx: mpsc::Sender<AppEvent>, cancel: CancellationToken) {
    let mut backoff = BACKOFF_START;
    loop {
        let ended = tokio::select! {
            () = cancel.cancelled() => return,
            ended = watch_once(&gateway, channel.clone(), &tx, &mut backoff) => ended,
        };
        let error = match ended {
            Ended::DashboardGone => return,
            // The new subscription starts with a snapshot whose totals
            // include what this one missed.
            Ended::Lagged => continue,
            Ended::Failed(error) => error,
        };
        let disconnected = AppEvent::Disconnected {
            gateway: gateway.clone(),
            error: network_text::error(&error),
            retry_in: backoff,
        };
        if tx.send(disconnected).await.is_err() {
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
}

/// One subscription, until it ends.
async fn watch_once(gateway: &str, channel: Channel, tx: &mpsc::Sender<AppEvent>, backoff: &mut Duration) -> Ended {
    let mut client = ObserverClient::new(channel);
    let mut stream = match client.watch(WatchRequest {}).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Ended::Failed(describe(&status)),
    };
    let gateway = gateway.to_owned();
    let connected = AppEvent::Connected {
        gateway: gateway.clone(),
    };
    if tx.send(connected).await.is_err() {
        return Ended::DashboardGone;
    }
    *backoff = BACKOFF_START;
    loop {
        match stream.next().await {
            Some(Ok(event)) => {
                let Some(kind) = event.kind else { continue };
                let lagged = matches!(kind, event::Kind::Lagged(_));
                let event = AppEvent::Gateway {
                    gateway: gateway.clone(),
                    event: gateway_event(kind),
                };
                if tx.send(event).await.is_err() {
                    return Ended::DashboardGone;
                }
                if lagged {
                    return Ended::Lagged;
                }
            }
            Some(Err(status)) => return Ended::Failed(describe(&status)),
            None => return Ended::Failed("the gateway closed the stream".to_owned()),
        }
    }
}

/// The innermost cause of `err`, e.g. what the connector reported.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn describe(status: &tonic::Status) -> String {
    use std::error::Error as _;
    match status.code() {
        tonic::Code::Unavailable => match status.source().map(root_cause) {
            // A port-forward that could not open says why and what to do (RBAC).
            Some(cause) if cause.contains("port-forward") => format!("gateway unreachable: {cause}"),
            Some(cause) => format!("gateway unreachable: {cause} (is it running, or the port-forward up?)"),
            None => "gateway unreachable (is it running, or the port-forward up?)".to_owned(),
        },
        tonic::Code::Unimplemented => {
            "this address serves gRPC but not the Observer: is it the gateway's observe port (9092)?".to_owned()
        }
        _ => format!("{:?}: {}", status.code(), status.message()),
    }
}

/// Asks the gateway to switch mode; the answer is reported as [`AppEvent::ModeSet`].
pub async fn set_mode(gateway: String, channel: Channel, mode: Mode) -> AppEvent {
    let mut client = ObserverClient::new(channel);
    let request = SetModeRequest {
        mode: mode.to_proto() as i32,
    };
    let result = match tokio::time::timeout(Duration::from_secs(5), client.set_mode(request)).await {
        Err(_) => Err("the gateway did not answer within 5 s".to_owned()),
        Ok(Err(status)) => Err(describe(&status)),
        Ok(Ok(state)) => {
            Mode::from_proto(state.into_inner().mode).ok_or_else(|| "the gateway answered with no mode".to_owned())
        }
    };
    mode_set(gateway, result)
}

/// A gateway's answer to a mode switch, its error text sanitised.
pub fn mode_set(gateway: String, result: Result<Mode, String>) -> AppEvent {
    AppEvent::ModeSet {
        gateway,
        result: result.map_err(|e| network_text::error(&e)),
    }
}

/// An Observer event in the dashboard's terms, its text sanitised.
pub fn gateway_event(kind: event::Kind) -> GatewayEvent {
    match kind {
        event::Kind::Snapshot(state) => GatewayEvent::Snapshot(Snapshot {
            mode: Mode::from_proto(state.mode),
            last_seq: state.last_seq,
            endpoints: state.endpoints.iter().map(endpoint).collect(),
            pods: state
                .pods
                .iter()
                .map(|totals| PodTotals {
                    name: network_text::name(&totals.pod_name),
                    ip: pod_ip(&totals.pod_ip, &totals.endpoint),
                    requests: totals.requests,
                    errors: totals.errors,
                })
                .collect(),
        }),
        event::Kind::Request(request) => GatewayEvent::Request(Request {
            seq: request.seq,
            name: network_text::name(&request.pod_name),
            ip: pod_ip(&request.pod_ip, &request.endpoint),
            mode: Mode::from_proto(request.mode),
            latency_us: request.latency_us,
            grpc_code: request.grpc_code,
            error: network_text::error(&request.error),
        }),
        event::Kind::ModeChanged(change) => GatewayEvent::ModeChanged {
            seq: change.seq,
            mode: Mode::from_proto(change.mode),
        },
        event::Kind::EndpointsChanged(change) => GatewayEvent::EndpointsChanged {
            seq: change.seq,
            endpoints: change.endpoints.iter().map(endpoint).collect(),
        },
        event::Kind::Lagged(lagged) => GatewayEvent::Lagged {
            dropped: lagged.dropped,
        },
    }
}

/// The pod's IP: as reported, else the host of the address the gateway dialled.
fn pod_ip(ip: &str, endpoint: &str) -> String {
    if ip.is_empty() {
        network_text::host_of(endpoint)
    } else {
        network_text::name(ip)
    }
}

/// An endpoint as a listed pod, named by its IP when the gateway knows no name.
fn endpoint(e: &observe::Endpoint) -> PodInfo {
    let ip = network_text::host_of(&e.address);
    let name = if e.pod_name.is_empty() {
        ip.clone()
    } else {
        network_text::name(&e.pod_name)
    };
    PodInfo {
        name,
        ip,
        ready: e.ready,
        ..PodInfo::default()
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

    fn request(pod_name: &str, pod_ip: &str, endpoint: &str) -> event::Kind {
        event::Kind::Request(observe::RequestEvent {
            seq: 7,
            pod_name: pod_name.into(),
            pod_ip: pod_ip.into(),
            endpoint: endpoint.into(),
            mode: observe::Mode::Balanced as i32,
            latency_us: 100,
            grpc_code: 14,
            error: "bad\u{1b}[2J news".into(),
            ..observe::RequestEvent::default()
        })
    }

    #[test]
    fn requests_are_converted_with_their_text_sanitised() {
        assert_eq!(
            gateway_event(request("evil\u{1b}]0;pwned\u{7}", "10.0.0.7", "10.0.0.7:50051")),
            GatewayEvent::Request(Request {
                seq: 7,
                name: "evil]0;pwned".into(),
                ip: "10.0.0.7".into(),
                mode: Some(Mode::Balanced),
                latency_us: 100,
                grpc_code: 14,
                error: "bad[2J news".into(),
            })
        );
        let GatewayEvent::Request(long) = gateway_event(request(&"p".repeat(300), "", "")) else {
            panic!("not a request");
        };
        assert_eq!(long.name, format!("{}…", "p".repeat(network_text::MAX_NAME - 1)));
        assert_eq!(long.ip, "", "no pod address: nothing names a pod");
    }

    #[test]
    fn the_ip_comes_from_the_endpoint_address_when_pod_ip_is_empty() {
        let GatewayEvent::Request(request) = gateway_event(request("", "", "[fd00::9]:50051")) else {
            panic!("not a request");
        };
        assert_eq!(request.ip, "fd00::9");
        let snapshot = gateway_event(event::Kind::Snapshot(observe::State {
            mode: observe::Mode::Sticky as i32,
            last_seq: 3,
            endpoints: vec![observe::Endpoint {
                address: "10.0.0.9:50051".into(),
                pod_name: String::new(),
                ready: true,
            }],
            pods: vec![observe::PodTotals {
                pod_name: "pod-a".into(),
                endpoint: "10.0.0.1:50051".into(),
                requests: 5,
                errors: 1,
                ..observe::PodTotals::default()
            }],
            ..observe::State::default()
        }));
        assert_eq!(
            snapshot,
            GatewayEvent::Snapshot(Snapshot {
                mode: Some(Mode::Sticky),
                last_seq: 3,
                endpoints: vec![PodInfo {
                    name: "10.0.0.9".into(),
                    ip: "10.0.0.9".into(),
                    ready: true,
                    ..PodInfo::default()
                }],
                pods: vec![PodTotals {
                    name: "pod-a".into(),
                    ip: "10.0.0.1".into(),
                    requests: 5,
                    errors: 1,
                }],
            })
        );
    }

    #[test]
    fn unknown_modes_become_none_and_lag_is_kept() {
        let change = observe::ModeChanged {
            seq: 4,
            mode: 99,
            ..observe::ModeChanged::default()
        };
        assert_eq!(
            gateway_event(event::Kind::ModeChanged(change)),
            GatewayEvent::ModeChanged { seq: 4, mode: None }
        );
        assert_eq!(
            gateway_event(event::Kind::Lagged(observe::Lagged { dropped: 12 })),
            GatewayEvent::Lagged { dropped: 12 }
        );
        let endpoints = observe::EndpointsChanged {
            seq: 5,
            endpoints: vec![observe::Endpoint {
                address: "10.0.0.2:50051".into(),
                pod_name: "pod\u{7}-b".into(),
                ready: false,
            }],
            ..observe::EndpointsChanged::default()
        };
        assert_eq!(
            gateway_event(event::Kind::EndpointsChanged(endpoints)),
            GatewayEvent::EndpointsChanged {
                seq: 5,
                endpoints: vec![PodInfo {
                    name: "pod-b".into(),
                    ip: "10.0.0.2".into(),
                    ready: false,
                    ..PodInfo::default()
                }],
            }
        );
    }

    #[test]
    fn mode_switch_errors_are_sanitised() {
        let AppEvent::ModeSet { gateway, result } = mode_set("gw".into(), Err("gateway unreachable\u{1b}[2J".into()))
        else {
            panic!("not a mode answer");
        };
        assert_eq!(gateway, "gw");
        assert_eq!(result, Err("gateway unreachable[2J".to_owned()));
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
