//! The wire: `proto/*.proto` compiled by `build.rs`, and what both ends of
//! it share: the article's reply text, the latency buckets of the Observer's histograms, the mode's
//! wire form, gRPC status codes, the limits a summary keeps to, and the
//! sanitising of text that arrives from the network.

pub mod greeting_text;
pub mod grpc_code;
pub mod latency_buckets;
pub mod limits;
pub mod mode;
pub mod sanitize;

pub use mode::Mode;

#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod greet {
    tonic::include_proto!("greet");
}

#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod observe {
    tonic::include_proto!("greet.observe.v1");
}

/// Encoded descriptors of every proto file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("greet_descriptor");
