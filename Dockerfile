# syntax=docker/dockerfile:1
# One image, three binaries: greet-server, greet-gateway, greet-top.
#   docker build -t greet-top:0.1.0 .   (the tag k8s/ pins: the crate's version)
# The k8s/ manifests pick the binary with `command:`.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# jemalloc (the servers' allocator, runtime/allocator.rs) builds with make,
# which the slim image lacks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# No protoc needed: build.rs compiles proto/ with protox.
# target/ lives in a cache mount, so copy the binaries out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/greet-server target/release/greet-gateway target/release/greet-top /out/

# glibc + libgcc, no shell, uid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# 50051 greet-server gRPC, 9090 greet-server metrics, 9091 gateway REST (and
# its /metrics), 9092 gateway Observer gRPC.
EXPOSE 50051 9090 9091 9092
# Default binary; override with `command:` (Kubernetes) or --entrypoint (docker).
ENTRYPOINT ["/usr/local/bin/greet-server"]
