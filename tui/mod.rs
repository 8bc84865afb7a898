//! greet-top: the live dashboard, and the embedded demo that needs no cluster.
//!
//! ```text
//! gateway stream ─┐                                    ┌─► ui::render(&App, frame)   (pure)
//! pod source ─────┼─► mpsc<AppEvent> ─► drained each ──┤
//! load generator ─┘    frame               App::update (pure) ── App::on_key ─► Action ─► controls
//! ```

pub mod app;
pub mod cli;
pub mod demo;
pub mod gateway_stream;
pub mod kube_source;
pub mod load;
pub mod report;
pub mod rest_client;
pub mod run;
pub mod ui;
