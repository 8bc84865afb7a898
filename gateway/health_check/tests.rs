use super::*;

const LIMIT: Duration = Duration::from_millis(200);

#[test]
fn each_outcome_says_its_cause_first_and_up_says_nothing() {
    let failure = |outcome: CheckOutcome| outcome.failure();
    assert_eq!(failure(CheckOutcome::from_serving_status(1)), None);
    assert_eq!(
        failure(CheckOutcome::from_serving_status(2)).as_deref(),
        Some("NOT_SERVING")
    );
    assert_eq!(
        failure(CheckOutcome::from_serving_status(3)).as_deref(),
        Some("SERVICE_UNKNOWN")
    );
    assert_eq!(
        failure(CheckOutcome::from_serving_status(0)).as_deref(),
        Some("UNKNOWN")
    );
    assert_eq!(
        failure(CheckOutcome::Unreachable("connection refused".into())).as_deref(),
        Some("connection refused")
    );
    assert_eq!(
        failure(CheckOutcome::NoAnswer(MAX_CHECK_TIME)).as_deref(),
        Some("no answer within 1s")
    );
    assert_eq!(
        failure(CheckOutcome::NoAnswer(LIMIT)).as_deref(),
        Some("no answer within 200ms")
    );
}

#[test]
fn a_server_without_the_health_service_is_up_and_other_statuses_are_named() {
    let from = |code, message: &str| CheckOutcome::from_status(code, message, LIMIT);
    assert_eq!(from(tonic::Code::Unimplemented, "no such service"), CheckOutcome::Up);
    assert_eq!(
        from(tonic::Code::NotFound, "service not registered")
            .failure()
            .as_deref(),
        Some("SERVICE_UNKNOWN")
    );
    assert_eq!(
        from(tonic::Code::DeadlineExceeded, "Timeout expired")
            .failure()
            .as_deref(),
        Some("no answer within 200ms")
    );
    assert_eq!(
        from(tonic::Code::Unavailable, "draining\u{1b}[2J").failure().as_deref(),
        Some("UNAVAILABLE: draining[2J")
    );
    assert_eq!(from(tonic::Code::Internal, "").failure().as_deref(), Some("INTERNAL"));
}

#[test]
fn the_check_limit_is_the_interval_at_most_one_second() {
    assert_eq!(check_limit(Duration::from_millis(200)), LIMIT);
    assert_eq!(check_limit(Duration::from_secs(5)), MAX_CHECK_TIME);
}

#[test]
fn only_a_change_of_up_down_or_cause_is_a_change() {
    let mut health = EndpointHealth::default();
    let refused = CheckOutcome::Unreachable("connection refused".into());
    // The first check passing: nothing shown changes, only its time.
    assert!(!health.record(&CheckOutcome::Up, 100));
    assert_eq!(
        health,
        EndpointHealth {
            failure: None,
            checked_unix_us: 100,
            failing_since_unix_us: 0
        }
    );
    assert!(health.record(&CheckOutcome::NoAnswer(LIMIT), 200), "up -> down");
    assert!(
        !health.record(&CheckOutcome::NoAnswer(LIMIT), 300),
        "the same failure again"
    );
    assert!(health.record(&refused, 400), "another cause");
    assert_eq!(
        health,
        EndpointHealth {
            failure: Some("connection refused".into()),
            checked_unix_us: 400,
            failing_since_unix_us: 200,
        },
        "failing without a break since the first failure"
    );
    assert!(health.record(&CheckOutcome::Up, 500), "down -> up");
    assert_eq!(
        health,
        EndpointHealth {
            failure: None,
            checked_unix_us: 500,
            failing_since_unix_us: 0
        }
    );
    assert!(health.record(&refused, 600));
    assert_eq!(health.failing_since_unix_us, 600, "a new run of failures");
}

#[test]
fn the_board_fills_checked_endpoints_and_forgets_unlisted_ones() {
    let board = HealthBoard::default();
    assert!(board.record("a:1", &CheckOutcome::Unreachable("connection refused".into()), 10));
    assert!(!board.record("b:1", &CheckOutcome::Up, 20));
    let endpoint = |address: &str| observe::Endpoint {
        address: address.into(),
        ..Default::default()
    };
    let mut endpoints = vec![endpoint("a:1"), endpoint("b:1"), endpoint("c:1")];
    board.fill(&mut endpoints);
    let fields: Vec<(&str, &str, i64, i64)> = endpoints
        .iter()
        .map(|e| {
            (
                e.address.as_str(),
                e.health_failure.as_str(),
                e.health_checked_unix_us,
                e.health_failing_since_unix_us,
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("a:1", "connection refused", 10, 10),
            ("b:1", "", 20, 0),
            ("c:1", "", 0, 0)
        ]
    );
    assert_eq!(board.failing(["a:1", "b:1", "c:1"]), 1);
    assert_eq!(board.failing(["b:1", "c:1"]), 0, "only listed endpoints count");
    board.retain(|address| address != "a:1");
    assert_eq!(board.failing(["a:1"]), 0);
    let mut endpoints = vec![endpoint("a:1")];
    board.fill(&mut endpoints);
    assert_eq!(endpoints, [endpoint("a:1")]);
    assert!(
        board.record("a:1", &CheckOutcome::Unreachable("connection refused".into()), 30),
        "listed again: a first failure again"
    );
}
