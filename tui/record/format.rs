//! The file's layout:
//!
//! ```text
//! file   := MAGIC (8 bytes)  version (u16 LE)  frame(postcard Header)  frame(block)*
//! frame  := length (u32 LE)  crc32 of the payload (u32 LE)  payload
//! block  := deflate(entry*)  (raw deflate, each block on its own)
//! entry  := length (u32 LE)  postcard Entry
//! ```
//!
//! postcard over the model's own types (serde derives) rather than a
//! proto/record.proto: the events are the dashboard's types, not a wire
//! contract with another program, so a second schema kept in step by hand
//! would only be a place for the two to drift; postcard is compact
//! (varints, no field names) and well kept. A block holds what the writer
//! gathered between two flushes (a fifth of a second): a summary repeats
//! every pod's name, address and method, which deflate folds away (the
//! recording's size halves); each block stands alone, so a seek starts at
//! any block and damage costs one block. The version in front of the
//! header says when a change of these types changes the layout: a reader
//! refuses versions newer than its own. The length and crc32 around each
//! frame make damage findable: a reader stops at the first frame that is
//! cut short or does not check, and says where.

use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use serde::{Deserialize, Serialize};

use crate::state::{App, AppEvent, LoadState, Views};

/// The first bytes of every recording.
pub(crate) const MAGIC: &[u8; 8] = b"GRTREC\0\n";
/// The layout's version: what this greet-top writes and the newest it reads.
pub(crate) const VERSION: u16 = 1;
/// A frame longer than this is damage (a corrupt length), not an allocation.
pub(crate) const MAX_FRAME: u32 = 16 << 20;
/// A block inflating past this is damage too.
pub(crate) const MAX_BLOCK: u64 = 64 << 20;

/// What a recording starts with: enough to say what it is and to rebuild
/// the same views.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Header {
    /// The greet-top that wrote it.
    pub greet_top: String,
    /// What was followed, as said on the command line: gateway URLs, the
    /// kube context and namespace, metrics URLs, "demo".
    pub sources: Vec<String>,
    /// Wall clock at the recording's start (offset 0), Unix milliseconds.
    pub started_unix_ms: i64,
    /// 0 for a recording's first file; n for the file rotation started
    /// n files later, which begins mid-incident.
    pub part: u32,
    /// How the views were built.
    pub views: ViewsSpec,
}

/// How one [`App`] was built, so replay builds the same.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AppSpec {
    pub title: String,
    /// `.expecting(gateway)`.
    pub expecting: Option<String>,
    /// `.with_demo()`.
    pub demo: bool,
    /// `.with_pod_metrics()`.
    pub pod_metrics: bool,
    /// `.with_load(state)`.
    pub load: Option<LoadState>,
    /// `--once`: `.counting_from_now().over_everything_counted()`.
    pub once: bool,
}

impl AppSpec {
    pub(crate) fn new(title: impl Into<String>) -> AppSpec {
        AppSpec {
            title: title.into(),
            ..AppSpec::default()
        }
    }

    /// The app this describes, with its clock starting at `start`.
    pub(crate) fn build(&self, start: Instant) -> App {
        let mut app = App::new(self.title.clone(), start);
        if let Some(gateway) = &self.expecting {
            app = app.expecting(gateway);
        }
        if self.demo {
            app = app.with_demo();
        }
        if self.pod_metrics {
            app = app.with_pod_metrics();
        }
        if let Some(load) = self.load {
            app = app.with_load(load);
        }
        if self.once {
            app = app.counting_from_now().over_everything_counted();
        }
        app
    }
}

/// One view, or a gateway's and the pods' own side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum ViewsSpec {
    Single(AppSpec),
    Paired(AppSpec, AppSpec),
}

impl ViewsSpec {
    pub(crate) fn build(&self, start: Instant) -> Views {
        match self {
            ViewsSpec::Single(app) => Views::single(app.build(start)),
            ViewsSpec::Paired(gateway, pods) => Views::paired(gateway.build(start), pods.build(start)),
        }
    }

    /// The view a `--once` report is of: the only one, or the gateway's.
    pub(crate) fn main(&self) -> &AppSpec {
        match self {
            ViewsSpec::Single(app) | ViewsSpec::Paired(app, _) => app,
        }
    }
}

/// One thing the model folded, `at_us` microseconds after the start.
/// Generic over the event so the recorder writes one by reference
/// ([`EntryRef`]) in the same bytes, without a copy of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Entry<E = AppEvent> {
    pub at_us: u64,
    pub what: What<E>,
}

impl<E> Entry<E> {
    pub(crate) fn at(&self) -> Duration {
        Duration::from_micros(self.at_us)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum What<E = AppEvent> {
    /// `Views::update(event, now)` / `App::update`.
    Event(E),
    /// `Views::tick(now)`, then a frame was drawn.
    Tick,
    /// `Views::on_key(key, now)`: its action, if any, is never replayed.
    Key(KeyEvent),
    /// `--once` printed its report here, over this long.
    Reported { observed: Duration },
}

/// `payload` as a frame: length, crc32, payload.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The file's first bytes: magic, version and the header's frame.
pub(crate) fn preamble(header: &Header) -> Result<Vec<u8>, postcard::Error> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend(frame(&postcard::to_allocvec(header)?));
    Ok(out)
}

/// `entry` as the record a block holds; `start` is the recording's offset 0.
pub(crate) fn entry_record<E: Serialize>(entry: &Entry<E>, start: Instant) -> Result<Vec<u8>, postcard::Error> {
    let mut out = Vec::new();
    append_record(&mut out, entry, start)?;
    Ok(out)
}

/// [`Entry`] as the recorder writes it: the event by reference (serde
/// writes a reference as its value).
pub(crate) type EntryRef<'a> = Entry<&'a AppEvent>;
pub(crate) type WhatRef<'a> = What<&'a AppEvent>;

/// Appends `entry`'s record (its length, then its payload) to `out`; the
/// payload's length. On an error `out` may hold part of a record.
pub(crate) fn append_record<E: Serialize>(
    out: &mut Vec<u8>,
    entry: &Entry<E>,
    start: Instant,
) -> Result<usize, postcard::Error> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    super::epoch::with_epoch(start, || postcard::to_io(entry, &mut *out))?;
    let len = out.len() - at - 4;
    out[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(len)
}

/// Deflates blocks with one compressor, reset between them: a fresh one
/// per block costs its tables' allocation and setup every time, most of
/// what recording cost the frame loop's process.
pub(crate) struct Deflater(flate2::Compress);

impl Default for Deflater {
    fn default() -> Self {
        Deflater(flate2::Compress::new(flate2::Compression::fast(), false))
    }
}

impl Deflater {
    /// Records (from [`entry_record`]) as one block's frame.
    pub(crate) fn block_frame(&mut self, records: &[u8]) -> std::io::Result<Vec<u8>> {
        self.0.reset();
        let mut out = Vec::with_capacity(records.len() / 2 + 64);
        loop {
            let consumed = usize::try_from(self.0.total_in())
                .unwrap_or(usize::MAX)
                .min(records.len());
            let status = self
                .0
                .compress_vec(&records[consumed..], &mut out, flate2::FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            if status == flate2::Status::StreamEnd {
                return Ok(frame(&out));
            }
            out.reserve(out.capacity().max(64));
        }
    }
}

/// `entry` alone in a block, as a frame (the tests lay files out with it).
#[cfg(test)]
pub(crate) fn entry_frame(entry: &Entry, start: Instant) -> anyhow::Result<Vec<u8>> {
    Ok(Deflater::default().block_frame(&entry_record(entry, start)?)?)
}
