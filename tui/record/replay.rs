//! A recording as a model at any recorded instant: [`Replay::seek`] folds
//! the recorded (event, now) pairs into the same [`Views`] the live run
//! built, up to that instant, on a clock whose offset 0 is the recording's
//! start. Recorded keys are applied to the model; their actions are
//! dropped (replay never touches the network).
//!
//! Seeks are fast anywhere: opening the file reads it once, front to back,
//! and keeps a keyframe (a clone of the views and the byte offset of the
//! block after it) every [`KEYFRAME_EVERY`] of recorded time, at the first
//! block boundary past it; a seek
//! starts from the nearest keyframe at or before its target and folds at
//! most that much recorded time. The frames themselves stay on disk.

use std::path::Path;
use std::time::{Duration, Instant};

use super::format::{Entry, Header, What};
use super::reader::{self, Damage, Frames, RecordingError};
use crate::state::Views;

/// How much recorded time a seek folds at most.
pub(crate) const KEYFRAME_EVERY: Duration = Duration::from_secs(10);

/// The views before the frame at `byte`: every frame before `upto` folded.
#[derive(Debug)]
struct Keyframe {
    upto: Duration,
    byte: u64,
    views: Views,
}

#[derive(Debug)]
pub(crate) struct Replay {
    header: Header,
    frames: Frames,
    /// The model's offset 0.
    epoch: Instant,
    keyframes: Vec<Keyframe>,
    views: Views,
    /// Every frame recorded before this is folded into `views`, none after.
    upto: Duration,
    /// A frame read but not folded yet (recorded at or after `upto`).
    pending: Option<Entry>,
    first: Duration,
    end: Duration,
    damage: Option<Damage>,
    /// Where a `--once` recording printed its report, and over how long.
    reported: Option<(Duration, Duration)>,
}

impl Replay {
    /// Opens `path` and reads it through once (keyframes, the end, the
    /// damage); the model is then at the first frame.
    pub(crate) fn open(path: &Path) -> Result<Replay, RecordingError> {
        let opened = reader::open(path)?;
        let epoch = Instant::now();
        let views = opened.header.views.build(epoch);
        let mut replay = Replay {
            header: opened.header,
            frames: opened.frames,
            epoch,
            keyframes: Vec::new(),
            views,
            upto: Duration::ZERO,
            pending: None,
            first: Duration::ZERO,
            end: Duration::ZERO,
            damage: None,
            reported: None,
        };
        replay.scan();
        let first = replay.first;
        replay.seek(first);
        Ok(replay)
    }

    /// Reads every frame, folding them and keeping keyframes.
    fn scan(&mut self) {
        let mut last: Option<Duration> = None;
        let mut due = Duration::ZERO;
        loop {
            // A keyframe can start only where a block does.
            let boundary = self.frames.at_block_start();
            let byte = self.frames.byte();
            let entry = match self.frames.next_entry(self.epoch) {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(damage) => {
                    self.damage = Some(damage);
                    break;
                }
            };
            let at = entry.at();
            if last.is_none() {
                self.first = at;
            }
            // Only where the time moves on: frames of one instant stay together.
            if boundary && at >= due && last.is_none_or(|last| at > last) {
                self.keyframes.push(Keyframe {
                    upto: at,
                    byte,
                    views: self.views.clone(),
                });
                due = at + KEYFRAME_EVERY;
            }
            if let What::Reported { observed } = &entry.what {
                self.reported = Some((at, *observed));
            }
            self.fold(entry);
            last = Some(at);
        }
        self.end = last.unwrap_or_default();
        self.upto = self.end + Duration::from_micros(1);
    }

    fn fold(&mut self, entry: Entry) {
        let now = self.epoch + entry.at();
        match entry.what {
            What::Event(event) => self.views.update(event, now),
            What::Tick => self.views.tick(now),
            // What the key asked the run loop to do is not done again.
            What::Key(key) => drop(self.views.on_key(key, now)),
            What::Reported { .. } => {}
        }
    }

    /// The model at `offset`: every frame recorded at or before it
    /// folded. `true` when it started again from a keyframe.
    pub(crate) fn seek(&mut self, offset: Duration) -> bool {
        let target = offset + Duration::from_micros(1);
        let nearest = self.keyframes.iter().rposition(|k| k.upto <= target);
        let mut restored = false;
        if let Some(index) = nearest {
            let keyframe = &self.keyframes[index];
            // Back, or further on than the nearest keyframe: start there.
            if target < self.upto || keyframe.upto > self.upto {
                self.views = keyframe.views.clone();
                self.upto = keyframe.upto;
                self.pending = None;
                restored = true;
                let last_at = self.upto.saturating_sub(Duration::from_micros(1));
                if self.frames.seek(keyframe.byte, last_at).is_err() {
                    return restored;
                }
            }
        }
        self.forward_to(offset);
        restored
    }

    /// Folds on up to `offset` from where the model is, never back.
    pub(crate) fn forward_to(&mut self, offset: Duration) {
        let target = offset + Duration::from_micros(1);
        if target <= self.upto {
            return;
        }
        loop {
            let entry = match self.pending.take() {
                Some(entry) => entry,
                None => match self.frames.next_entry(self.epoch) {
                    Ok(Some(entry)) => entry,
                    Ok(None) | Err(_) => break,
                },
            };
            if entry.at() >= target {
                self.pending = Some(entry);
                break;
            }
            self.fold(entry);
        }
        self.upto = target;
    }

    pub(crate) fn views(&self) -> &Views {
        &self.views
    }

    pub(crate) fn views_mut(&mut self) -> &mut Views {
        &mut self.views
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The model's clock at `offset`.
    pub(crate) fn instant(&self, offset: Duration) -> Instant {
        self.epoch + offset
    }

    pub(crate) fn first(&self) -> Duration {
        self.first
    }

    pub(crate) fn end(&self) -> Duration {
        self.end
    }

    pub(crate) fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    pub(crate) fn reported(&self) -> Option<(Duration, Duration)> {
        self.reported
    }
}

#[cfg(test)]
mod tests;
