//! Reading a recording: the header, then frames up to the end or the first
//! damage, which is reported with where (byte offset, recorded time) and
//! why. Never a panic (every length is checked before it is used), never a
//! hang (a file is read once, front to back), bounded allocation (a frame
//! longer than [`MAX_FRAME`] is damage).

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::format::{Entry, Header, MAGIC, MAX_BLOCK, MAX_FRAME, VERSION};
use super::offset_text;

/// No recording runs longer (ten years): past it an offset is damage, and
/// the replay's clock arithmetic cannot overflow.
const MAX_OFFSET_US: u64 = 10 * 366 * 86_400 * 1_000_000;

/// Why a recording cannot be replayed at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum RecordingError {
    #[error("{0}: cannot read it: {1} — check the path")]
    Unreadable(String, String),
    #[error("{0}: empty file — nothing was recorded (greet-top stopped before its first write)")]
    Empty(String),
    #[error("{0}: not a greet-top recording (wrong magic) — pass a file written by greet-top --record")]
    WrongMagic(String),
    #[error("{0}: format version {1}, newer than this greet-top reads (≤ {max}) — replay it with a newer greet-top", max = VERSION)]
    NewerVersion(String, u16),
    #[error("{0}: the header is damaged ({1}) — the file cannot be replayed")]
    BadHeader(String, String),
}

/// Where and why reading stopped before the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Damage {
    pub path: String,
    /// The damaged frame's first byte.
    pub byte: u64,
    /// The last good frame's offset.
    pub recorded: Duration,
    pub cause: Cause,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    Truncated,
    Checksum,
    TooLong(u32),
    Undecodable(String),
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, byte, at) = (&self.path, self.byte, offset_text(self.recorded));
        match &self.cause {
            Cause::Truncated => write!(
                f,
                "{path}: truncated frame at byte {byte} (recorded {at}): replayed up to there — \
                 the recorder was killed or the disk filled"
            ),
            Cause::Checksum => write!(
                f,
                "{path}: checksum mismatch in the frame at byte {byte} (recorded {at}): replayed up to there — \
                 the file was damaged after it was written"
            ),
            Cause::TooLong(len) => write!(
                f,
                "{path}: the frame at byte {byte} (recorded {at}) claims {len} bytes, over the {MAX_FRAME} limit: \
                 replayed up to there — the file is damaged"
            ),
            Cause::Undecodable(err) => write!(
                f,
                "{path}: the frame at byte {byte} (recorded {at}) does not decode ({err}): replayed up to there — \
                 the file is damaged"
            ),
        }
    }
}

/// A recording opened: its header, and its frames after it.
#[derive(Debug)]
pub(crate) struct Opened {
    pub header: Header,
    pub frames: Frames,
}

/// Opens `path` and reads its header.
pub(crate) fn open(path: &Path) -> Result<Opened, RecordingError> {
    let name = path.display().to_string();
    let unreadable = |err: std::io::Error| RecordingError::Unreadable(name.clone(), err.to_string());
    let file = File::open(path).map_err(unreadable)?;
    let mut frames = Frames {
        input: BufReader::with_capacity(256 * 1024, file),
        byte: 0,
        path: name.clone(),
        last_at: Duration::ZERO,
        block: Vec::new(),
        in_block: 0,
        block_byte: 0,
    };
    let mut magic = [0u8; 10];
    let got = frames.fill(&mut magic).map_err(unreadable)?;
    if got == 0 {
        return Err(RecordingError::Empty(name));
    }
    if got < MAGIC.len() || &magic[..MAGIC.len()] != MAGIC {
        return Err(RecordingError::WrongMagic(name));
    }
    if got < magic.len() {
        return Err(RecordingError::BadHeader(name, "cut short".into()));
    }
    let version = u16::from_le_bytes([magic[8], magic[9]]);
    if version > VERSION {
        return Err(RecordingError::NewerVersion(name, version));
    }
    let header = match frames.next_payload() {
        Ok(Some(payload)) => postcard::from_bytes::<Header>(&payload)
            .map_err(|err| RecordingError::BadHeader(name.clone(), err.to_string()))?,
        Ok(None) => return Err(RecordingError::BadHeader(name, "no header".into())),
        Err(damage) => return Err(RecordingError::BadHeader(name, cause_words(&damage.cause))),
    };
    let mut header = header;
    super::sanitize::header(&mut header);
    Ok(Opened { header, frames })
}

fn cause_words(cause: &Cause) -> String {
    match cause {
        Cause::Truncated => "cut short".into(),
        Cause::Checksum => "checksum mismatch".into(),
        Cause::TooLong(len) => format!("claims {len} bytes"),
        Cause::Undecodable(err) => err.clone(),
    }
}

