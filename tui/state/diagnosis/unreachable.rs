//! The verdict when no gateway can be read: refused (only the user can fix
//! that), not an Observer endpoint (what to change), or unreachable (for how
//! long, the cause, and whether the data shown is the last known).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::words::Words;
use super::{Diagnosis, Severity, Verdict, seconds};
use crate::state::app::App;
use crate::state::gateways::cause::fails_until_changed;
use crate::state::gateways::{Connection, GatewayView};

/// The gateways that are down, and for how long.
pub(super) fn down_gateways(views: &BTreeMap<String, GatewayView>, now: Instant) -> Vec<(&String, Duration)> {
    views
        .iter()
        .filter_map(|(name, view)| down_for(view, now).map(|d| (name, d)))
        .collect()
}

/// The verdict when every gateway is `down`; `None` while one answers.
pub(super) fn all_down(app: &App, down: &[(&String, Duration)]) -> Option<Diagnosis> {
    let views = app.gateways();
    if views.is_empty() || down.len() < views.len() {
        return None;
    }
    // Only the user can fix a refusal: it comes before "unreachable".
    if let Some((_, refusal)) = app.refused().next() {
        return Some(Diagnosis::new(Verdict::Refused, Severity::Bad, refusal.verdict()));
    }
    let longest = down.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let who = if views.len() == 1 {
        "gateway".to_owned()
    } else {
        format!("all {} gateways", views.len())
    };
    let shown = if app.synced() {
        "last known data shown"
    } else {
        "nothing received yet"
    };
    // The cause, which the connection's line may cut at the edge.
    let cause = views
        .values()
        .filter_map(|view| match &view.connection {
            Connection::Reconnecting { error, .. } => Some(error.as_str()),
            _ => None,
        })
        .max_by_key(|e| e.len())
        .filter(|e| !e.is_empty());
    if let Some(cause) = cause.filter(|cause| fails_until_changed(cause)) {
        // It answered, but not as an Observer: the cause is the news, and
        // what to change; "unreachable" would send the user to the network.
        let words = Words::new(format!("{who}: {cause}"))
            .clause(2, |w| w.text(format!(" — {shown}, for {}", seconds(longest))));
        return Some(Diagnosis::new(Verdict::Unreachable, Severity::Bad, words));
    }
    // The cause is no clause to drop on a narrow screen: it says where to
    // look. A line too long wraps in the header.
    let cause = match cause {
        // "gateway unreachable (is it running, ...)" says it once.
        Some(cause) => match cause.strip_prefix("gateway unreachable").map(str::trim) {
            Some("") => String::new(),
            Some(rest) if rest.starts_with(':') => rest.to_owned(),
            Some(rest) => format!(" {rest}"),
            None => format!(": {cause}"),
        },
        None => String::new(),
    };
    let words = Words::new(format!("{who} unreachable for {}{cause} — {shown}", seconds(longest)));
    Some(Diagnosis::new(Verdict::Unreachable, Severity::Bad, words))
}

/// How long `view`'s gateway has been unreachable or refusing, if it is.
fn down_for(view: &GatewayView, now: Instant) -> Option<Duration> {
    let down_since = view.connection.down_since()?;
    Some(now.saturating_duration_since(down_since))
}
