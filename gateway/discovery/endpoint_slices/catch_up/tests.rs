use std::io;

use super::*;

fn status(code: u16) -> Box<kube::core::Status> {
    Box::new(kube::core::Status {
        code,
        message: format!("answered {code}"),
        ..kube::core::Status::default()
    })
}

fn refused() -> watcher::Error {
    watcher::Error::InitialListFailed(kube::Error::ReadEvents(io::Error::from(
        io::ErrorKind::ConnectionRefused,
    )))
}

fn gone() -> watcher::Error {
    watcher::Error::WatchError(status(410))
}

fn denied() -> watcher::Error {
    watcher::Error::InitialListFailed(kube::Error::Api(status(403)))
}

fn no_jitter() -> CatchUp {
    CatchUp::with_jitter(|| 1.0)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn errors_are_classified_by_what_retrying_can_fix() {
    assert_eq!(Failure::of(&gone()), Failure::Gone);
    assert_eq!(Failure::of(&denied()), Failure::Denied);
    assert_eq!(
        Failure::of(&watcher::Error::WatchStartFailed(kube::Error::Api(status(401)))),
        Failure::Denied
    );
    assert_eq!(Failure::of(&refused()), Failure::Transient);
    for code in [429, 500, 503] {
        assert_eq!(
            Failure::of(&watcher::Error::WatchFailed(kube::Error::Api(status(code)))),
            Failure::Transient,
            "{code}"
        );
    }
    // An HTTP 410 to the watch request is no re-list signal (kube keeps its resourceVersion).
    assert_eq!(
        Failure::of(&watcher::Error::WatchStartFailed(kube::Error::Api(status(410)))),
        Failure::Transient
    );
}

#[test]
fn an_api_server_that_is_down_is_tried_again_within_a_second() {
    let mut pace = no_jitter();
    let now = Instant::now();
    let waits: Vec<_> = (0..6).map(|_| pace.after(Failure::Transient, now)).collect();
    assert_eq!(waits, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
}

#[test]
fn a_410_re_lists_at_once_and_resets_the_pace() {
    let mut pace = no_jitter();
    let now = Instant::now();
    for _ in 0..5 {
        pace.after(Failure::Transient, now);
    }
    assert_eq!(pace.after(Failure::Gone, now), Duration::ZERO);
    assert_eq!(pace.after(Failure::Transient, now + ms(1500)), ms(100));
    // A 410 long after the last one is a fresh signal too.
    assert_eq!(pace.after(Failure::Gone, now + GONE_AGAIN), Duration::ZERO);
}

#[test]
fn a_410_again_right_after_a_re_list_waits_a_second() {
    let mut pace = no_jitter();
    let now = Instant::now();
    assert_eq!(pace.after(Failure::Gone, now), Duration::ZERO);
    assert_eq!(pace.after(Failure::Gone, now + ms(20)), GONE_AGAIN);
    assert_eq!(pace.after(Failure::Gone, now + ms(20) + GONE_AGAIN), Duration::ZERO);
}

#[test]
fn a_denial_backs_off_toward_30_s() {
    let mut pace = no_jitter();
    let now = Instant::now();
    let waits: Vec<_> = (0..11).map(|_| pace.after(Failure::Denied, now).as_millis()).collect();
    assert_eq!(
        waits,
        [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
    );
    // Down after being denied: back to at most a second.
    assert_eq!(pace.after(Failure::Transient, now), ms(1000));
}

#[test]
fn an_event_resets_the_pace() {
    let mut pace = no_jitter();
    let now = Instant::now();
    for _ in 0..8 {
        pace.after(Failure::Denied, now);
    }
    pace.reset();
    assert_eq!(pace.after(Failure::Denied, now), ms(100));
}

#[test]
fn jitter_stays_within_20_percent() {
    let mut low = CatchUp::with_jitter(|| 0.8);
    let mut high = CatchUp::with_jitter(|| 1.2);
    let mut wild = CatchUp::with_jitter(|| 7.0);
    let now = Instant::now();
    assert_eq!(low.after(Failure::Transient, now), ms(80));
    assert_eq!(high.after(Failure::Transient, now), ms(120));
    assert_eq!(wild.after(Failure::Transient, now), ms(120), "clamped");
    assert_eq!(high.after(Failure::Gone, now), Duration::ZERO, "a 410 is not jittered");
    for _ in 0..1000 {
        let factor = random_jitter();
        assert!((0.8..1.2).contains(&factor), "{factor}");
    }
}
