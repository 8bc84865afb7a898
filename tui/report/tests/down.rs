//! A pod whose health checks fail reads `down` in `--once`, with the cause.

use std::time::{Duration, Instant};

use super::*;
use crate::state::test_events::{health_checked, synced_app};

#[test]
fn a_down_pod_is_not_ready_and_its_cause_is_in_the_json() {
    let t0 = Instant::now() - Duration::from_secs(1);
    let mut app = synced_app(t0);
    app.update(health_checked(1, &[("pod-c", "connection refused")]), t0);
    let report = build(&app, Duration::from_secs(1));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let pod_c = &json["pods"][2];
    assert_eq!(
        (&pod_c["name"], &pod_c["readiness"], &pod_c["ready"], &pod_c["down"]),
        (
            &"pod-c".into(),
            &"down".into(),
            &false.into(),
            &"connection refused".into()
        )
    );
    assert!(json["pods"][0].get("down").is_none(), "only when down");
    assert_eq!(json["pods"][0]["readiness"], "yes");
    assert!(
        report.diagnosis.ends_with("; connection refused: pod-c down"),
        "{}",
        report.diagnosis
    );
}
