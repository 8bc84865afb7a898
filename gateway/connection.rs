//! The gateway's connections to its upstreams: one HTTP/2 connection per
//! endpoint (and one through the Service), made when first needed and made
//! again when it breaks (`raw_h2`); the gRPC ingress passes calls through
//! it, and REST's Greet calls and the health checks make unary calls on it
//! (`unary`). Below routing and health checks alike: it knows no mode.

pub(crate) mod raw_h2;
pub(crate) mod unary;
