//! Fixtures shared by the contract's tests: identities, an in-memory ledger driver, and
//! messages built with the SDK.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_api::{ErrorCode, Function, RejectReason};
use bcami_contract::{BcAmi, VerifierKind};
use bcami_sdk::{
    Hid, IntervalLength, KeyRotationRequest, MdmsRegistrationRequest, MdmsSecretKey,
    MeterSecretKey, QualityFlags, RegistrationRequest, Timestamp, Transaction, UsageReport,
    WattHours,
};
use fabric_shim::memory::{MemoryLedger, Outcome};
use fabric_shim::{ContractError, Creator, KeyRange, Query, TxContext, X509Identity};
use serde_json::Value;

/// Transaction time of the first call, Unix seconds.
pub const T0: i64 = 1_700_000_000;
/// The same in milliseconds.
pub const T0_MS: u64 = 1_700_000_000_000;

pub fn who(msp: &str, ou: &str) -> Creator {
    Creator::new(
        msp,
        X509Identity::from_parts(&format!("CN={ou}@{msp}"), "CN=ca", &[ou], &[]),
    )
}
pub fn admin() -> Creator {
    who("UtilityMSP", "admin")
}
pub fn dc() -> Creator {
    who("OperatorMSP", "client")
}
pub fn mdms() -> Creator {
    who("UtilityMSP", "client")
}
pub fn operator_admin() -> Creator {
    who("OperatorMSP", "admin")
}
pub fn stranger() -> Creator {
    who("OtherMSP", "client")
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub struct Meter {
    pub id: String,
    pub hid: Hid,
    pub key: MeterSecretKey,
}

impl Meter {
    pub fn new(n: u32) -> Self {
        let id = format!("SM-{n:04}");
        let mut entropy = [0u8; 32];
        entropy[..4].copy_from_slice(&n.to_be_bytes());
        entropy[4] = 0x4d;
        Self {
            hid: Hid::from_meter_id(&id),
            key: MeterSecretKey::from_entropy(&entropy).unwrap(),
            id,
        }
    }
    pub fn hex(&self) -> String {
        self.hid.to_string()
    }
    pub fn registration(&self, ts: u64) -> String {
        b64(
            &RegistrationRequest::build(&self.key, self.hid, Timestamp::from_unix_millis(ts))
                .unwrap()
                .encode(),
        )
    }
    pub fn reading_tx(&self, ts: u64, mdms: &MdmsSecretKey) -> Transaction {
        let mut entropy = [0x5au8; 32];
        entropy[..8].copy_from_slice(&ts.to_be_bytes());
        entropy[8..12].copy_from_slice(&self.hid.as_bytes()[..4]);
        Transaction::build_from_entropy(
            &entropy,
            &self.key,
            self.hid,
            Timestamp::from_unix_millis(ts),
            &report(ts),
            &mdms.public_key(),
        )
        .unwrap()
    }
    pub fn reading_bytes(&self, ts: u64, mdms: &MdmsSecretKey) -> Vec<u8> {
        self.reading_tx(ts, mdms).encode()
    }
    pub fn reading(&self, ts: u64, mdms: &MdmsSecretKey) -> String {
        b64(&self.reading_bytes(ts, mdms))
    }
    pub fn rotation(&self, new: &MeterSecretKey, ts: u64) -> String {
        b64(
            &KeyRotationRequest::build(&self.key, new, self.hid, Timestamp::from_unix_millis(ts))
                .unwrap()
                .encode(),
        )
    }
}

pub fn report(ts: u64) -> UsageReport {
    UsageReport {
        interval_start: Timestamp::from_unix_millis(ts.saturating_sub(1_800_000)),
        interval_length: IntervalLength::HALF_HOUR,
        energy: WattHours(ts % 1000),
        cumulative_register: WattHours(ts / 1000),
        quality: QualityFlags::NONE,
    }
}

pub fn mdms_key() -> MdmsSecretKey {
    MdmsSecretKey::from_entropy(&[0x17; 32]).unwrap()
}
pub fn mdms_hid() -> Hid {
    Hid::from_meter_id("MDMS-UTILITY")
}
pub fn mdms_registration(ts: u64) -> String {
    b64(
        &MdmsRegistrationRequest::build(&mdms_key(), mdms_hid(), Timestamp::from_unix_millis(ts))
            .unwrap()
            .encode(),
    )
}

/// Drives the contract on a fresh in-memory ledger; each call is one transaction at `now`.
pub struct Env {
    pub ledger: MemoryLedger,
    pub contract: BcAmi,
    pub seq: u64,
    /// Transaction time, Unix ms (whole seconds are used by the stub; ms kept for precision).
    pub now_ms: u64,
}

impl Env {
    pub fn new() -> Self {
        Self::with_verifier(VerifierKind::Libsecp256k1)
    }
    pub fn with_verifier(kind: VerifierKind) -> Self {
        Self {
            ledger: MemoryLedger::new(),
            contract: BcAmi::new(kind),
            seq: 0,
            now_ms: T0_MS,
        }
    }

    pub fn context(
        &mut self,
        creator: Creator,
        function: impl FunctionName,
        args: Vec<Vec<u8>>,
    ) -> TxContext {
        self.seq += 1;
        let seconds = i64::try_from(self.now_ms / 1000).unwrap();
        let nanos = u32::try_from(self.now_ms % 1000).unwrap() * 1_000_000;
        TxContext::new(
            "ami",
            &format!("tx{:04}", self.seq),
            fabric_shim::Timestamp { seconds, nanos },
            function.function_name(),
            args,
            creator,
        )
    }

    pub fn invoke_raw<F: FunctionName>(
        &mut self,
        creator: Creator,
        function: F,
        args: Vec<Vec<u8>>,
    ) -> Outcome {
        let ctx = self.context(creator, function, args);
        self.ledger.invoke(&self.contract, ctx)
    }

    pub fn invoke<F: FunctionName>(
        &mut self,
        creator: Creator,
        function: F,
        args: &[&str],
    ) -> Outcome {
        let args = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        self.invoke_raw(creator, function, args)
    }

    /// Call and expect success; the JSON response.
    pub fn ok<F: FunctionName>(&mut self, creator: Creator, function: F, args: &[&str]) -> Value {
        let out = self.invoke(creator, function, args);
        match out.result {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
            Err(e) => panic!("{} failed: {e}", function.function_name()),
        }
    }

    /// Call and expect an error; the error.
    pub fn err<F: FunctionName>(
        &mut self,
        creator: Creator,
        function: F,
        args: &[&str],
    ) -> ContractError {
        let out = self.invoke(creator, function, args);
        match out.result {
            Ok(bytes) => panic!(
                "{} succeeded unexpectedly: {}",
                function.function_name(),
                String::from_utf8_lossy(&bytes)
            ),
            Err(e) => e,
        }
    }

    /// Every committed key and value (simple and composite), in key order.
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let stub = self.ledger.begin(TxContext::new(
            "ami",
            "dump",
            fabric_shim::Timestamp::default(),
            "",
            vec![],
            admin(),
        ));
        let mut all: Vec<(String, Vec<u8>)> = Vec::new();
        for range in [KeyRange::all(), KeyRange::all_composite()] {
            for kv in stub.range(&range).unwrap() {
                let kv = kv.unwrap();
                all.push((kv.key, kv.value));
            }
        }
        all.sort();
        all
    }

    pub fn provision(&mut self, meters: &[&Meter]) {
        let list: Vec<String> = meters.iter().map(|m| m.hex()).collect();
        let arg = serde_json::json!({ "meters": list }).to_string();
        self.ok(admin(), Function::ProvisionMeters, &[&arg]);
    }

    pub fn register(&mut self, meter: &Meter) {
        let reg = meter.registration(self.now_ms - 1000);
        self.ok(dc(), Function::RegisterMeter, &[&reg]);
    }

    /// Provision and register the MDMS and `meters`.
    pub fn setup(&mut self, meters: &[&Meter]) {
        self.ok(admin(), Function::ProvisionMdms, &[&mdms_hid().to_string()]);
        let reg = mdms_registration(self.now_ms - 1000);
        self.ok(mdms(), Function::RegisterMdmsKey, &[&reg]);
        self.provision(meters);
        for m in meters {
            self.register(m);
        }
        self.now_ms += 10_000;
    }

    pub fn submit(&mut self, readings: &[String]) -> Value {
        let arg = serde_json::to_string(readings).unwrap();
        self.ok(dc(), Function::SubmitReadings, &[&arg])
    }
}

