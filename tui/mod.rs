//! greet-top: the live dashboard, and the embedded demo that needs no cluster.
//!
//! ```text
//! gateway stream ─┐                                    ┌─► ui::render(&App, frame)   (pure)
//! pod source ─────┼─► mpsc<AppEvent> ─► drained each ──┤
//! load generator ─┘    frame               App::update (pure) ── App::on_key ─► Action ─► controls
//! ```

pub mod cli;
pub mod demo;
pub mod kube_source;
pub mod load;
pub mod network_text;
pub mod observer_client;
pub mod report;
pub mod rest_client;
pub mod run;
pub mod state;
pub mod ui;