/// The entries of a recording, read front to back, block by block;
/// [`Frames::seek`] goes back to a block's byte offset (a keyframe's).
#[derive(Debug)]
pub(crate) struct Frames {
    input: BufReader<File>,
    byte: u64,
    path: String,
    /// The offset of the last entry read: where damage is said to be.
    last_at: Duration,
    /// The block being read, inflated, and how far.
    block: Vec<u8>,
    in_block: usize,
    /// Where the block being read starts.
    block_byte: u64,
}

impl Frames {
    /// The next entry is the first of a block (not one read in part).
    pub(crate) fn at_block_start(&self) -> bool {
        self.in_block >= self.block.len()
    }

    /// The byte offset of the next block.
    pub(crate) fn byte(&self) -> u64 {
        self.byte
    }

    /// Goes to the block at `byte` (one this reader returned before) whose
    /// predecessor's last entry was recorded at `last_at`.
    pub(crate) fn seek(&mut self, byte: u64, last_at: Duration) -> std::io::Result<()> {
        self.input.seek(SeekFrom::Start(byte))?;
        self.byte = byte;
        self.last_at = last_at;
        self.block.clear();
        self.in_block = 0;
        Ok(())
    }

    /// Reads as much of `buf` as the file has; how much.
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        self.byte += got as u64;
        Ok(got)
    }

    fn damage(&self, byte: u64, cause: Cause) -> Damage {
        Damage {
            path: self.path.clone(),
            byte,
            recorded: self.last_at,
            cause,
        }
    }

    /// The next frame's checked payload; `None` at a clean end.
    fn next_payload(&mut self) -> Result<Option<Vec<u8>>, Damage> {
        let start = self.byte;
        let mut head = [0u8; 8];
        let got = self.fill(&mut head).map_err(|_| self.damage(start, Cause::Truncated))?;
        if got == 0 {
            return Ok(None);
        }
        if got < head.len() {
            return Err(self.damage(start, Cause::Truncated));
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_FRAME {
            return Err(self.damage(start, Cause::TooLong(len)));
        }
        let mut payload = vec![0u8; len as usize];
        let got = self
            .fill(&mut payload)
            .map_err(|_| self.damage(start, Cause::Truncated))?;
        if got < payload.len() {
            return Err(self.damage(start, Cause::Truncated));
        }
        if crc32fast::hash(&payload) != crc {
            return Err(self.damage(start, Cause::Checksum));
        }
        Ok(Some(payload))
    }

    /// The next block, inflated; `false` at a clean end.
    fn next_block(&mut self) -> Result<bool, Damage> {
        let byte = self.byte;
        let Some(payload) = self.next_payload()? else {
            return Ok(false);
        };
        let mut inflated = Vec::new();
        let read = flate2::read::DeflateDecoder::new(payload.as_slice())
            .take(MAX_BLOCK + 1)
            .read_to_end(&mut inflated);
        match read {
            Ok(n) if n as u64 > MAX_BLOCK => {
                let cause = Cause::Undecodable(format!("a block inflating past {MAX_BLOCK} bytes"));
                return Err(self.damage(byte, cause));
            }
            Ok(_) => {}
            Err(err) => return Err(self.damage(byte, Cause::Undecodable(err.to_string()))),
        }
        self.block = inflated;
        self.in_block = 0;
        self.block_byte = byte;
        Ok(true)
    }

    /// The next entry, its text sanitised, `Instant`s on `start`; `None` at
    /// a clean end. Entries the sanitiser drops are skipped.
    pub(crate) fn next_entry(&mut self, start: std::time::Instant) -> Result<Option<Entry>, Damage> {
        loop {
            if self.at_block_start() && !self.next_block()? {
                return Ok(None);
            }
            let rest = &self.block[self.in_block..];
            let undecodable = |what: String| Cause::Undecodable(what);
            let Some(len) = rest
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            else {
                return Err(self.damage(self.block_byte, undecodable("an entry cut short".into())));
            };
            let Some(payload) = rest.get(4..4 + len) else {
                return Err(self.damage(self.block_byte, undecodable("an entry cut short".into())));
            };
            let entry = super::epoch::with_epoch(start, || postcard::from_bytes::<Entry>(payload))
                .map_err(|err| self.damage(self.block_byte, undecodable(err.to_string())))?;
            if entry.at_us > MAX_OFFSET_US {
                let cause = undecodable(format!("an entry {} µs after the start", entry.at_us));
                return Err(self.damage(self.block_byte, cause));
            }
            self.in_block += 4 + len;
            self.last_at = entry.at();
            if let Some(what) = super::sanitize::what(entry.what) {
                return Ok(Some(Entry {
                    at_us: entry.at_us,
                    what,
                }));
            }
        }
    }
}

/// Wall-clock now, Unix milliseconds.
pub(crate) fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