/// `status` of the error and that its message starts with `code:`.
pub fn assert_error(e: &ContractError, status: u16, code: ErrorCode) {
    assert_eq!(e.status().code(), status, "{e}");
    assert_eq!(code.status(), status, "{code}");
    assert!(
        e.message().starts_with(&format!("{code}: ")),
        "expected code {code}: {e}"
    );
}

/// The reason for each batch element, in batch order (None = accepted), rebuilt from the
/// response's counts and its list of rejections.
pub fn reasons(response: &Value) -> Vec<Option<RejectReason>> {
    let len = response["accepted"].as_u64().unwrap() + response["rejected"].as_u64().unwrap();
    let mut reasons = vec![None; usize::try_from(len).unwrap()];
    for r in response["rejections"].as_array().unwrap() {
        let index = usize::try_from(r["index"].as_u64().unwrap()).unwrap();
        assert!(reasons[index].is_none(), "index {index} rejected twice");
        reasons[index] = Some(serde_json::from_value(r["reason"].clone()).unwrap());
    }
    reasons
}

/// A function to call: one of the contract's, or any name (to test unknown ones).
pub trait FunctionName: Copy {
    /// The name the transaction carries.
    fn function_name(&self) -> &str;
}

impl FunctionName for Function {
    fn function_name(&self) -> &str {
        self.name()
    }
}

impl FunctionName for &str {
    fn function_name(&self) -> &str {
        self
    }
}
