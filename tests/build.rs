//! The tests' own streaming gRPC service (proto/echo.proto), and where the
//! binaries they start are: Cargo names `CARGO_BIN_EXE_*` only for a
//! package's own binaries, and these are the server, gateway and greet-top
//! packages'. `cargo test` from the workspace root builds them first: each of
//! those packages has an integration test of its own (tests/cli.rs), and
//! Cargo builds a package's binaries for its integration tests, all before
//! any test runs. (`cargo test -p greet-tests` alone would find old ones.)

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/echo.proto";
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure().compile_fds(protox::compile([proto], ["proto"])?)?;

    // OUT_DIR is <profile dir>/build/<package>-<hash>/out.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let profile_dir = out_dir
        .ancestors()
        .nth(3)
        .ok_or("OUT_DIR is not <profile>/build/<package>/out")?;
    for bin in ["greet-server", "greet-gateway", "greet-top"] {
        let path = profile_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
        println!("cargo:rustc-env=CARGO_BIN_EXE_{bin}={}", path.display());
    }
    Ok(())
}
