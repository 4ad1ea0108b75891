//! The fuzz harness, shared by the cargo-fuzz target (`fuzz/fuzz_targets/call.rs`) and the unit
//! test that replays its committed corpus (`tests/fuzz_corpus.rs`). Not part of the API.
//!
//! Input: byte 0 picks the function, byte 1 the caller (administrator, data concentrator, MDMS,
//! Operator admin, a stranger); the rest, split at NUL bytes, are the arguments. The harness
//! parses them and runs the contract against a ledger with the SDK's test-vector meter and MDMS
//! registered, one meter provisioned without a key binding and one bound to the vector meter's
//! key, without committing. Properties: nothing panics; every answer is JSON or an error
//! with a 4xx status (a 500 would mean the contract failed on input, not on the ledger).

use std::sync::OnceLock;

use bcami_sdk::{
    Hid, MdmsRegistrationRequest, MdmsSecretKey, MeterSecretKey, RegistrationRequest, Timestamp,
};
use fabric_shim::memory::MemoryLedger;
use fabric_shim::{Contract, Creator, TxContext, X509Identity};

use bcami_api::{Call, ErrorCode, Function, KeyHash, MAX_BATCH};

use crate::contract::{BcAmi, contract};

/// `sdk/core/tests/vectors/v1.json` inputs: the meter's and the MDMS's secret keys and IDs, and
/// the registration and reading timestamps.
const METER_SECRET: &str = "6f0ffa5c1b35a2a3f9c0e7d4b8a1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3";
const MDMS_SECRET: &str = "3b1c5a7d9e2f4a6b8c0d1e3f5a7b9c2d4e6f8a0b1c3d5e7f9a2b4c6d8e0f1a3b";
const METER_ID: &str = "SM-0001";
const MDMS_ID: &str = "MDMS-UTILITY-1";
/// Provisioned with the hash of the vector meter's key bound.
const BOUND_METER_ID: &str = "SM-0003";
const REGISTRATION_MS: u64 = 1_700_000_000_000;
/// One second after the vector reading's timestamp, so the vector reading is accepted.
const CALL_MS: u64 = 1_700_001_802_234;

fn who(msp: &str, ou: &str) -> Creator {
    Creator::new(
        msp,
        X509Identity::from_parts("CN=fuzz", "CN=ca", &[ou], &[]),
    )
}

fn context(
    tx: &str,
    millis: u64,
    creator: Creator,
    function: &str,
    args: Vec<Vec<u8>>,
) -> TxContext {
    TxContext::new(
        "fuzz",
        tx,
        fabric_shim::Timestamp {
            seconds: i64::try_from(millis / 1000).unwrap_or(i64::MAX),
            nanos: u32::try_from(millis % 1000).unwrap_or(0) * 1_000_000,
        },
        function,
        args,
        creator,
    )
}

fn secret<const N: usize>(hex: &str) -> [u8; N] {
    bcami_api::from_hex(hex).unwrap_or([1; N])
}

