//! A gateway with no pod: requests are counted straight into its hub (the
//! tests publish them as the request path would), so counts are exact and fast.

use std::net::SocketAddr;

use greet_demo::GatewaySpec;
use greet_gateway::GatewayHandle;
use greet_gateway::discovery;
use greet_proto::Mode;

/// Any free port on 127.0.0.1.
pub const ANY_PORT: &str = "127.0.0.1:0";

/// A balanced gateway with no pod, its Observer on `observe`.
pub async fn gateway_on(observe: &str) -> GatewayHandle {
    let observe: SocketAddr = observe.parse().expect("a socket address");
    let spec = GatewaySpec {
        mode: Mode::Balanced,
        observe_addr: observe,
        ..GatewaySpec::default()
    };
    spec.start(
        "127.0.0.1:9".into(),
        discovery::static_endpoints(Default::default()),
        Default::default(),
    )
    .await
    .unwrap()
}
