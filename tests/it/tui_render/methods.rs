//! The panel of requests by method and pod: over the screen's window,
//! busiest first, and saying what it leaves out.

use std::time::Instant;

use greet_proto::observe::{self, event};
use greet_top::state::AppEvent;

use super::{PODS, Stream, at, connected, draw, stream_event};

/// A gateway whose three pods were each called on four methods through
/// the ingress, `calls` times each, and on REST's POST /greet 990 times
/// more on the first pod: 13 rows, POST /greet 92 % of the traffic.
fn thirteen_rows(calls: u64, greets: u64) -> AppEvent {
    let pods = PODS
        .iter()
        .enumerate()
        .map(|(i, (name, ip))| {
            let mut methods: Vec<observe::MethodCount> = ["/a.A/One", "/a.A/Two", "/b.B/Three", "/b.B/Four"]
                .iter()
                .map(|method| observe::MethodCount {
                    method: (*method).into(),
                    requests: calls,
                    errors: 0,
                })
                .collect();
            let rest = if i == 0 { greets } else { 0 };
            if rest > 0 {
                methods.push(observe::MethodCount {
                    method: String::new(),
                    requests: rest,
                    errors: 0,
                });
            }
            observe::PodSummary {
                pod_name: (*name).into(),
                pod_ip: (*ip).into(),
                endpoint: format!("{ip}:50051"),
                requests: 4 * calls + rest,
                methods,
                ..observe::PodSummary::default()
            }
        })
        .collect();
    stream_event(
        event::Kind::Summary(observe::Summary {
            pods,
            ..observe::Summary::default()
        }),
        Stream::Summaries,
    )
}

#[test]
fn the_busiest_methods_come_first_and_the_rest_is_counted_not_hidden() {
    let t0 = Instant::now();
    let mut app = connected(t0);
    app.update(thirteen_rows(0, 0), at(t0, 250));
    // Long ago: 50 calls of each method, which leave the window.
    app.update(thirteen_rows(50, 0), at(t0, 500));
    // The last seconds: 3 more of each, and 990 POST /greet.
    app.update(thirteen_rows(53, 990), at(t0, 20_000));
    let now = at(t0, 21_000);
    app.tick(now);
    let screen = draw(&app, now, 80, 24);
    let panel: Vec<&str> = screen
        .lines()
        .skip_while(|line| !line.contains("Hits by method and pod"))
        .take_while(|line| !line.contains("└"))
        .collect();
    assert_eq!(
        panel,
        [
            "\"┌ Hits by method and pod, busiest first ───────────────────────────────────────┐\"",
            "\"│METHOD       POD                                     HITS     ERR             │\"",
            "\"│POST /greet  greetserver-deploy-7595ccbdd5-67bmd      990       0             │\"",
            "\"│/a.A/One     greetserver-deploy-7595ccbdd5-67bmd        3       0             │\"",
            "\"│/a.A/One     greetserver-deploy-7595ccbdd5-k6zbl        3       0             │\"",
            "\"│+10 more rows (30 hits)                                                       │\"",
        ],
        "{screen}"
    );
}
