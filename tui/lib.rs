//! greet-top: the live dashboard, and the embedded demo that needs no cluster.
//!
//! ```text
//!                      (edges: convert, sanitise)                 (pure: state/, ui/)
//! gateway Observer ─► observer_client ─┐
//! kube pod watch ───► kube_source ─────┤                             ┌─► ui::render(&App, frame)
//! demo pods ────────► demo::controller ┼─► mpsc<AppEvent> ─► terminal (frame loop) or once (--once)
//! load generator ───► load ────────────┘                             └─► App::update / App::tick
//!                                                  key ─► App::on_key (state::keys) ─► Action ─► controls
//! ```
//!
//! `cli` parses the flags and wires these together; `report` is the `--once` output;
//! `record` keeps what the model folds (`--record`) and plays it back (`replay`).

mod bypass_client;
pub mod cli;
pub mod controls;
mod demo_controller;
pub mod kube_source;
mod load;
mod metrics_targets;
mod network_text;
pub mod observer_client;
mod once;
mod pod_metrics_feed;
mod record;
mod report;
pub mod state;
mod terminal;
pub mod ui;

pub use demo_controller::SLOW_POD_DELAY;
/// The pods' own metrics as the dashboard's events: what `--metrics-url`
/// and the pod proxy feed it (public for whole-screen tests).
pub use pod_metrics_feed::Feed as PodMetricsFeed;
/// A synthetic recording and timed seeks, for the benchmark suite.
pub use record::bench as recording_bench;
/// A recording's start and length (`--record`), for tests and scripts.
pub use record::recorded_span;
