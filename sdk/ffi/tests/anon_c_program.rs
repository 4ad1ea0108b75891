//! Builds `tests/c/anon.c` with the system C compiler against the static library: the C meter
//! makes a join request, the Rust issuer signs it, the C meter builds anonymous readings, and
//! the Rust verifier accepts them.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use bcami_anon::{IssuerPublicKey, IssuerSecretKey, JoinRequest, Presentation, Zk};

fn run(exe: &Path, args: &[String]) -> String {
    let out = Command::new(exe).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "C meter failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn hex_lines(stdout: &str, label: &str) -> Vec<Vec<u8>> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(label))
        .map(|h| hex::decode(h.trim()).unwrap())
        .collect()
}

#[test]
fn c_meter_joins_and_reads_anonymously() {
    let exe = common::compile_c_program("anon.c", "bcami-c-anon");

    let issuer = IssuerSecretKey::<Zk>::from_bytes(&[0x5a; 32], 4).unwrap();
    let ipk_hex = hex::encode(issuer.public_key().encode());
    let nonce = [0x77u8; 32];

    let join = run(&exe, &["join".into(), ipk_hex.clone(), hex::encode(nonce)]);
    let request = JoinRequest::<Zk>::decode(&hex_lines(&join, "join ")[0]).unwrap();
    assert_eq!(request.hid(), &[0x11; 32]);
    let credential = issuer.issue(&request, &nonce).unwrap();

    let read = run(
        &exe,
        &["read".into(), ipk_hex, hex::encode(credential.encode())],
    );
    let readings = hex_lines(&read, "reading ");
    assert_eq!(readings.len(), 2);
    let ipk = IssuerPublicKey::<Zk>::decode(&issuer.public_key().encode()).unwrap();
    let mut pseudonyms = Vec::new();
    for wire in &readings {
        let p = Presentation::<Zk>::decode(wire).unwrap();
        p.verify(&ipk).unwrap();
        assert_eq!(p.report().energy_wh, 412);
        assert_eq!(p.epoch(), 4);
        pseudonyms.push(p.pseudonym());
    }
    // Two periods: two unlinkable pseudonyms.
    assert_ne!(pseudonyms[0], pseudonyms[1]);
}
