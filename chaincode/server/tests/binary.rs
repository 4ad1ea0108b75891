//! The `bcami-chaincode` binary as the peer runs it: configuration errors name the variable and
//! exit 1; a configured server listens and shuts down cleanly (exit 0) on SIGTERM.

use std::path::Path;

use fabric_shim::server::env;
use fabric_shim::server_binary::{RunningServer, run_with};

const BINARY: &str = env!("CARGO_BIN_EXE_bcami-chaincode");

#[test]
fn a_missing_address_is_named_and_exits_1() {
    let out = run_with(Path::new(BINARY), &[(env::ID, "bcami:abc")]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bcami-chaincode: invalid chaincode server configuration"),
        "{stderr}"
    );
    assert!(stderr.contains(env::ADDRESS), "{stderr}");
}

#[test]
fn a_package_id_without_a_hash_is_refused() {
    let out = run_with(
        Path::new(BINARY),
        &[(env::ADDRESS, "127.0.0.1:9"), (env::ID, "bcami")],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(env::ID) && stderr.contains("bcami"),
        "{stderr}"
    );
}

#[test]
fn a_tls_key_without_its_certificate_is_refused() {
    let out = run_with(
        Path::new(BINARY),
        &[
            (env::ADDRESS, "127.0.0.1:9"),
            (env::ID, "bcami:abc"),
            (env::TLS_KEY, "/nonexistent/key.pem"),
        ],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(env::TLS_CERT), "{stderr}");
}

#[test]
fn serves_then_stops_cleanly_on_sigterm() {
    let server = RunningServer::start(Path::new(BINARY), "bcami:abc").unwrap();
    let status = server.terminate().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
}