/// A ledger with the vector meter provisioned and registered, a second meter only provisioned, a
/// third provisioned with the vector meter key's hash bound (`SM-0003`), and the vector MDMS
/// registered. Built once.
fn ledger() -> &'static (MemoryLedger, BcAmi) {
    static LEDGER: OnceLock<(MemoryLedger, BcAmi)> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let ledger = MemoryLedger::new();
        let c = contract();
        let admin = who("UtilityMSP", "admin");
        let meter = Hid::from_meter_id(METER_ID);
        let other = Hid::from_meter_id("SM-0002");
        let bound = Hid::from_meter_id(BOUND_METER_ID);
        let mdms = Hid::from_meter_id(MDMS_ID);
        let at = Timestamp::from_unix_millis(REGISTRATION_MS);
        let meter_key = MeterSecretKey::from_bytes(&secret(METER_SECRET));
        let binding = meter_key
            .as_ref()
            .map(|k| KeyHash::of_meter_key(&k.public_key()).to_string())
            .unwrap_or_default();
        let mut steps: Vec<(Creator, &str, String)> = vec![
            (admin.clone(), Function::ProvisionMdms.name(), mdms.to_string()),
            (
                admin,
                Function::ProvisionMeters.name(),
                format!(
                    r#"{{"meters":["{meter}","{other}",{{"hid":"{bound}","keyHash":"{binding}"}}]}}"#
                ),
            ),
        ];
        if let Ok(key) = meter_key {
            if let Ok(r) = RegistrationRequest::build(&key, meter, at) {
                steps.push((
                    who("OperatorMSP", "client"),
                    Function::RegisterMeter.name(),
                    b64(&r.encode()),
                ));
            }
        }
        if let Ok(key) = MdmsSecretKey::from_bytes(&secret(MDMS_SECRET)) {
            if let Ok(r) = MdmsRegistrationRequest::build(&key, mdms, at) {
                steps.push((
                    who("UtilityMSP", "client"),
                    Function::RegisterMdmsKey.name(),
                    b64(&r.encode()),
                ));
            }
        }
        for (i, (creator, function, arg)) in steps.into_iter().enumerate() {
            let ctx = context(
                &format!("setup{i}"),
                REGISTRATION_MS,
                creator,
                function,
                vec![arg.into_bytes()],
            );
            // Set-up of fixed, valid data; a failure shows up as rejected calls, not a crash.
            let _ = ledger.invoke(&c, ctx);
        }
        (ledger, c)
    })
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Run one input through the contract; `None` if it is too short to name a function and caller.
fn run(data: &[u8]) -> Option<(Function, Result<Vec<u8>, fabric_shim::ContractError>)> {
    let [f, c, rest @ ..] = data else { return None };
    let function = Function::ALL[usize::from(*f) % Function::ALL.len()];
    let creator = match c % 5 {
        0 => who("UtilityMSP", "admin"),
        1 => who("OperatorMSP", "client"),
        2 => who("UtilityMSP", "client"),
        3 => who("OperatorMSP", "admin"),
        _ => who("OtherMSP", "client"),
    };
    let args: Vec<Vec<u8>> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
    };
    if let Ok(Call::SubmitReadings(batch)) = Call::parse(function, &args) {
        assert!(!batch.is_empty() && batch.len() <= MAX_BATCH);
    }
    let (ledger, c) = ledger();
    // Never committed: every input sees the same ledger.
    let mut stub = ledger.begin(context("fuzz", CALL_MS, creator, function.name(), args));
    Some((function, c.invoke(&mut stub)))
}

/// Run one fuzz input; panics if a property fails.
pub fn call(data: &[u8]) {
    let Some((function, result)) = run(data) else {
        return;
    };
    match result {
        Ok(payload) => {
            assert!(serde_json::from_slice::<serde_json::Value>(&payload).is_ok());
        }
        Err(e) => {
            let code = e.status().code();
            assert!((400..500).contains(&code), "{function:?}: {e}");
        }
    }
}

/// What the contract answers an input with: success, or the error code of its message (`None`
/// if the message carries none): for the corpus test.
pub fn outcome(data: &[u8]) -> Option<Result<(), Option<ErrorCode>>> {
    let (_, result) = run(data)?;
    Some(match result {
        Ok(_) => Ok(()),
        Err(e) => Err(ErrorCode::split(e.message()).map(|(code, _)| code)),
    })
}

/// Whether the first element of a `SubmitReadings` input was `accepted` or `rejected`, for the
/// corpus test.
pub fn submit_status(data: &[u8]) -> Option<String> {
    let (_, result) = run(data)?;
    let response: serde_json::Value = serde_json::from_slice(&result.ok()?).ok()?;
    let first_rejected = response["rejections"]
        .as_array()?
        .iter()
        .any(|r| r["index"] == 0);
    Some(
        if first_rejected {
            "rejected"
        } else {
            "accepted"
        }
        .to_owned(),
    )
}
