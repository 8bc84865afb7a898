//! [`Recorder`]: the frame loop hands it what it folds and never waits on
//! the disk. The caller encodes each entry into the block being gathered
//! (no copy of the event, no wake-up of another thread); a thread of its
//! own takes what was gathered five times a second, compresses each block
//! and writes it through to the file (a SIGKILL loses less than the last
//! second). When the disk is slower than the events, what was gathered
//! grows to a bound and what does not fit is dropped and counted: the REC
//! badge shows the count, and replay then differs from what was live by
//! those frames. A file past the size limit rotates: FILE becomes FILE.1
//! (replacing an earlier FILE.1: one previous part is kept, so the disk
//! holds at most twice the limit) and a new FILE starts with a fresh
//! header, its `part` one higher and its offsets still from the
//! recording's start.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::event::KeyEvent;

use super::format::{self, EntryRef, Header, MAX_FRAME, WhatRef};
use crate::state::AppEvent;

/// Gathered bytes not yet taken by the writer before new entries are
/// dropped: seconds of a raw stream at 1,000 req/s.
const GATHERED_MAX: usize = 16 << 20;
/// How often the writer takes what was gathered, and the time a block
/// spans: an entry waits at most two of these to be written, 0.4 of the
/// second a SIGKILL may lose; a slow frame (a busy machine, a debug build)
/// and the writer's own delays fit in the rest. The writer wakes on this
/// clock alone, not per entry.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// A block is sealed at this size even before its time.
const BLOCK_AT: usize = 1 << 20;

/// What the caller gathers and the writer takes.
#[derive(Debug, Default)]
struct Gathered {
    /// Blocks sealed whole (a block spans at most [`FLUSH_EVERY`] of
    /// recorded time, so seeks find a boundary near any instant however
    /// fast the entries came), oldest first.
    sealed: Vec<Vec<u8>>,
    /// The records of the block being gathered, and its first's offset.
    records: Vec<u8>,
    since: Option<Duration>,
    /// Bytes in `sealed` and `records`.
    bytes: usize,
    /// The recorder is finishing: the writer writes the rest and ends.
    closed: bool,
}

/// What the writer thread and the caller share.
#[derive(Debug, Default)]
struct Shared {
    gathered: Mutex<Gathered>,
    /// Wakes the writer early: at the close, or a block sealed by size.
    wake: Condvar,
    /// Bytes in the current file.
    size: AtomicU64,
    /// Frames there was no room for, and frames too long to write.
    dropped: AtomicU64,
    /// The writer's failure (the disk full, the file gone): it stops.
    failed: Mutex<Option<String>>,
}

impl Shared {
    fn gathered(&self) -> MutexGuard<'_, Gathered> {
        self.gathered.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Records what the model folds to a file, off the caller's thread.
#[derive(Debug)]
pub(crate) struct Recorder {
    path: PathBuf,
    start: Instant,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Creates (or truncates) `path` and writes the header now, so a path
    /// that cannot be written fails before anything starts. `start` is
    /// offset 0: the instant the views were built at.
    pub(crate) fn create(path: &Path, header: Header, max_bytes: u64, start: Instant) -> anyhow::Result<Recorder> {
        let (file, size) = open_part(path, &header).map_err(|err| {
            anyhow::anyhow!(
                "cannot record to {}: {err:#} — choose a writable --record path",
                path.display()
            )
        })?;
        let shared = Arc::new(Shared::default());
        shared.size.store(size, Ordering::Relaxed);
        let writer = Writer {
            path: path.to_owned(),
            header,
            max_bytes: max_bytes.max(1),
            start,
            out: BufWriter::with_capacity(256 * 1024, file),
            size,
            deflater: format::Deflater::default(),
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("greet-top-record".into())
            .spawn(move || writer.run())
            .context("cannot start the recording's writer thread")?;
        Ok(Recorder {
            path: path.to_owned(),
            start,
            shared,
            thread: Some(thread),
        })
    }

    fn send(&self, at: Instant, what: WhatRef<'_>) {
        let entry = EntryRef {
            at_us: u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX),
            what,
        };
        let mut gathered = self.shared.gathered();
        if gathered.closed {
            return;
        }
        if gathered.bytes >= GATHERED_MAX {
            drop(gathered);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let at = Duration::from_micros(entry.at_us);
        if gathered.since.is_some_and(|since| at >= since + FLUSH_EVERY) {
            gathered.seal();
        }
        let before = gathered.records.len();
        let added = format::append_record(&mut gathered.records, &entry, self.start);
        // An entry that does not encode, or too long for a frame, is
        // dropped whole: the block keeps only whole records.
        if !added.is_ok_and(|len| len <= MAX_FRAME as usize / 2) {
            gathered.records.truncate(before);
            drop(gathered);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if before == 0 {
            gathered.since = Some(at);
        }
        gathered.bytes += gathered.records.len() - before;
        if gathered.records.len() >= BLOCK_AT {
            gathered.seal();
            self.shared.wake.notify_one();
        }
    }

    /// The model folds `event` at `now`.
    pub(crate) fn event(&self, event: &AppEvent, now: Instant) {
        self.send(now, WhatRef::Event(event));
    }

    /// The model ticks at `now`.
    pub(crate) fn tick(&self, now: Instant) {
        self.send(now, WhatRef::Tick);
    }

    /// `key` reached the model at `now`.
    pub(crate) fn key(&self, key: KeyEvent, now: Instant) {
        self.send(now, WhatRef::Key(key));
    }

    /// `--once` printed its report over `observed` at `now`.
    pub(crate) fn reported(&self, observed: Duration, now: Instant) {
        self.send(now, WhatRef::Reported { observed });
    }

    /// `REC greet.grt 12.3 MB` (and what went wrong), for the screen.
    pub(crate) fn badge(&self) -> String {
        let size = self.shared.size.load(Ordering::Relaxed);
        let mut text = format!("REC {} {}", self.path.display(), megabytes(size));
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            text.push_str(&format!(", {dropped} frames dropped (disk slow)"));
        }
        if let Some(failed) = &*self.shared.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            text.push_str(&format!(", STOPPED: {failed}"));
        }
        text
    }

