//! The ingress's cap on calls in flight (`--max-streams`), shared out when
//! it is full. One pool, first come first served, let a client that holds
//! calls open (a few body bytes, no end) take all of it and every other
//! client's calls be refused. So a new call that finds the pool full takes
//! the place of one of the heaviest holder's calls when its own client
//! holds fewer: "holder" first by peer IP (a client on another IP always
//! wins against a one-IP attacker), then by connection within an IP (a
//! connection beside the attacker's, through one NAT or proxy, wins
//! against its heavier connections).
//!
//! The count is one atomic, so a call under the cap takes no lock but its
//! own connection's (to be findable); the holders' table is locked only
//! when a connection opens or closes and when the pool is full.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// One connection's holding, as the rule reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holding {
    pub(crate) ip: IpAddr,
    pub(crate) connection: u64,
    /// Its calls holding a place.
    pub(crate) held: usize,
}

/// The connection whose call gives up its place to a new call of `me`'s,
/// the pool being full; `None`: the new call is refused.
///
/// The heaviest other IP gives one up when `me`'s IP, with the new call,
/// would still hold fewer than it after; otherwise the heaviest other
/// connection on `me`'s own IP, by the same test. "Fewer after", not just
/// "fewer": two holders one apart would otherwise trade a place back and
/// forth on every call. Ties go to the lowest connection number (the
/// oldest connection), so the choice does not depend on the table's order.
pub(crate) fn victim(holdings: &[Holding], me: (IpAddr, u64)) -> Option<u64> {
    let (my_ip, my_connection) = me;
    let mut by_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for holding in holdings {
        *by_ip.entry(holding.ip).or_default() += holding.held;
    }
    let mine = by_ip.get(&my_ip).copied().unwrap_or(0);
    // The first of the heaviest: `max_by_key` keeps the last.
    let heaviest_ip = by_ip.iter().filter(|&(&ip, _)| ip != my_ip).fold(
        None,
        |best: Option<(IpAddr, usize)>, (&ip, &held)| match best {
            Some((_, most)) if most >= held => best,
            _ => Some((ip, held)),
        },
    );
    if let Some((ip, held)) = heaviest_ip
        && mine + 1 < held
    {
        return heaviest_connection(holdings, ip, None).map(|h| h.connection);
    }
    let my_held = holdings
        .iter()
        .find(|h| h.connection == my_connection)
        .map_or(0, |h| h.held);
    heaviest_connection(holdings, my_ip, Some(my_connection))
        .filter(|h| my_held + 1 < h.held)
        .map(|h| h.connection)
}

/// The connection on `ip` holding most (but `except`), the lowest
/// connection number among equals.
fn heaviest_connection(holdings: &[Holding], ip: IpAddr, except: Option<u64>) -> Option<Holding> {
    holdings
        .iter()
        .filter(|h| h.ip == ip && Some(h.connection) != except && h.held > 0)
        .fold(None, |best: Option<Holding>, h| match best {
            Some(b) if b.held > h.held || (b.held == h.held && b.connection < h.connection) => best,
            _ => Some(*h),
        })
}

