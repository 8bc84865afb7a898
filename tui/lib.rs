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
//! `cli` parses the flags and wires these together; `report` is the `--once` output.

pub mod cli;
pub mod controls;
pub mod demo_controller;
pub mod kube_source;
pub mod load;
pub mod network_text;
pub mod observer_client;
pub mod once;
pub mod report;
pub mod state;
pub mod terminal;
pub mod ui;
