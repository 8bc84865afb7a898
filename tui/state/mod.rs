//! The dashboard's state: pure, no I/O, no wire (gRPC) types, no raw network text
//! (the edges convert and sanitise before events get here).
//!
//! - [`messages`]: what flows in ([`AppEvent`]) and out ([`Action`]).
//! - [`stats`]: counts, rates, percentiles, fairness.
//! - [`gateways`]: several gateways reconciled into one view.
//! - [`diagnosis`]: the verdict line, in words.
//! - [`order`]: the rows' order, stable between frames; [`filter`]: `/`.
//! - [`keys`]: the key-binding table.
//! - [`app`]: [`App`], which ties them together.

pub mod app;
pub mod diagnosis;
pub mod filter;
pub mod gateways;
pub mod keys;
pub mod messages;
pub mod order;
pub mod stats;

pub use app::{App, Message};
pub use diagnosis::{Diagnosis, Severity, Verdict, diagnose};
pub use gateways::{Connection, GatewayView, PodSourceKind, Refusal};
pub use messages::{
    Action, AppEvent, GatewayEvent, Gauges, KubeStatus, LoadState, PodInfo, PodTotals, Request, Snapshot, WatchState,
};
pub use stats::{PodStats, Stats, TailEntry};

#[cfg(test)]
pub(crate) mod test_events;
