//! `--record FILE` and `--record-max SIZE`: what every source's command
//! shares to record what the dashboard (or `--once`) folds.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::record::{self, Header, Recorder, ViewsSpec};

#[derive(Args, Debug, Default)]
pub struct RecordArgs {
    /// Record everything the dashboard receives to FILE, to review it
    /// later with `greet-top replay FILE` (works with every source, the
    /// demo and --once).
    #[arg(long, value_name = "FILE", global = true)]
    pub record: Option<PathBuf>,
    /// With --record: past SIZE (e.g. 1GiB, 200MB, 5000000) FILE becomes
    /// FILE.1 (replacing an earlier one) and a new FILE starts.
    #[arg(long, value_name = "SIZE", value_parser = size, default_value = "1GiB", global = true)]
    pub record_max: u64,
}

impl RecordArgs {
    /// The recorder, started at `start` (the instant the views were built
    /// at), when `--record` asks for one.
    pub(crate) fn start(
        &self,
        sources: Vec<String>,
        views: &ViewsSpec,
        start: Instant,
    ) -> anyhow::Result<Option<Recorder>> {
        let Some(path) = &self.record else {
            return Ok(None);
        };
        let header = Header {
            greet_top: env!("CARGO_PKG_VERSION").to_owned(),
            sources,
            started_unix_ms: record::unix_ms_now(),
            part: 0,
            views: views.clone(),
        };
        Recorder::create(path, header, self.record_max, start).map(Some)
    }
}

/// `1GiB`, `200MB`, `64k`, `5000000`: bytes.
pub(crate) fn size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: give bytes, or a number with kB, MB, GB, KiB, MiB or GiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "{:?} is not a size unit: use kB, MB, GB, KiB, MiB or GiB",
                unit.trim()
            ));
        }
    };
    number
        .checked_mul(scale)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?}: the size must be above 0 and below 16 EiB"))
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_in_bytes_and_units() {
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("200MB"), Ok(200_000_000));
        assert_eq!(size("64k"), Ok(64_000));
        assert_eq!(size("5000000"), Ok(5_000_000));
        assert_eq!(
            size("0"),
            Err("\"0\": the size must be above 0 and below 16 EiB".to_owned())
        );
        assert_eq!(
            size("12 parsecs"),
            Err("\"parsecs\" is not a size unit: use kB, MB, GB, KiB, MiB or GiB".to_owned())
        );
    }
}