    /// Writes what is gathered, flushes and closes the file; also on drop.
    pub(crate) fn finish(mut self) -> anyhow::Result<()> {
        self.close();
        match self.shared.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(failed) => anyhow::bail!("the recording {} stopped early: {failed}", self.path.display()),
            None => Ok(()),
        }
    }

    fn close(&mut self) {
        self.shared.gathered().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.close();
    }
}

impl Gathered {
    /// The block being gathered joins the sealed ones.
    fn seal(&mut self) {
        if !self.records.is_empty() {
            self.sealed.push(std::mem::take(&mut self.records));
        }
        self.since = None;
    }
}

fn megabytes(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} kB", bytes.div_ceil(1000))
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// Creates the file `path` with `header`'s preamble; its size.
fn open_part(path: &Path, header: &Header) -> anyhow::Result<(File, u64)> {
    let preamble = format::preamble(header).context("encoding the header")?;
    let mut file = File::create(path)?;
    file.write_all(&preamble)?;
    file.flush()?;
    Ok((file, preamble.len() as u64))
}

struct Writer {
    path: PathBuf,
    header: Header,
    max_bytes: u64,
    start: Instant,
    out: BufWriter<File>,
    size: u64,
    deflater: format::Deflater,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self) {
        let mut next = Instant::now() + FLUSH_EVERY;
        loop {
            let (blocks, closed) = {
                let mut gathered = self.shared.gathered();
                // On the clock alone: the caller wakes it early only to
                // close or for a block sealed by size.
                while !gathered.closed && gathered.sealed.is_empty() {
                    let left = next.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    gathered = self
                        .shared
                        .wake
                        .wait_timeout(gathered, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                // The block being gathered goes once it spans a flush's
                // worth of time (as the caller seals it), not cut in two
                // at every wake-up: a block costs the compressor's reset
                // and compresses worse the smaller it is. Its oldest entry
                // waits at most two flushes so.
                let now = self.start.elapsed();
                if gathered.closed || gathered.since.is_some_and(|since| now >= since + FLUSH_EVERY) {
                    gathered.seal();
                }
                gathered.bytes = gathered.records.len();
                (std::mem::take(&mut gathered.sealed), gathered.closed)
            };
            for block in &blocks {
                if let Err(err) = self.write_block(block) {
                    return self.fail(err);
                }
            }
            if closed {
                return;
            }
            next = Instant::now() + FLUSH_EVERY;
        }
    }

    fn fail(&self, err: anyhow::Error) {
        *self.shared.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{err:#}"));
        // Nothing takes what is gathered any more.
        let mut gathered = self.shared.gathered();
        gathered.closed = true;
        gathered.sealed = Vec::new();
        gathered.records = Vec::new();
    }

    /// The records of one block, compressed and written through to the file.
    fn write_block(&mut self, records: &[u8]) -> anyhow::Result<()> {
        let frame = self.deflater.block_frame(records).context("compressing a block")?;
        if self.size + frame.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(&frame).context("writing the recording")?;
        self.out.flush().context("writing the recording")?;
        self.size += frame.len() as u64;
        self.shared.size.store(self.size, Ordering::Relaxed);
        Ok(())
    }

    /// FILE becomes FILE.1, and a new FILE begins mid-incident.
    fn rotate(&mut self) -> anyhow::Result<()> {
        self.out.flush().context("writing the recording")?;
        let previous = rotated_path(&self.path);
        std::fs::rename(&self.path, &previous)
            .with_context(|| format!("rotating the recording to {}", previous.display()))?;
        self.header.part += 1;
        let (file, size) = open_part(&self.path, &self.header)?;
        self.out = BufWriter::with_capacity(256 * 1024, file);
        self.size = size;
        Ok(())
    }
}

/// Where a rotated file goes: FILE.1.
pub(crate) fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}
