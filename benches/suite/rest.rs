//! Item 3: the gateway's REST path, sticky and balanced, driven by wrk
//! (-c32 -t2) with the article's JSON body. One gateway process serves both
//! modes (switched with PUT /mode), so the two differ in the mode alone.

use std::path::Path;
use std::time::Duration;

use anyhow::ensure;
use greet_top::common::Mode;

use super::loadgen::{self, WrkResult};
use super::procs::Gateway;

pub async fn run(gateway: &Gateway, mode: Mode, duration: Duration, script: &Path) -> anyhow::Result<WrkResult> {
    let response = gateway.rest.set_mode(mode).await?;
    ensure!(response.status == 200, "PUT /mode {mode}: {}", response.body);
    loadgen::wrk(&gateway.rest_url, duration, script).await
}