/// The address a holder is counted by: an IPv4-mapped IPv6 address as the
/// IPv4 it is, and other IPv6 addresses by their /64, the least a host is
/// given, so that one host cannot be many holders by its addresses alone.
pub(crate) fn holder_ip(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// The ingress's streams: the cap, the calls in flight, and who holds them.
#[derive(Debug)]
pub(crate) struct StreamShare {
    cap: usize,
    in_flight: AtomicUsize,
    holders: Mutex<Holders>,
}

#[derive(Debug, Default)]
struct Holders {
    next: u64,
    by_connection: BTreeMap<u64, Arc<Holder>>,
}

/// One connection's share: its calls holding a place.
#[derive(Debug)]
struct Holder {
    share: Arc<StreamShare>,
    connection: u64,
    ip: IpAddr,
    held: AtomicUsize,
    /// Its calls, oldest first; ended ones are swept out when they are as
    /// many as the live ones, so the queue stays within twice its calls.
    calls: Mutex<VecDeque<Arc<Seat>>>,
}

const LIVE: u8 = 0;
const ENDED: u8 = 1;
const PREEMPTED: u8 = 2;

/// A call's place: live until it ends or gives its place up, whichever
/// comes first (the other then does nothing). An `AtomicWaker`, not a
/// `Notify`: polled on every wake of the call, a `Notify` takes its lock
/// each time (callgrind: about 500 instructions a call more).
#[derive(Debug)]
struct Seat {
    state: AtomicU8,
    call: AtomicWaker,
}

/// One connection's share of the cap; taken from the share when the
/// connection opens, given back when it closes.
#[derive(Debug)]
pub(crate) struct StreamHolder(Arc<Holder>);

/// A call's place under the cap, held until dropped or preempted.
#[derive(Debug)]
pub(crate) struct Place {
    holder: Arc<Holder>,
    seat: Arc<Seat>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StreamShare {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(StreamShare {
            cap: cap.max(1),
            in_flight: AtomicUsize::new(0),
            holders: Mutex::new(Holders::default()),
        })
    }

    /// The share of a connection from `peer`.
    pub(crate) fn holder(self: &Arc<Self>, peer: IpAddr) -> StreamHolder {
        let mut holders = lock(&self.holders);
        let connection = holders.next;
        holders.next += 1;
        let holder = Arc::new(Holder {
            share: Arc::clone(self),
            connection,
            ip: holder_ip(peer),
            held: AtomicUsize::new(0),
            calls: Mutex::new(VecDeque::new()),
        });
        holders.by_connection.insert(connection, Arc::clone(&holder));
        StreamHolder(holder)
    }

    /// A place under the cap, if one is free.
    fn try_take(&self) -> bool {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) < self.cap {
            return true;
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// The pool is full: a place for `me`'s new call taken from the
    /// heaviest holder, if the rule gives one.
    fn make_room(&self, me: &Arc<Holder>) -> Option<Place> {
        let holders = lock(&self.holders);
        // A call may have ended since.
        if self.try_take() {
            return Some(me.seat());
        }
        let holdings: Vec<Holding> = holders
            .by_connection
            .values()
            .map(|h| Holding {
                ip: h.ip,
                connection: h.connection,
                held: h.held.load(Ordering::Acquire),
            })
            .collect();
        let victim = victim(&holdings, (me.ip, me.connection))?;
        let preempted = holders.by_connection.get(&victim).is_some_and(|h| h.preempt_oldest());
        // None preempted: its calls all ended meanwhile, and freed places.
        (preempted || self.try_take()).then(|| me.seat())
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

impl Holder {
    /// A place taken (the count already moved): the call's seat, queued.
    fn seat(self: &Arc<Self>) -> Place {
        let held = self.held.fetch_add(1, Ordering::AcqRel) + 1;
        let seat = Arc::new(Seat {
            state: AtomicU8::new(LIVE),
            call: AtomicWaker::new(),
        });
        let mut calls = lock(&self.calls);
        if calls.len() >= 2 * held {
            calls.retain(|seat| seat.state.load(Ordering::Acquire) == LIVE);
        }
        calls.push_back(Arc::clone(&seat));
        Place {
            holder: Arc::clone(self),
            seat,
        }
    }

    /// Preempts this connection's oldest live call: the oldest has held its
    /// place longest, and a held stream is old by its nature while a normal
    /// call is young, so the oldest is the likeliest hold. Its place is the
    /// preemptor's now: the count does not move. `false`: none was live.
    fn preempt_oldest(&self) -> bool {
        let mut calls = lock(&self.calls);
        while let Some(seat) = calls.pop_front() {
            if seat
                .state
                .compare_exchange(LIVE, PREEMPTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.held.fetch_sub(1, Ordering::AcqRel);
                seat.call.wake();
                return true;
            }
        }
        false
    }
}

impl StreamHolder {
    /// A place for one more call of this connection: free, or taken from
    /// the heaviest holder; `None`: refuse the call.
    pub(crate) fn place(&self) -> Option<Place> {
        let holder = &self.0;
        if holder.share.try_take() {
            return Some(holder.seat());
        }
        holder.share.make_room(holder)
    }
}

impl Drop for StreamHolder {
    /// Its calls still unwinding keep their places till they end, but
    /// cannot be preempted: they end with the connection.
    fn drop(&mut self) {
        lock(&self.0.share.holders).by_connection.remove(&self.0.connection);
    }
}

impl Place {
    /// Resolves once another holder's call has taken this place: the call
    /// is to be reset.
    pub(crate) async fn preempted(&self) {
        let seat = &self.seat;
        let taken = || seat.state.load(Ordering::Acquire) == PREEMPTED;
        std::future::poll_fn(|cx| {
            if taken() {
                return Poll::Ready(());
            }
            // Registered before the second look: a preemption in between
            // is seen by it, or wakes the waker registered.
            seat.call.register(cx.waker());
            if taken() { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        // A preempted place went to its preemptor: nothing to give back.
        if self
            .seat
            .state
            .compare_exchange(LIVE, ENDED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.holder.held.fetch_sub(1, Ordering::AcqRel);
            self.holder.share.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests;
