use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use tokio::io::AsyncWrite;

use super::{GATHER_LIMIT, WriteBatch};

/// A socket that records each write and flush; it takes at most `take`
/// bytes a write, none while `blocked`.
#[derive(Default)]
struct Socket {
    writes: Vec<Vec<u8>>,
    flushes: usize,
    shut: bool,
    blocked: bool,
    take: Option<usize>,
}

impl Socket {
    fn bytes(&self) -> Vec<u8> {
        self.writes.concat()
    }
}

impl AsyncWrite for Socket {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.blocked {
            return Poll::Pending;
        }
        let n = buf.len().min(self.take.unwrap_or(usize::MAX));
        self.writes.push(buf[..n].to_vec());
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flushes += 1;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.shut = true;
        Poll::Ready(Ok(()))
    }
}

/// Counts the times it is woken.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Harness {
    batch: WriteBatch<Socket>,
    wakes: Arc<Wakes>,
    waker: Waker,
}

impl Harness {
    fn new(socket: Socket) -> Self {
        let wakes = Arc::new(Wakes::default());
        Harness {
            batch: WriteBatch::new(socket),
            waker: Waker::from(Arc::clone(&wakes)),
            wakes,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut cx = Context::from_waker(&self.waker);
        Pin::new(&mut self.batch).poll_write(&mut cx, bytes)
    }

    fn flush(&mut self) -> Poll<std::io::Result<()>> {
        let mut cx = Context::from_waker(&self.waker);
        Pin::new(&mut self.batch).poll_flush(&mut cx)
    }

    fn socket(&mut self) -> &mut Socket {
        &mut self.batch.io
    }

    fn woken(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }
}

fn written(poll: Poll<std::io::Result<usize>>) -> usize {
    match poll {
        Poll::Ready(Ok(n)) => n,
        other => panic!("expected a completed write, got {other:?}"),
    }
}

fn flushed(poll: Poll<std::io::Result<()>>) -> bool {
    match poll {
        Poll::Ready(Ok(())) => true,
        Poll::Pending => false,
        Poll::Ready(Err(e)) => panic!("flush failed: {e}"),
    }
}

#[test]
fn writes_wait_for_the_flush_which_yields_once_then_writes_them_all_at_once() {
    let mut h = Harness::new(Socket::default());
    assert_eq!(written(h.write(b"HEADERS ")), 8);
    assert_eq!(written(h.write(b"DATA ")), 5);
    assert!(h.socket().writes.is_empty());
    // The first flush yields: pending, and the task woken to come back.
    assert!(!flushed(h.flush()));
    assert_eq!(h.woken(), 1);
    assert!(h.socket().writes.is_empty());
    // Another call's frames, written in the meantime, join the batch.
    assert_eq!(written(h.write(b"TRAILERS")), 8);
    assert!(flushed(h.flush()));
    assert_eq!(h.socket().writes, vec![b"HEADERS DATA TRAILERS".to_vec()]);
    assert_eq!(h.socket().flushes, 1);
    assert_eq!(h.woken(), 1);
}

#[test]
fn each_batch_yields_once_and_a_flush_with_nothing_gathered_never() {
    let mut h = Harness::new(Socket::default());
    assert!(flushed(h.flush()));
    assert_eq!((h.woken(), h.socket().flushes), (0, 1));
    for batch in [&b"one"[..], b"two"] {
        written(h.write(batch));
        assert!(!flushed(h.flush()));
        assert!(flushed(h.flush()));
    }
    assert_eq!(h.socket().writes, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(h.woken(), 2);
}

#[test]
fn vectored_writes_are_gathered_whole() {
    let mut h = Harness::new(Socket::default());
    let mut cx = Context::from_waker(&h.waker);
    let slices = [IoSlice::new(b"frame head "), IoSlice::new(b"payload")];
    let n = Pin::new(&mut h.batch).poll_write_vectored(&mut cx, &slices);
    assert_eq!(written(n), 18);
    assert!(!flushed(h.flush()));
    assert!(flushed(h.flush()));
    assert_eq!(h.socket().writes, vec![b"frame head payload".to_vec()]);
}

#[test]
fn past_the_gather_limit_a_write_first_sends_what_is_gathered() {
    let mut h = Harness::new(Socket::default());
    let big = vec![7u8; GATHER_LIMIT];
    assert_eq!(written(h.write(&big)), GATHER_LIMIT);
    assert!(h.socket().writes.is_empty());
    assert_eq!(written(h.write(b"x")), 1);
    assert_eq!(h.socket().writes, vec![big]);
    assert!(!flushed(h.flush()));
    assert!(flushed(h.flush()));
    assert_eq!(h.socket().writes[1], b"x");
}

#[test]
fn a_socket_that_takes_nothing_holds_back_writes_past_the_limit_and_loses_no_byte() {
    let mut h = Harness::new(Socket {
        blocked: true,
        ..Socket::default()
    });
    let big = vec![1u8; GATHER_LIMIT];
    written(h.write(&big));
    assert!(h.write(b"more").is_pending());
    assert!(!flushed(h.flush()));
    assert!(!flushed(h.flush()), "the socket still takes nothing");
    h.socket().blocked = false;
    h.socket().take = Some(10_000);
    assert!(flushed(h.flush()));
    assert_eq!(written(h.write(b"more")), 4);
    assert!(!flushed(h.flush()));
    assert!(flushed(h.flush()));
    let mut expected = big;
    expected.extend_from_slice(b"more");
    assert_eq!(h.socket().bytes(), expected);
    assert!(h.socket().writes.iter().all(|w| w.len() <= 10_000));
}

#[test]
fn shutdown_sends_what_is_gathered_first_without_yielding() {
    let mut h = Harness::new(Socket::default());
    written(h.write(b"GOAWAY"));
    let mut cx = Context::from_waker(&h.waker);
    assert!(matches!(
        Pin::new(&mut h.batch).poll_shutdown(&mut cx),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(h.socket().writes, vec![b"GOAWAY".to_vec()]);
    assert!(h.socket().shut);
    assert_eq!(h.woken(), 0);
}

#[test]
fn a_large_batch_is_not_kept_once_sent() {
    let mut h = Harness::new(Socket::default());
    written(h.write(&vec![0u8; GATHER_LIMIT]));
    assert!(!flushed(h.flush()));
    assert!(flushed(h.flush()));
    assert_eq!(h.batch.gathered.capacity(), 0);
    written(h.write(b"small"));
    assert!(!flushed(h.flush()));
    assert!(flushed(h.flush()));
    assert!(h.batch.gathered.capacity() <= super::RETAINED);
}
