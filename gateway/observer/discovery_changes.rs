//! Discovery's state reaches Observer subscribers with the endpoint set:
//! when discovery starts failing, its error changes, or it recovers, the
//! set is published again, so a dashboard says "stale" while nothing else
//! changes.

use std::sync::Weak;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Gateway;

/// Publishes the endpoints (with discovery's state) on every change of
/// `changes`, until `shutdown` or the gateway is gone.
pub(crate) async fn publish_discovery_changes(
    gateway: Weak<Gateway>,
    mut changes: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = changes.changed() => {
                let Ok(()) = changed else { return };
            }
        }
        let Some(gateway) = gateway.upgrade() else { return };
        gateway.upstream.publish_endpoints();
    }
}
