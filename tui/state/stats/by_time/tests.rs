use super::*;
use greet_proto::Mode;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn codes_and_methods_are_kept_by_time_and_pruned_after_a_minute() {
    let t0 = Instant::now();
    let mut details = Details::default();
    details.failed("pod-a", t0, 14, 2);
    details.failed("pod-a", t0 + secs(0.01), 12, 1);
    details.failed("pod-a", t0 + secs(5.0), 12, 3);
    details.failed("", t0 + secs(6.0), 14, 1);
    details.failed("pod-b", t0 + secs(6.0), 0, 9);
    let greet = ByMethod::from([("/g.S/M".to_owned(), Tally { requests: 4, errors: 1 })]);
    details.called("pod-a", t0 + secs(1.0), &greet);
    details.called("pod-a", t0 + secs(7.0), &greet);
    let stats = Stats {
        details: details.clone(),
        ..Stats::default()
    };
    let now = t0 + secs(7.0);
    assert_eq!(
        stats.codes_since(t0 + secs(2.0), now),
        BTreeMap::from([("", BTreeMap::from([(14, 1)])), ("pod-a", BTreeMap::from([(12, 3)]))]),
        "from 2 s on; a success (code 0) is no failure"
    );
    assert_eq!(
        stats.codes_since(t0, now)["pod-a"],
        BTreeMap::from([(12, 4), (14, 2)]),
        "the two within 50 ms share an entry and both count"
    );
    assert_eq!(stats.last_failure(|c| c == 12), Some(t0 + secs(5.0)));
    assert_eq!(stats.last_failure(|c| c == 14), Some(t0 + secs(6.0)));
    assert_eq!(stats.methods_since(t0 + secs(2.0), now)["pod-a"]["/g.S/M"].requests, 4);
    assert_eq!(stats.methods_since(t0, now)["pod-a"]["/g.S/M"].requests, 8);
    details.prune(t0 + secs(60.5));
    let stats = Stats {
        details,
        ..Stats::default()
    };
    assert_eq!(
        stats
            .codes_since(t0, t0 + secs(61.0))
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        ["", "pod-a"],
        "the entries of 0 s left, those of 5 and 6 s stay"
    );
    assert_eq!(
        stats.codes_since(t0, t0 + secs(61.0))["pod-a"],
        BTreeMap::from([(12, 3)])
    );
}

#[test]
fn the_last_change_is_a_switch_or_a_pod_gone_and_the_window_starts_at_its_span() {
    let mut stats = Stats::default();
    assert_eq!(stats.last_change(), None);
    stats.mark(3, Mark::Mode(Mode::Balanced));
    stats.mark(5, Mark::PodGone);
    stats.mark(7, Mark::Reconnected);
    assert_eq!(
        stats.last_change(),
        Some((5, Change::PodGone)),
        "a reconnect changes nothing"
    );
    let origin = Instant::now();
    let now = origin + secs(25.0);
    assert_eq!(stats.window_start(now, origin), origin + secs(15.0));
    assert_eq!(
        stats.window_start(origin + secs(4.0), origin),
        origin,
        "not before the origin"
    );
    stats.set_window(super::super::Window::SinceReset);
    assert_eq!(stats.window_start(now, origin), origin);
}
