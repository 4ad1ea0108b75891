//! Builds `tests/c/session.c` with the system C compiler against the static library and plays
//! the head-end (the Rust `bcami_sdk::session` API) against the C meter over its stdin/stdout.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};

use std::process::{Command, Stdio};

use bcami_sdk::rand_core::{CryptoRng, Error, RngCore};
use bcami_sdk::session::{
    HeadEnd, HeadEndPolicy, MeterRecord, MeterStatus, SessionConfirm, SessionInit,
};
use bcami_sdk::{HeadEndSecretKey, Hid, MeterSecretKey, Timestamp};

/// The head-end's RNG (a test stand-in for the OS RNG): splitmix64, deterministic.
struct CounterRng(u64);
impl RngCore for CounterRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for CounterRng {}

fn expect_line(lines: &mut impl Iterator<Item = std::io::Result<String>>, label: &str) -> String {
    let line = lines
        .next()
        .unwrap_or_else(|| panic!("C meter closed its output before {label}"))
        .unwrap();
    line.strip_prefix(label)
        .and_then(|rest| rest.strip_prefix(' '))
        .unwrap_or_else(|| panic!("expected {label}, got {line:?}"))
        .to_string()
}

#[test]
fn c_meter_completes_a_session_with_the_rust_head_end() {
    let exe = common::compile_c_program("session.c", "bcami-c-session");

    // The ledger's view: the C meter's registered key (the C program derives it from this
    // entropy) and the head-end.
    let hid = Hid::from_meter_id("SM-C-0002");
    let meter_key: Vec<u8> = (0..32u8).map(|i| 0x21 + i).collect();
    let meter_public = MeterSecretKey::from_entropy(&meter_key)
        .unwrap()
        .public_key();
    let directory = BTreeMap::from([(
        hid,
        MeterRecord {
            public_key: meter_public,
            key_version: 3,
            status: MeterStatus::Active,
        },
    )]);
    let head_end = HeadEnd::new(
        Hid::from_meter_id("AHE-C-TEST"),
        HeadEndSecretKey::from_entropy(&[0x4e; 32]).unwrap(),
        HeadEndPolicy::default(),
    );
    let identity = head_end.identity();

    let mut child = Command::new(&exe)
        .arg(hex::encode(identity.id.as_bytes()))
        .arg(hex::encode(identity.public_key.to_bytes()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_meter = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let init = SessionInit::decode(&hex::decode(expect_line(&mut lines, "init")).unwrap()).unwrap();
    assert_eq!(init.hid(), hid);
    let (pending, response) = head_end
        .respond(
            &mut CounterRng(0),
            &init,
            &directory,
            Timestamp::from_unix_millis(1_700_000_000_000),
        )
        .unwrap();
    writeln!(to_meter, "response {}", hex::encode(response.encode())).unwrap();
    to_meter.flush().unwrap();

    let confirm =
        SessionConfirm::decode(&hex::decode(expect_line(&mut lines, "confirm")).unwrap()).unwrap();
    let mut session = pending.finish(&confirm, &directory).unwrap();
    assert_eq!(session.meter_key_version(), Some(3));
    let aad = b"BC-AMI C session test";
    let sealed = hex::decode(expect_line(&mut lines, "sealed")).unwrap();
    assert_eq!(session.open(aad, &sealed).unwrap(), b"interval 412 Wh");

    let command = session
        .seal(aad, b"tariff: 0.21 EUR/kWh from 00:00")
        .unwrap();
    writeln!(to_meter, "command {}", hex::encode(&command)).unwrap();
    to_meter.flush().unwrap();
    assert_eq!(
        hex::decode(expect_line(&mut lines, "opened")).unwrap(),
        b"tariff: 0.21 EUR/kWh from 00:00"
    );
    assert_eq!(
        expect_line(&mut lines, "replay"),
        (bcami::bcami_result::Replayed as u32).to_string()
    );
    assert_eq!(
        expect_line(&mut lines, "tampered"),
        (bcami::bcami_result::DecryptFailed as u32).to_string()
    );
    drop(to_meter);
    let status = child.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "C meter failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
}
