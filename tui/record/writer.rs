//! [`Recorder`]: the frame loop hands it what it folds and never waits on
//! the disk. A bounded queue feeds a thread of its own that encodes what
//! arrives and, five times a second, compresses it into a block written
//! through to the file (a SIGKILL loses less than the last second). When the disk is slower than the
//! events, the queue fills and what does not fit is dropped and counted:
//! the REC badge shows the count, and replay then differs from what was
//! live by those frames. A file past the size limit rotates: FILE becomes
//! FILE.1 (replacing an earlier FILE.1: one previous part is kept, so the
//! disk holds at most twice the limit) and a new FILE starts with a fresh
//! header, its `part` one higher and its offsets still from the
//! recording's start.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossterm::event::KeyEvent;

use super::format::{self, Entry, Header, MAX_FRAME, What};
use crate::state::AppEvent;

/// Frames queued for the writer before new ones are dropped: seconds of a
/// raw stream at 1,000 req/s, a few MB at most.
const QUEUE: usize = 16 * 1024;
/// The longest written data waits in the buffer: a fifth of the second a
/// SIGKILL may lose; a slow frame (a busy machine, a debug build) and the
/// writer's own delays fit in the rest. Five small writes a second cost
/// nothing measurable.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// What the writer thread and the screen share.
#[derive(Debug, Default)]
struct Shared {
    /// Bytes in the current file.
    size: AtomicU64,
    /// Frames the queue had no room for, and frames too long to write.
    dropped: AtomicU64,
    /// The writer's failure (the disk full, the file gone): it stops.
    failed: Mutex<Option<String>>,
}

/// Records what the model folds to a file, off the caller's thread.
#[derive(Debug)]
pub(crate) struct Recorder {
    path: PathBuf,
    start: Instant,
    tx: Option<SyncSender<Entry>>,
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
        let (tx, rx) = sync_channel(QUEUE);
        let writer = Writer {
            path: path.to_owned(),
            header,
            max_bytes: max_bytes.max(1),
            start,
            out: BufWriter::with_capacity(256 * 1024, file),
            size,
            pending: Vec::new(),
            pending_since: None,
            deflater: format::Deflater::default(),
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("greet-top-record".into())
            .spawn(move || writer.run(rx))
            .context("cannot start the recording's writer thread")?;
        Ok(Recorder {
            path: path.to_owned(),
            start,
            tx: Some(tx),
            shared,
            thread: Some(thread),
        })
    }

    fn send(&self, at: Instant, what: What) {
        let entry = Entry {
            at_us: u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX),
            what,
        };
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(entry)
        {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The model folds `event` at `now`.
    pub(crate) fn event(&self, event: &AppEvent, now: Instant) {
        self.send(now, What::Event(event.clone()));
    }

    /// The model ticks at `now`.
    pub(crate) fn tick(&self, now: Instant) {
        self.send(now, What::Tick);
    }

    /// `key` reached the model at `now`.
    pub(crate) fn key(&self, key: KeyEvent, now: Instant) {
        self.send(now, What::Key(key));
    }

    /// `--once` printed its report over `observed` at `now`.
    pub(crate) fn reported(&self, observed: Duration, now: Instant) {
        self.send(now, What::Reported { observed });
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

    /// Writes what is queued, flushes and closes the file; also on drop.
    pub(crate) fn finish(mut self) -> anyhow::Result<()> {
        self.close();
        match self.shared.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(failed) => anyhow::bail!("the recording {} stopped early: {failed}", self.path.display()),
            None => Ok(()),
        }
    }

    fn close(&mut self) {
        self.tx = None;
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
    /// The records of the block being gathered, and its first's offset.
    pending: Vec<u8>,
    pending_since: Option<Duration>,
    deflater: format::Deflater,
    shared: Arc<Shared>,
}

/// A block is written at this size even before its time.
const BLOCK_AT: usize = 1 << 20;

impl Writer {
    fn run(mut self, rx: Receiver<Entry>) {
        let mut flushed = Instant::now();
        loop {
            let received = if self.pending.is_empty() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(FLUSH_EVERY.saturating_sub(flushed.elapsed()))
            };
            let closed = matches!(received, Err(RecvTimeoutError::Disconnected));
            if let Ok(entry) = received
                && let Err(err) = self.add(&entry)
            {
                return self.fail(err);
            }
            if closed || flushed.elapsed() >= FLUSH_EVERY || self.pending.len() >= BLOCK_AT {
                if let Err(err) = self.write_block() {
                    return self.fail(err);
                }
                flushed = Instant::now();
            }
            if closed {
                return;
            }
        }
    }

    fn fail(&self, err: anyhow::Error) {
        *self.shared.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{err:#}"));
    }

    fn add(&mut self, entry: &Entry) -> anyhow::Result<()> {
        // A block spans at most a flush's worth of recorded time too, so
        // seeks find a block boundary near any instant however fast the
        // entries came.
        if self
            .pending_since
            .is_some_and(|since| entry.at() >= since + FLUSH_EVERY)
        {
            self.write_block()?;
        }
        if self.pending.is_empty() {
            self.pending_since = Some(entry.at());
        }
        let record = format::entry_record(entry, self.start).context("encoding a frame")?;
        if record.len() > MAX_FRAME as usize / 2 {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.pending.extend(record);
        Ok(())
    }

    /// The gathered records as a block, written through to the file.
    fn write_block(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let frame = self
            .deflater
            .block_frame(&self.pending)
            .context("compressing a block")?;
        self.pending.clear();
        self.pending_since = None;
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
