use std::time::Duration;

use super::Player;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn plays_at_its_speed_and_stops_at_the_end() {
    let mut player = Player::new(secs(0), secs(600));
    player.advance(Duration::from_millis(1500));
    assert_eq!(player.position(), Duration::from_millis(1500));
    player.change_speed(true);
    player.change_speed(true);
    assert_eq!(player.speed_text(), "4×");
    player.advance(secs(10));
    assert_eq!(player.position(), Duration::from_millis(41_500));
    player.advance(secs(1000));
    assert_eq!(player.position(), secs(600));
    assert!(player.paused(), "the end pauses");
    player.toggle_pause();
    assert_eq!(player.position(), secs(0), "play at the end starts over");
    assert!(!player.paused());
}

#[test]
fn paused_it_stays_put() {
    let mut player = Player::new(secs(0), secs(60));
    player.toggle_pause();
    player.advance(secs(30));
    assert_eq!(player.position(), secs(0));
    assert!(player.paused());
    player.toggle_pause();
    player.advance(secs(3));
    assert_eq!(player.position(), secs(3));
}

#[test]
fn seeks_stay_within_the_recording() {
    let mut player = Player::new(secs(20), secs(200));
    player.seek_by(10);
    assert_eq!(player.position(), secs(30));
    player.seek_by(-60);
    assert_eq!(player.position(), secs(20), "not before the first frame");
    player.seek_by(60);
    player.seek_by(60);
    player.seek_by(60);
    assert_eq!(player.position(), secs(200), "not past the last");
    player.seek_to(secs(77));
    assert_eq!(player.position(), secs(77));
    player.seek_to(secs(5));
    assert_eq!(player.position(), secs(20));
}

#[test]
fn speeds_run_from_a_quarter_to_sixteen() {
    let mut player = Player::new(secs(0), secs(100));
    let mut seen = vec![player.speed_text()];
    for _ in 0..8 {
        player.change_speed(true);
        seen.push(player.speed_text());
    }
    assert_eq!(seen, ["1×", "2×", "4×", "8×", "16×", "16×", "16×", "16×", "16×"]);
    for _ in 0..8 {
        player.change_speed(false);
    }
    assert_eq!(player.speed_text(), "¼×");
    player.advance(secs(4));
    assert_eq!(player.position(), secs(1));
}
