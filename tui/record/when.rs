//! Times in a recording as a user writes them (`--from`, `--to`, `g`) and
//! as the screen says them. Wall-clock times are UTC, as the replay's
//! header shows them: hand-written (a day's seconds) rather than a time
//! zone library for one format.

use std::time::{Duration, SystemTime};

const DAY_MS: i64 = 86_400_000;

/// `14:03:07`: the wall clock (UTC) `offset` after a start of `started_unix_ms`.
pub(crate) fn clock_text(started_unix_ms: i64, offset: Duration) -> String {
    let ms = started_unix_ms.saturating_add(i64::try_from(offset.as_millis()).unwrap_or(i64::MAX));
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The wall clock `offset` after the start.
pub(crate) fn wall(started_unix_ms: i64, offset: Duration) -> SystemTime {
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(started_unix_ms).unwrap_or(0));
    start + offset
}

/// `text` as an offset into a recording that started at
/// `started_unix_ms`: `+2m30s` (from the start), `14:03:07` or `14:03`
/// (UTC, the first such time at or after the start), or RFC 3339.
pub(crate) fn parse(text: &str, started_unix_ms: i64) -> Result<Duration, String> {
    let text = text.trim();
    let wrong = || {
        format!(
            "{text:?} is not a time: give HH:MM:SS (UTC, as the replay's header shows it), +offset (e.g. +2m30s) or RFC 3339"
        )
    };
    if let Some(offset) = text.strip_prefix('+') {
        return humantime::parse_duration(offset).map_err(|_| wrong());
    }
    let at_ms = if let Some(of_day) = clock(text) {
        let day = started_unix_ms - started_unix_ms.rem_euclid(DAY_MS);
        let at = day + of_day;
        if at < started_unix_ms { at + DAY_MS } else { at }
    } else {
        let at = humantime::parse_rfc3339_weak(text).map_err(|_| wrong())?;
        let since = at.duration_since(SystemTime::UNIX_EPOCH).map_err(|_| wrong())?;
        i64::try_from(since.as_millis()).map_err(|_| wrong())?
    };
    let offset = at_ms - started_unix_ms;
    if offset < 0 {
        return Err(format!(
            "{text} is before the recording starts ({} UTC)",
            clock_text(started_unix_ms, Duration::ZERO)
        ));
    }
    Ok(Duration::from_millis(offset.unsigned_abs()))
}

/// `HH:MM[:SS]` as milliseconds into a day.
fn clock(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let numbers: Option<Vec<i64>> = parts.iter().map(|p| p.parse().ok()).collect();
    let numbers = numbers?;
    let (h, m, s) = (numbers[0], numbers[1], numbers.get(2).copied().unwrap_or(0));
    (h < 24 && m < 60 && s < 60).then_some(((h * 60 + m) * 60 + s) * 1000)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{clock_text, parse};

    /// 2026-12-07T14:00:30.250Z
    const START: i64 = 1_796_652_030_250;

    #[test]
    fn times_read_as_offsets_from_the_start() {
        assert_eq!(clock_text(START, Duration::ZERO), "14:00:30");
        assert_eq!(clock_text(START, Duration::from_secs(157)), "14:03:07");
        assert_eq!(parse("+2m13s", START), Ok(Duration::from_secs(133)));
        assert_eq!(parse("14:03:07", START), Ok(Duration::from_millis(156_750)));
        assert_eq!(parse("14:05", START), Ok(Duration::from_millis(269_750)));
        assert_eq!(parse("2026-12-07T14:01:30.250Z", START), Ok(Duration::from_secs(60)));
        // Before the start's time of day: the next day's.
        assert_eq!(
            parse("13:00:30", START),
            Ok(Duration::from_millis(86_400_000 - 3_600_250))
        );
        assert_eq!(
            parse("2026-12-07T13:00:00Z", START),
            Err("2026-12-07T13:00:00Z is before the recording starts (14:00:30 UTC)".to_owned())
        );
        assert_eq!(
            parse("soon", START),
            Err(
                "\"soon\" is not a time: give HH:MM:SS (UTC, as the replay's header shows it), \
                 +offset (e.g. +2m30s) or RFC 3339"
                    .to_owned()
            )
        );
    }
}
