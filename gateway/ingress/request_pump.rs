//! A call's request body still on its way upstream when the call's first
//! try is sent (a unary call's DATA usually comes in the frame after its
//! HEADERS; a client stream goes on), driven by the call's own task beside
//! what the task waits for: the response's head, then its relay.
//!
//! Not a task of its own: spawning one a call moved the pump's whole state
//! into a task cell and back (callgrind: ~4,500 instructions a call, with
//! the wake-ups between the two tasks; bench/results.md).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::SendStream;
use http_body::Body;

use super::pump::Pump;

/// A pump not yet done. Dropped before it is (the try failed, the call
/// ended or was given up), it resets its stream: a pump waiting for window
/// room would otherwise hold the upstream stream open until the upstream
/// reads.
pub(super) struct RequestPump<B: Body<Data = Bytes> + Unpin + Send + 'static>
where
    B::Error: std::fmt::Display,
{
    /// `None` once done. Boxed: the pump travels with the call's answer
    /// through several frames, each move a copy of it (callgrind).
    pump: Option<Box<Pump<B>>>,
}

impl<B> RequestPump<B>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    /// Sends now what is there; `None` when that was all of it (a unary
    /// call's whole body already received), else the pump to drive on.
    pub(super) fn start(body: B, stream: SendStream<Bytes>) -> Option<Self> {
        let mut pump = Pump::new(body, stream);
        let waker = std::task::Waker::noop();
        if Pin::new(&mut pump).poll(&mut Context::from_waker(waker)).is_ready() {
            return None;
        }
        Some(RequestPump {
            pump: Some(Box::new(pump)),
        })
    }

    /// Drives the pump (until it is done) while `main` runs; ends with `main`.
    pub(super) async fn beside<F: Future>(pump: &mut Option<Self>, main: F) -> F::Output {
        let mut main = std::pin::pin!(main);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = main.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            if let Some(pump) = pump {
                pump.poll_on(cx);
            }
            Poll::Pending
        })
        .await
    }

    /// Moves the pump on; once done it is never polled again.
    fn poll_on(&mut self, cx: &mut Context<'_>) {
        if let Some(pump) = &mut self.pump
            && Pin::new(&mut **pump).poll(cx).is_ready()
        {
            self.pump = None;
        }
    }
}

impl<B> Drop for RequestPump<B>
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    fn drop(&mut self) {
        if let Some(pump) = &mut self.pump {
            pump.reset();
        }
    }
}
