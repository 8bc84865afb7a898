//! Generated wire types: `proto/*.proto` compiled by `build.rs`.

#![allow(clippy::all, missing_docs)]

pub mod greet {
    tonic::include_proto!("greet");
}

pub mod observe {
    tonic::include_proto!("greet.observe.v1");
}

/// Encoded descriptors of every proto file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("greet_descriptor");
