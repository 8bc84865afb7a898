//! `Instant`s inside events (a pod's creation) as signed offsets from the
//! recording's start: an `Instant` means nothing outside its process. The
//! start is set around each frame's encoding and decoding (a thread-local:
//! serde's derives pass no context, and one field needs it).

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    static EPOCH: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with `start` as offset 0 for the `Instant`s it encodes or decodes.
pub(crate) fn with_epoch<T>(start: Instant, f: impl FnOnce() -> T) -> T {
    let before = EPOCH.replace(Some(start));
    let out = f();
    EPOCH.set(before);
    out
}

/// Microseconds from the start, negative before it.
fn offset_us(at: Instant, start: Instant) -> i64 {
    match at.checked_duration_since(start) {
        Some(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        None => -i64::try_from(start.duration_since(at).as_micros()).unwrap_or(i64::MAX),
    }
}

/// An instant that cannot be on this process's clock (before its boot) is
/// unknown, as it would be live.
fn from_offset_us(offset: i64, start: Instant) -> Option<Instant> {
    let by = Duration::from_micros(offset.unsigned_abs());
    if offset >= 0 {
        start.checked_add(by)
    } else {
        start.checked_sub(by)
    }
}

pub(crate) fn serialize<S: Serializer>(at: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
    let offset = EPOCH.get().zip(*at).map(|(start, at)| offset_us(at, start));
    offset.serialize(s)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Instant>, D::Error> {
    let offset = Option::<i64>::deserialize(d)?;
    Ok(EPOCH
        .get()
        .zip(offset)
        .and_then(|(start, offset)| from_offset_us(offset, start)))
}
