//! The zero-window attacker: INITIAL_WINDOW_SIZE 0, never a WINDOW_UPDATE,
//! calls whose answers are larger than an upstream stream's window. Its
//! responses are reset after the stall timeout, and the shared upstream
//! connection keeps serving everyone else meanwhile.

use std::time::Duration;

use bytes::Bytes;
use greet_proto::Mode;
use tokio::time::Instant;

use super::frames::{GREET, greet_message};
use super::{ingress_channel, support};

const CALLS: usize = 24;
/// Each answer echoes it: 4 upstream stream windows (256 KiB) and more.
const NAME_BYTES: usize = 1024 * 1024;
/// The ingress's default (docs/hardening.md).
const STALL_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_opens_its_window_stops_no_one_else() {
    let cluster = support::cluster(1, Mode::Sticky).await;
    let addr = cluster.gateway.grpc_addr;

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (attacker, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(connection);
    let name = "x".repeat(NAME_BYTES);
    let started = Instant::now();
    let mut bodies = Vec::new();
    for _ in 0..CALLS {
        let mut attacker = attacker.clone().ready().await.unwrap();
        let request = http::Request::post(format!("http://gateway{GREET}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut body) = attacker.send_request(request, false).unwrap();
        body.send_data(Bytes::from(greet_message(&name)), true).unwrap();
        bodies.push((response, body));
    }
    let mut responses = Vec::new();
    for (response, _body) in bodies {
        let response = tokio::time::timeout(Duration::from_secs(10), response)
            .await
            .expect("an answer's head needs no window")
            .unwrap();
        assert_eq!(response.status(), 200);
        responses.push(response.into_body());
    }

    // Meanwhile another client's calls all go through, on the same upstream connection.
    let mut client = greet_proto::greet::greet_service_client::GreetServiceClient::new(ingress_channel(addr).await);
    let mut ok = 0;
    for i in 0..200 {
        if client.greet(super::greeting(&format!("calm-{i}"))).await.is_ok() {
            ok += 1;
        }
    }
    assert!(
        ok >= 198,
        "{ok} of 200 calls succeeded while the attacker held its windows shut"
    );

    // The attacker's answers are reset (CANCEL) once their window stayed shut for the stall timeout.
    for mut body in responses {
        let reason = tokio::time::timeout(Duration::from_secs(20), body.data())
            .await
            .expect("a stalled answer must be reset")
            .and_then(Result::err)
            .and_then(|err| err.reason());
        assert_eq!(reason, Some(h2::Reason::CANCEL));
    }
    let took = started.elapsed();
    assert!(took >= STALL_TIMEOUT && took < 2 * STALL_TIMEOUT, "{took:?}");
    cluster.shutdown().await;
}
