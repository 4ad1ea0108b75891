//! Property: random valid batches interleaved with random corruptions → exactly the valid
//! readings are stored, in time order, and each rejection carries the right reason. The expected
//! outcome comes from a small independent model of the rules (README `SubmitReadings`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_api::{Function, RejectReason};
use bcami_sdk::MeterSecretKey;
use common::*;
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone, Copy)]
enum Corruption {
    None,
    FlipCiphertext,
    FlipHeader,
    ForeignKey,
    Stale,
    Future,
    Truncate,
    NotBase64,
}

#[derive(Debug, Clone)]
struct Element {
    /// 0..3 registered meters, 3 = a meter that was never provisioned.
    meter: usize,
    /// Milliseconds after this meter's previous intended timestamp (0 = same timestamp again).
    step: u64,
    corruption: Corruption,
}

fn element() -> impl Strategy<Value = Element> {
    let corruption = prop_oneof![
        6 => Just(Corruption::None),
        1 => Just(Corruption::FlipCiphertext),
        1 => Just(Corruption::FlipHeader),
        1 => Just(Corruption::ForeignKey),
        1 => Just(Corruption::Stale),
        1 => Just(Corruption::Future),
        1 => Just(Corruption::Truncate),
        1 => Just(Corruption::NotBase64),
    ];
    (
        prop_oneof![9 => 0usize..3, 1 => Just(3usize)],
        0u64..3,
        corruption,
    )
        .prop_map(|(meter, step, corruption)| Element {
            meter,
            step,
            corruption,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn exactly_the_valid_readings_are_stored_in_time_order(
        batches in proptest::collection::vec(proptest::collection::vec(element(), 1..12), 1..4)
    ) {
        let mut env = Env::new();
        let meters: Vec<Meter> = (1..=4).map(Meter::new).collect();
        env.setup(&[&meters[0], &meters[1], &meters[2]]);
        let mdms = mdms_key();
        let foreign = MeterSecretKey::from_entropy(&[0xf0; 32]).unwrap();
        let registered_at = T0_MS - 1000;

        // Model state: last accepted timestamp per meter, and what must be stored.
        let mut last: BTreeMap<usize, u64> = (0..3).map(|m| (m, registered_at)).collect();
        let mut intended: BTreeMap<usize, u64> = (0..4).map(|m| (m, env.now_ms - 5_000)).collect();
        let mut stored: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        let mut total = 0u64;

        for batch in batches {
            let now = env.now_ms;
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for e in &batch {
                let next = intended[&e.meter] + e.step;
                intended.insert(e.meter, next);
                let ts = match e.corruption {
                    Corruption::Stale => now - 300_001,
                    Corruption::Future => now + 60_001,
                    _ => next,
                };
                let meter = &meters[e.meter];
                let mut bytes = match e.corruption {
                    Corruption::ForeignKey => Meter { id: meter.id.clone(), hid: meter.hid, key: foreign.clone() }
                        .reading_bytes(ts, &mdms),
                    _ => meter.reading_bytes(ts, &mdms),
                };
                match e.corruption {
                    Corruption::FlipCiphertext => bytes[44 + 33 + 3] ^= 0x80,
                    // A header byte inside the timestamp: the signature no longer covers it.
                    Corruption::FlipHeader => bytes[41] ^= 0x01,
                    Corruption::Truncate => { bytes.pop(); }
                    _ => {}
                }
                let text = match e.corruption {
                    Corruption::NotBase64 => format!("!{}", STANDARD.encode(&bytes)),
                    _ => STANDARD.encode(&bytes),
                };
                wire.push(text);
                // The model, in the contract's documented order of checks.
                let header_ts = match e.corruption {
                    Corruption::FlipHeader => ts ^ 0x01,
                    _ => ts,
                };
                let reason = match e.corruption {
                    Corruption::NotBase64 => Some(RejectReason::BadBase64),
                    Corruption::Truncate => Some(RejectReason::Malformed),
                    _ if e.meter == 3 => Some(RejectReason::UnknownMeter),
                    _ if header_ts + 300_000 < now => Some(RejectReason::Stale),
                    _ if header_ts > now + 60_000 => Some(RejectReason::Future),
                    _ if header_ts <= last[&e.meter] => Some(RejectReason::Replayed),
                    Corruption::FlipCiphertext | Corruption::FlipHeader | Corruption::ForeignKey => {
                        Some(RejectReason::BadSignature)
                    }
                    _ => None,
                };
                if reason.is_none() {
                    last.insert(e.meter, ts);
                    stored.entry(e.meter).or_default().push(ts);
                    total += 1;
                }
                expected.push(reason);
            }
            let response = env.submit(&wire);
            prop_assert_eq!(reasons(&response), expected);
            env.now_ms += 1_000;
        }

        for (m, meter) in meters.iter().enumerate().take(3) {
            let q = json!({"hid": meter.hex(), "pageSize": 1000}).to_string();
            let page = env.ok(admin(), Function::GetReadings, &[&q]);
            let got: Vec<u64> = page["readings"].as_array().unwrap().iter()
                .map(|r| r["timestamp"].as_u64().unwrap()).collect();
            let want = stored.get(&m).cloned().unwrap_or_default();
            prop_assert!(want.windows(2).all(|w| w[0] < w[1]), "model stored out of order");
            prop_assert_eq!(got, want);
        }
        let counts = env.ok(admin(), Function::GetCounts, &[]);
        prop_assert_eq!(counts["readings"].as_u64().unwrap(), total);
    }
}
