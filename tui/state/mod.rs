//! The dashboard's state: pure, no I/O, no wire (gRPC) types, no raw network text
//! (the edges convert and sanitise before events get here).
//!
//! - `messages`: what flows in ([`AppEvent`]) and out ([`Action`]).
//! - `stats`: counts, rates, percentiles, fairness.
//! - `gateways`: several gateways reconciled into one view.
//! - `diagnosis`: the verdict line, in words.
//! - `order`: the rows' order, stable between frames; `filter`: `/`.
//! - [`keys`]: the key-binding table.
//! - `app`: [`App`], which ties them together.

pub(crate) mod app;
pub(crate) mod beside;
pub(crate) mod diagnosis;
pub(crate) mod filter;
pub(crate) mod gateways;
pub mod keys;
pub(crate) mod messages;
pub(crate) mod order;
pub(crate) mod stats;
mod views;

// What the tests and the binary drive the model with; the rest is the
// crate's own.
pub use app::App;
pub use gateways::{Connection, Refusal};
pub use messages::{Action, AppEvent, DiscoveryStatus, GatewayEvent, KubeStatus, LoadState, PodInfo, WatchState};
pub use views::{POD_METRICS, Shown, Views};

pub(crate) use diagnosis::{Diagnosis, Severity, Verdict, diagnose};
pub(crate) use messages::{Gauges, PodTotals, Request, Snapshot};
pub(crate) use stats::{PodStats, Stats, TailEntry};

#[cfg(test)]
pub(crate) mod test_events;
