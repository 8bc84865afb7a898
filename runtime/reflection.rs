//! Server reflection in both versions clients speak: `grpc.reflection.v1`
//! (grpcurl, tonic) and `v1alpha` (the Python reflection client, older
//! grpcurl and GUI clients, which get UNIMPLEMENTED without it). Each binary
//! lists only the services it serves: both protos share one descriptor set,
//! so without a list greet-server would advertise the Observer too.

use anyhow::Context;
use tonic_reflection::server::{Builder, v1, v1alpha};

/// The reflection services themselves, advertised beside the binary's own.
const REFLECTION: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn builder(services: &[&str]) -> Builder<'static> {
    let mut builder = Builder::configure()
        .register_encoded_file_descriptor_set(greet_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false)
        .with_service_name("grpc.health.v1.Health");
    for name in services.iter().chain(REFLECTION.iter()) {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// Reflection v1 and v1alpha listing `services` (fully qualified), health
/// and reflection.
#[allow(clippy::type_complexity, reason = "the two generated server types, named once here")]
pub fn services(
    services: &[&str],
) -> anyhow::Result<(
    v1::ServerReflectionServer<impl v1::ServerReflection>,
    v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
)> {
    let v1 = builder(services)
        .build_v1()
        .context("building the gRPC reflection service (v1)")?;
    let v1alpha = builder(services)
        .build_v1alpha()
        .context("building the gRPC reflection service (v1alpha)")?;
    Ok((v1, v1alpha))
}
