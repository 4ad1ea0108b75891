//! The conformance fixture's binary starts, listens and stops cleanly on SIGTERM, and names a
//! missing variable (the network suites deploy this very build).

use std::path::Path;

use fabric_shim::server::env;
use fabric_shim::server_binary::{RunningServer, run_with};

const BINARY: &str = env!("CARGO_BIN_EXE_fabric-shim-conformance");

#[test]
fn a_missing_package_id_is_named_and_exits_1() {
    let out = run_with(Path::new(BINARY), &[(env::ADDRESS, "127.0.0.1:9")]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fabric-shim-conformance:") && stderr.contains(env::ID),
        "{stderr}"
    );
}

#[test]
fn serves_then_stops_cleanly_on_sigterm() {
    let server = RunningServer::start(Path::new(BINARY), "conformance:abc").unwrap();
    let status = server.terminate().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
}
