//! The allocator greet-server and greet-gateway run on: jemalloc, with its
//! background thread purging freed pages.
//!
//! After an attack (held streams, stalled answers) glibc's malloc and
//! mimalloc kept 2–4× the warm RSS for good; jemalloc purging in the
//! background was within 1.5× of it 10 s after and 1.3× 30 s after
//! (bench/attack-results.md), at no CPU cost the benchmarks could show. Not
//! glibc's malloc for the gateway in any case: each forwarded call
//! allocates a few dozen small buffers on both worker threads, and glibc
//! took its arena lock for them (futex waits in the gateway's profile).
//! Each binary names it in its main.rs:
//! `#[global_allocator] static GLOBAL: Allocator = ALLOCATOR;`.

/// The global allocator's type.
pub type Allocator = tikv_jemallocator::Jemalloc;

/// The global allocator.
pub const ALLOCATOR: Allocator = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background purging. Without it jemalloc purges only
/// while the process allocates, so an idle pod would keep what a burst of
/// calls left behind. A failure is logged, not fatal: the process serves
/// as before, with RSS that may stay high.
pub fn purge_in_background() {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(
            "freed memory is not returned in the background ({e}): RSS may stay high after a burst of calls"
        );
    }
}
