//! Sequence numbers, and the hand-over between lock-free counting and the
//! raw stream, in one atomic word.
//!
//! While no raw subscriber listens, a request takes a sequence number and
//! counts itself with no lock (the fast path). A raw subscriber must see
//! every request after its snapshot and none before, in order, so while one
//! listens every request is counted and sent under the hub's lock instead.
//! The switch: a subscriber, holding that lock, raises the RAW flag (no new
//! request takes the fast path from then on) and waits until the requests
//! already on it have finished counting; the counters then hold exactly the
//! events up to the current sequence number.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits 0..16: requests on the fast path now (each is a running thread, far
/// fewer than 65,536); bit 16: RAW; bits 17..: last sequence number (47 bits).
const IN_FLIGHT: u64 = 0xFFFF;
const RAW: u64 = 1 << 16;
const SEQ_SHIFT: u32 = 17;
const SEQ_ONE: u64 = 1 << SEQ_SHIFT;

#[derive(Default)]
pub(super) struct Gate(AtomicU64);

/// A request on the fast path; dropping it marks its counting done.
pub(super) struct FastPass<'a> {
    gate: &'a Gate,
    pub seq: u64,
}

impl Drop for FastPass<'_> {
    fn drop(&mut self) {
        self.gate.0.fetch_sub(1, Ordering::Release);
    }
}

impl Gate {
    /// A sequence number and a pass for lock-free counting, or `None` while
    /// raw subscribers need the request sent under the lock.
    pub(super) fn enter_fast(&self) -> Option<FastPass<'_>> {
        let previous = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                (word & RAW == 0).then_some(word + SEQ_ONE + 1)
            })
            .ok()?;
        Some(FastPass {
            gate: self,
            seq: (previous >> SEQ_SHIFT) + 1,
        })
    }

    /// The next sequence number, for an event sent under the hub's lock.
    pub(super) fn next_seq(&self) -> u64 {
        (self.0.fetch_add(SEQ_ONE, Ordering::AcqRel) >> SEQ_SHIFT) + 1
    }

    pub(super) fn last_seq(&self) -> u64 {
        self.0.load(Ordering::Acquire) >> SEQ_SHIFT
    }

    #[cfg(test)]
    pub(super) fn is_raw(&self) -> bool {
        self.0.load(Ordering::Acquire) & RAW != 0
    }

    /// Closes the fast path and waits for the requests on it to finish
    /// counting. Call under the hub's lock, which no fast-path request takes.
    pub(super) fn raise_and_settle(&self) {
        self.0.fetch_or(RAW, Ordering::AcqRel);
        let mut spins = 0u32;
        // Each of them is a map lookup and a few additions away from done.
        while self.0.load(Ordering::Acquire) & IN_FLIGHT != 0 {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Reopens the fast path (no raw subscriber is left).
    pub(super) fn lower(&self) {
        self.0.fetch_and(!RAW, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_count_both_paths_and_raw_closes_the_fast_one() {
        let gate = Gate::default();
        let pass = gate.enter_fast().unwrap();
        assert_eq!(pass.seq, 1);
        drop(pass);
        assert_eq!(gate.next_seq(), 2);
        gate.raise_and_settle();
        assert!(gate.is_raw());
        assert!(gate.enter_fast().is_none());
        assert_eq!(gate.next_seq(), 3);
        gate.lower();
        assert!(!gate.is_raw());
        assert_eq!(gate.enter_fast().map(|p| p.seq), Some(4));
        assert_eq!(gate.last_seq(), 4);
    }

    #[test]
    fn raising_waits_for_requests_already_on_the_fast_path() {
        let gate = std::sync::Arc::new(Gate::default());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let worker = {
            let (gate, done) = (gate.clone(), done.clone());
            std::thread::spawn(move || {
                let pass = gate.enter_fast().unwrap();
                entered_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
                done.store(true, Ordering::Release);
                drop(pass);
            })
        };
        entered_rx.recv().unwrap();
        gate.raise_and_settle();
        // The pass was still held when raising began: settling waited for it.
        assert!(done.load(Ordering::Acquire));
        worker.join().unwrap();
    }
}
