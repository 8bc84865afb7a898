//! What the routes (route.rs) see of the upstream: the mode's pool, the
//! connection through the Service, and where a pool's change is told.

use std::sync::Arc;

use tokio::time::Instant;

use super::route::Pools;
use super::{EndpointConn, Upstream, UpstreamError};
use crate::balancer::Balancer;
use crate::connection::raw_h2;
use crate::in_flight::Sending;
use greet_proto::Mode;

/// The routes both front doors take run over the upstream's pools.
impl Pools for Upstream {
    type Member = EndpointConn;
    type Conn = raw_h2::RawH2;

    fn pool(&self, mode: Mode) -> &Balancer<EndpointConn> {
        Upstream::pool(self, mode)
    }

    fn connection_of(member: &EndpointConn) -> Result<&Arc<raw_h2::RawH2>, &str> {
        match member {
            Ok(conns) => Ok(&conns.raw),
            Err(message) => Err(message),
        }
    }

    fn pool_changed(&self, mode: Mode) {
        Upstream::pool_changed(self, mode);
    }

    fn nowhere(&self, mode: Mode) -> UpstreamError {
        match mode {
            Mode::Dns => UpstreamError::NoDnsAnswer(self.dns.no_address_message()),
            mode => self.no_endpoints(mode),
        }
    }

    fn sticky(&self) -> (Arc<raw_h2::RawH2>, &str) {
        (Arc::clone(self.sticky.raw()), self.sticky.target())
    }

    fn sticky_sending(&self, sent: Instant) -> Sending {
        self.sticky.sending(sent)
    }

    fn sticky_replied_from(&self, pod: &str) {
        self.sticky.replied_from(pod);
    }

    fn sticky_pod(&self) -> Option<String> {
        self.sticky.pod()
    }
}
