//! The receiving side of an established session on attacker-chosen bytes: `Session::open` (record
//! decoding, the sequence window, AES-256-GCM) never panics, and nothing opens that the peer did
//! not seal. The session is the one of the test vectors (tests/vectors/v1.json, `session`), so the
//! committed seed opens.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use bcami_sdk::rand_core::{CryptoRng, Error, RngCore};
use bcami_sdk::session::{
    HeadEnd, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus, Session,
};
use bcami_sdk::{HeadEndSecretKey, Hid, MeterSecretKey, Timestamp};
use libfuzzer_sys::fuzz_target;

/// Hands out exactly the given bytes.
struct Replay(Vec<u8>);
impl RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        unreachable!("only fill_bytes is used")
    }
    fn next_u64(&mut self) -> u64 {
        unreachable!("only fill_bytes is used")
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Replay {}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The head-end's side of the vector session.
fn session() -> &'static Mutex<Session> {
    static SESSION: OnceLock<Mutex<Session>> = OnceLock::new();
    SESSION.get_or_init(|| {
        let key = |hex: &str| -> [u8; 32] { unhex(hex).try_into().expect("32 bytes") };
        let meter_key = MeterSecretKey::from_bytes(&key(
            "6f0ffa5c1b35a2a3f9c0e7d4b8a1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3",
        ))
        .expect("valid key");
        let head_end = HeadEnd::new(
            Hid::from_meter_id("AHE-UTILITY-1"),
            HeadEndSecretKey::from_bytes(&key(
                "4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293",
            ))
            .expect("valid key"),
            HeadEndPolicy::default(),
        );
        let hid = Hid::from_meter_id("SM-0001");
        let directory = BTreeMap::from([(
            hid,
            MeterRecord {
                public_key: meter_key.public_key(),
                key_version: 1,
                status: MeterStatus::Active,
            },
        )]);
        let now = Timestamp::from_unix_millis(1_700_000_100_000);
        let (meter, init) = MeterHandshake::start(
            &mut Replay(unhex("7e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7000102030405060708090a0b0c0d0e0f")),
            hid,
            head_end.identity(),
            now,
        )
        .expect("start");
        let (pending, response) = head_end
            .respond(
                &mut Replay(unhex("2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091af0e0d0c0b0a090807060504030201000")),
                &init,
                &directory,
                now,
            )
            .expect("respond");
        let (_, confirm) = meter.finish(&meter_key, &response).expect("meter finish");
        Mutex::new(pending.finish(&confirm, &directory).expect("head-end finish"))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut session = session()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Ok(plaintext) = session.open(b"BC-AMI example aad", data) {
        // Only the committed genuine record can open; its plaintext is the vector's.
        assert_eq!(plaintext, b"meter status: ok");
    }
});
