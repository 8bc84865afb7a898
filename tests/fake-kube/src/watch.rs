//! Watches: history replay, live changes, bookmarks, 410 Expired.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::BOOKMARK_INTERVAL;
use crate::query::Params;
use crate::request::{Target, forbidden, matching, status_object};
use crate::store::{Change, ChangeType, Kind, Shared};

fn event_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark_line(kind: Kind, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": metadata}),
    )
}

/// How a change looks through a watch's filter, if at all.
fn render(change: &Change, target: &Target, params: &Params) -> Option<Bytes> {
    if !target.contains(change.kind, &change.namespace) {
        return None;
    }
    let was = change
        .previous
        .as_deref()
        .is_some_and(|previous| params.matches(previous));
    let event_type = match change.change {
        ChangeType::Deleted => was.then_some("DELETED")?,
        ChangeType::Added | ChangeType::Modified => match (was, params.matches(&change.object)) {
            (true, true) => "MODIFIED",
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return None,
        },
    };
    Some(event_line(event_type, &change.object))
}

pub(crate) fn watch(shared: &Arc<Shared>, target: Target, params: Params) -> Response {
    let mut inner = shared.lock();
    inner.watch_count += 1;
    if inner.forbidden.contains(&target.kind) {
        return forbidden(target.kind, "watch", target.namespace.as_deref());
    }
    let mut first: Vec<Bytes> = Vec::new();
    let mut end_after_first = false;
    match params.resource_version {
        Some(rv) if rv != 0 && rv < inner.expired_below => {
            let status = status_object(
                410,
                "Expired",
                &format!("too old resource version: {rv} ({})", inner.expired_below),
                None,
            );
            first.push(event_line("ERROR", &status));
            end_after_first = true;
        }
        Some(rv) if rv != 0 && !params.send_initial_events => {
            first.extend(
                inner
                    .history
                    .iter()
                    .filter(|change| change.rv > rv)
                    .filter_map(|change| render(change, &target, &params)),
            );
        }
        _ => {
            // "Any" resourceVersion, or a streaming list: the current state as ADDED events.
            first.extend(matching(&inner, &target, &params).map(|object| event_line("ADDED", object)));
            if params.send_initial_events {
                first.push(bookmark_line(target.kind, inner.rv, true));
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let watch = LiveWatch {
        tx,
        changes: shared.changes.subscribe(),
        position: inner.rv,
        target,
        params,
        dropped: inner.drop_token.clone(),
        shutdown: shared.shutdown.clone(),
    };
    drop(inner);
    tokio::spawn(watch.run(first, end_after_first));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}

/// The task behind one watch response.
struct LiveWatch {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    changes: broadcast::Receiver<Arc<Change>>,
    /// Every change up to here has been sent or filtered out: what a bookmark may claim.
    position: u64,
    target: Target,
    params: Params,
    dropped: CancellationToken,
    shutdown: CancellationToken,
}

impl LiveWatch {
    async fn run(mut self, first: Vec<Bytes>, end_after_first: bool) {
        for line in first {
            if self.tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        if end_after_first {
            return;
        }
        let deadline = tokio::time::sleep(self.params.timeout);
        tokio::pin!(deadline);
        let mut bookmarks =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_INTERVAL, BOOKMARK_INTERVAL);
        bookmarks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let line = tokio::select! {
                biased;
                () = self.dropped.cancelled() => {
                    // An error from the body stream makes hyper abort the connection mid-body.
                    let _ = self.tx.send(Err(std::io::Error::other("fake kube: watch dropped"))).await;
                    return;
                }
                () = self.shutdown.cancelled() => return,
                () = &mut deadline => return,
                () = self.tx.closed() => return,
                change = self.changes.recv() => match change {
                    Ok(change) => {
                        self.position = change.rv;
                        match render(&change, &self.target, &self.params) {
                            Some(line) => line,
                            None => continue,
                        }
                    }
                    // Fell behind, or the server is going away: end cleanly, the client resumes.
                    Err(_) => return,
                },
                _ = bookmarks.tick(), if self.params.bookmarks => bookmark_line(self.target.kind, self.position, false),
            };
            if self.tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
    }
}
