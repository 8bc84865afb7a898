//! A recording is input from disk: whatever wrote it, its text goes through
//! the same sanitiser as the network's before the model sees it. By hand,
//! field by field: serde has no hook for "every string", and a field missed
//! here is one the tests of this file would show.

use crossterm::event::{KeyCode, KeyEvent};
use greet_proto::sanitize::sanitize;

use super::format::{AppSpec, Header, ViewsSpec, What};
use crate::state::{AppEvent, GatewayEvent, KubeStatus, PodInfo, PodTotals, Request, WatchState};

fn clean(text: &mut String) {
    if let std::borrow::Cow::Owned(clean) = sanitize(text) {
        *text = clean;
    }
}

fn clean_opt(text: &mut Option<String>) {
    if let Some(text) = text {
        clean(text);
    }
}

/// The latest start a header may claim (the year 8000): later wall-clock
/// times do not format.
const LATEST_START_UNIX_MS: i64 = 190_000_000_000_000;

pub(crate) fn header(header: &mut Header) {
    header.started_unix_ms = header.started_unix_ms.clamp(0, LATEST_START_UNIX_MS);
    clean(&mut header.greet_top);
    header.sources.iter_mut().for_each(clean);
    match &mut header.views {
        ViewsSpec::Single(app) => app_spec(app),
        ViewsSpec::Paired(gateway, pods) => {
            app_spec(gateway);
            app_spec(pods);
        }
    }
}

fn app_spec(spec: &mut AppSpec) {
    clean(&mut spec.title);
    clean_opt(&mut spec.expecting);
}

/// `None`: a key no keyboard sends as typed text (a control character),
/// dropped rather than typed into the filter.
pub(crate) fn what(what: What) -> Option<What> {
    match what {
        What::Event(mut event) => {
            event_text(&mut event);
            Some(What::Event(event))
        }
        What::Key(KeyEvent {
            code: KeyCode::Char(c), ..
        }) if c.is_control() => None,
        other => Some(other),
    }
}

fn event_text(event: &mut AppEvent) {
    match event {
        AppEvent::Connected { gateway } | AppEvent::GatewayRemoved { gateway } => clean(gateway),
        AppEvent::Disconnected { gateway, error, .. } => {
            clean(gateway);
            clean(error);
        }
        AppEvent::Refused { gateway, .. } => clean(gateway),
        AppEvent::Gateway { gateway, event } => {
            clean(gateway);
            gateway_event(event);
        }
        AppEvent::Pods(pods) => pods.iter_mut().for_each(pod_info),
        AppEvent::Kube(status) => kube(status),
        AppEvent::ModeSet { gateway, result } => {
            clean(gateway);
            if let Err(error) = result {
                clean(error);
            }
        }
        AppEvent::Notice { text, .. } => clean(text),
        AppEvent::Load(_) | AppEvent::ConnectionAge(_) => {}
    }
}

fn gateway_event(event: &mut GatewayEvent) {
    match event {
        GatewayEvent::Snapshot(snapshot) => {
            snapshot.endpoints.iter_mut().for_each(pod_info);
            snapshot.pods.iter_mut().for_each(pod_totals);
            clean(&mut snapshot.sticky_target);
        }
        GatewayEvent::Request(request) | GatewayEvent::Sample(request) => self::request(request),
        GatewayEvent::Summary(pods) => pods.iter_mut().for_each(pod_totals),
        GatewayEvent::EndpointsChanged { endpoints, .. } => endpoints.iter_mut().for_each(pod_info),
        GatewayEvent::Discovery(status) => {
            clean(&mut status.source);
            clean(&mut status.last_error);
        }
        GatewayEvent::ModeChanged { .. } | GatewayEvent::Lagged { .. } => {}
    }
}

fn pod_info(pod: &mut PodInfo) {
    clean(&mut pod.name);
    clean(&mut pod.ip);
    clean(&mut pod.endpoint);
    clean_opt(&mut pod.skipped);
    clean_opt(&mut pod.down);
    clean_opt(&mut pod.phase);
    clean_opt(&mut pod.node);
    clean_opt(&mut pod.metrics_family);
}

fn pod_totals(pod: &mut PodTotals) {
    clean(&mut pod.name);
    clean(&mut pod.ip);
    clean(&mut pod.endpoint);
    if pod
        .methods
        .keys()
        .any(|m| matches!(sanitize(m), std::borrow::Cow::Owned(_)))
    {
        pod.methods = std::mem::take(&mut pod.methods)
            .into_iter()
            .map(|(method, n)| (sanitize(&method).into_owned(), n))
            .collect();
    }
}

fn request(request: &mut Request) {
    clean(&mut request.name);
    clean(&mut request.ip);
    clean(&mut request.endpoint);
    clean(&mut request.error);
}

fn kube(status: &mut KubeStatus) {
    clean(&mut status.context);
    clean(&mut status.namespace);
    if let WatchState::Retrying(text) | WatchState::Forbidden(text) = &mut status.watch {
        clean(text);
    }
}
