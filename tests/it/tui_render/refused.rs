//! A gateway that refuses greet-top's token: said plainly in the header and
//! the verdict, as a state of its own, not as "unreachable".

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use greet_proto::Mode;
use greet_top::state::{App, AppEvent, Refusal};

use super::{GATEWAY, draw, scenario};

fn refused(refusal: Refusal, retry_secs: u64) -> AppEvent {
    AppEvent::Refused {
        gateway: GATEWAY.into(),
        refusal,
        retry_in: Duration::from_secs(retry_secs),
    }
}

#[test]
fn a_gateway_that_wants_a_token_before_the_first_answer_80x24() {
    let t0 = Instant::now();
    let mut app = App::new(GATEWAY, t0).expecting(GATEWAY);
    for (after, retry) in [(0, 1), (1, 1), (2, 2)] {
        app.update(refused(Refusal::NoToken, retry), t0 + Duration::from_secs(after));
    }
    let now = t0 + Duration::from_secs(3);
    app.tick(now);
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("REFUSED — restart with --token or GREET_TOP_TOKEN: the gateway wants a token"),
        "{screen}"
    );
    assert!(screen.contains("✕ refused: the gateway wants a token"), "{screen}");
    assert!(!screen.contains("unreachable"), "{screen}");
    assert!(
        screen.contains("No pods: the gateway refuses greet-top (see above)."),
        "{screen}"
    );
    snapshot!(screen);

    // m says why it cannot switch, not just "not connected".
    assert_eq!(app.on_key(KeyEvent::from(KeyCode::Char('m')), now), None);
    let screen = draw(&app, now, 80, 24);
    assert!(
        screen.contains("cannot switch mode: refused: the gateway wants a token"),
        "{screen}"
    );
}

#[test]
fn a_gateway_that_refuses_the_token_after_sticky_traffic_120x40() {
    let (mut app, now) = scenario(Mode::Sticky);
    app.update(refused(Refusal::WrongToken, 1), now);
    let now = now + Duration::from_secs(1);
    app.tick(now);
    let screen = draw(&app, now, 120, 40);
    assert!(
        screen.contains("✕ refused: wrong token — check --token or GREET_TOP_TOKEN"),
        "{screen}"
    );
    assert!(
        screen.contains("REFUSED — check --token or GREET_TOP_TOKEN: the gateway says the token is wrong"),
        "{screen}"
    );
    snapshot!(screen);
}
