//! A call as a client writes it: the function and its string arguments. The contract reads them
//! back with [`crate::Call::parse`]; the tests below hold the two sides together.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_sdk::Hid;
use serde::Serialize;

use crate::anon::{
    AnonCredentialArg, AnonCredentialQuery, AnonIssuerKeyArg, AnonPeriodQuery, AnonTraceArg,
};
use crate::config::ConfigUpdate;
use crate::function::Function;
use crate::key_hash::KeyHash;

/// One `ProvisionMeters` / `ProvisionMdms` entry: a HID, bound to a key hash or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ProvisionEntry {
    /// Trust on first use: the first valid registration binds the key.
    Unbound(#[serde(with = "crate::records::hid_hex")] Hid),
    /// Only the key with this hash may register.
    Bound {
        /// The HID.
        #[serde(with = "crate::records::hid_hex")]
        hid: Hid,
        /// SHA-256 of the key's compressed SEC1 encoding.
        #[serde(rename = "keyHash")]
        key_hash: KeyHash,
    },
}

/// `GetReadings`'s argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadingsRequest {
    /// The meter.
    #[serde(with = "crate::records::hid_hex")]
    pub hid: Hid,
    /// First timestamp (inclusive), Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// End (exclusive), Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    /// At most this many (1 to [`crate::MAX_PAGE_SIZE`]; default [`crate::DEFAULT_PAGE_SIZE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// The previous page's bookmark; empty for the first page.
    pub bookmark: String,
}

/// `ListMeters`'s argument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetersRequest {
    /// At most this many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// The previous page's bookmark; empty for the first page.
    pub bookmark: String,
}

/// A call of one contract function with its arguments. Binary messages are their encoded bytes
/// (FORMAT.md); they are sent as base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// Replace parts of the configuration.
    Configure(&'a ConfigUpdate),
    /// Read the configuration.
    GetConfig,
    /// Provision meters (1 to [`crate::MAX_PROVISION`]).
    ProvisionMeters(&'a [ProvisionEntry]),
    /// Provision the MDMS.
    ProvisionMdms(ProvisionEntry),
    /// An encoded `RegistrationRequest`.
    RegisterMeter(&'a [u8]),
    /// An encoded `MdmsRegistrationRequest`.
    RegisterMdmsKey(&'a [u8]),
    /// An encoded `KeyRotationRequest`.
    RotateMeterKey(&'a [u8]),
    /// An encoded `MdmsRegistrationRequest` made with the new key.
    RotateMdmsKey(&'a [u8]),
    /// Revoke a meter.
    RevokeMeter(Hid),
    /// Encoded reading transactions (1 to [`crate::MAX_BATCH`]).
    SubmitReadings(&'a [Vec<u8>]),
    /// One meter and its keys.
    GetMeter(Hid),
    /// The MDMS key and its history.
    GetMdmsKey,
    /// A page of a meter's readings.
    GetReadings(&'a ReadingsRequest),
    /// A page of meters.
    ListMeters(&'a MetersRequest),
    /// Counts.
    GetCounts,
    /// Provision the AMI head-end.
    ProvisionHeadEnd(ProvisionEntry),
    /// An encoded `HeadEndRegistrationRequest`.
    RegisterHeadEndKey(&'a [u8]),
    /// The head-end's key and its history.
    GetHeadEnd,
    /// An encoded `HeadEndRegistrationRequest` made with the new key.
    RotateHeadEndKey(&'a [u8]),
    // Anonymous readings (issue 15).
    /// Set an epoch's issuer key (`issuerKey`: the encoded key, base64).
    SetAnonIssuerKey(&'a AnonIssuerKeyArg),
    /// An encoded `AnonCredentialRequest`.
    RequestAnonCredential(&'a [u8]),
    /// Post a meter's credential (`credential`: the encoded credential, base64).
    PostAnonCredential(&'a AnonCredentialArg),
    /// Encoded anonymous readings (1 to [`crate::MAX_ANON_BATCH`]).
    SubmitAnonReadings(&'a [Vec<u8>]),
    /// The issuer key of an epoch, or the current one.
    GetAnonIssuerKey(Option<u32>),
    /// A meter's credential record for an epoch.
    GetAnonCredential(&'a AnonCredentialQuery),
    /// A period's aggregate.
    GetAnonAggregate(AnonPeriodQuery),
    /// A period's double reports.
    GetAnonDoubleReports(AnonPeriodQuery),
    /// The outcome of a trace; revokes the culprit.
    RecordAnonTrace(&'a AnonTraceArg),
    /// A group-keys call (issue 13).
    Group(crate::group::GroupRequest<'a>),
}

impl Request<'_> {
    /// The function it calls.
    pub fn function(&self) -> Function {
        match self {
            Request::Configure(_) => Function::Configure,
            Request::GetConfig => Function::GetConfig,
            Request::ProvisionMeters(_) => Function::ProvisionMeters,
            Request::ProvisionMdms(_) => Function::ProvisionMdms,
            Request::RegisterMeter(_) => Function::RegisterMeter,
            Request::RegisterMdmsKey(_) => Function::RegisterMdmsKey,
            Request::RotateMeterKey(_) => Function::RotateMeterKey,
            Request::RotateMdmsKey(_) => Function::RotateMdmsKey,
            Request::RevokeMeter(_) => Function::RevokeMeter,
            Request::SubmitReadings(_) => Function::SubmitReadings,
            Request::GetMeter(_) => Function::GetMeter,
            Request::GetMdmsKey => Function::GetMdmsKey,
            Request::GetReadings(_) => Function::GetReadings,
            Request::ListMeters(_) => Function::ListMeters,
            Request::GetCounts => Function::GetCounts,
            Request::ProvisionHeadEnd(_) => Function::ProvisionHeadEnd,
            Request::RegisterHeadEndKey(_) => Function::RegisterHeadEndKey,
            Request::GetHeadEnd => Function::GetHeadEnd,
            Request::RotateHeadEndKey(_) => Function::RotateHeadEndKey,
            // Anonymous readings (issue 15).
            Request::SetAnonIssuerKey(_) => Function::SetAnonIssuerKey,
            Request::RequestAnonCredential(_) => Function::RequestAnonCredential,
            Request::PostAnonCredential(_) => Function::PostAnonCredential,
            Request::SubmitAnonReadings(_) => Function::SubmitAnonReadings,
            Request::GetAnonIssuerKey(_) => Function::GetAnonIssuerKey,
            Request::GetAnonCredential(_) => Function::GetAnonCredential,
            Request::GetAnonAggregate(_) => Function::GetAnonAggregate,
            Request::GetAnonDoubleReports(_) => Function::GetAnonDoubleReports,
            Request::RecordAnonTrace(_) => Function::RecordAnonTrace,
            Request::Group(g) => g.function(),
        }
    }

    /// The string arguments, as the peer CLI would pass them.
    pub fn args(&self) -> Vec<String> {
        match self {
            Request::GetConfig | Request::GetMdmsKey | Request::GetCounts | Request::GetHeadEnd => {
                Vec::new()
            }
            Request::Configure(update) => vec![json(update)],
            Request::ProvisionMeters(meters) => {
                #[derive(Serialize)]
                struct Meters<'a> {
                    meters: &'a [ProvisionEntry],
                }
                vec![json(&Meters { meters })]
            }
            Request::ProvisionMdms(ProvisionEntry::Unbound(hid))
            | Request::ProvisionHeadEnd(ProvisionEntry::Unbound(hid)) => vec![hid.to_string()],
            Request::ProvisionMdms(entry) | Request::ProvisionHeadEnd(entry) => vec![json(entry)],
            Request::RegisterMeter(bytes)
            | Request::RegisterMdmsKey(bytes)
            | Request::RotateMeterKey(bytes)
            | Request::RotateMdmsKey(bytes)
            | Request::RegisterHeadEndKey(bytes)
            | Request::RotateHeadEndKey(bytes) => vec![STANDARD.encode(bytes)],
            Request::RevokeMeter(hid) | Request::GetMeter(hid) => vec![hid.to_string()],
            Request::SubmitReadings(readings) => {
                let batch: Vec<String> = readings.iter().map(|r| STANDARD.encode(r)).collect();
                vec![json(&batch)]
            }
            Request::GetReadings(q) => vec![json(q)],
            Request::ListMeters(q) => vec![json(q)],
            // Anonymous readings (issue 15).
            Request::SetAnonIssuerKey(arg) => vec![json(arg)],
            Request::RequestAnonCredential(bytes) => vec![STANDARD.encode(bytes)],
            Request::PostAnonCredential(arg) => vec![json(arg)],
            Request::SubmitAnonReadings(readings) => {
                let batch: Vec<String> = readings.iter().map(|r| STANDARD.encode(r)).collect();
                vec![json(&batch)]
            }
            Request::GetAnonIssuerKey(None) => Vec::new(),
            Request::GetAnonIssuerKey(Some(epoch)) => vec![epoch.to_string()],
            Request::GetAnonCredential(q) => vec![json(q)],
            Request::GetAnonAggregate(q) | Request::GetAnonDoubleReports(q) => vec![json(q)],
            Request::RecordAnonTrace(arg) => vec![json(arg)],
            Request::Group(g) => g.args(),
        }
    }
}

/// Our argument types are plain data (string keys only), which serde_json always serializes.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Call, MetersQuery, ReadingInput};
    use crate::config::Window;
    use bcami_sdk::{
        HeadEndRegistrationRequest, HeadEndSecretKey, KeyRotationRequest, MeterSecretKey,
        RegistrationRequest, Timestamp,
    };

    fn parse(request: &Request<'_>) -> Call {
        let args: Vec<Vec<u8>> = request.args().into_iter().map(String::into_bytes).collect();
        Call::parse(request.function(), &args).unwrap()
    }

    #[test]
    fn what_a_client_writes_the_contract_reads() {
        let (a, b) = (Hid::from_meter_id("SM-1"), Hid::from_meter_id("SM-2"));
        let hash: KeyHash = "0f".repeat(32).parse().unwrap();
        let meters = [
            ProvisionEntry::Unbound(a),
            ProvisionEntry::Bound {
                hid: b,
                key_hash: hash,
            },
        ];
        let Call::ProvisionMeters(parsed) = parse(&Request::ProvisionMeters(&meters)) else {
            panic!()
        };
        let mut expected = vec![(a, None), (b, Some(hash))];
        expected.sort();
        assert_eq!(parsed.into_iter().collect::<Vec<_>>(), expected);
        for entry in meters {
            let (hid, key_hash) = match entry {
                ProvisionEntry::Unbound(hid) => (hid, None),
                ProvisionEntry::Bound { hid, key_hash } => (hid, Some(key_hash)),
            };
            assert_eq!(
                parse(&Request::ProvisionMdms(entry)),
                Call::ProvisionMdms { hid, key_hash }
            );
            assert_eq!(
                parse(&Request::ProvisionHeadEnd(entry)),
                Call::ProvisionHeadEnd { hid, key_hash }
            );
        }
        let update = ConfigUpdate {
            window: Some(Window {
                past_ms: 1,
                future_ms: 2,
            }),
            ..ConfigUpdate::default()
        };
        assert_eq!(
            parse(&Request::Configure(&update)),
            Call::Configure(update.clone())
        );
        assert_eq!(parse(&Request::RevokeMeter(a)), Call::RevokeMeter(a));
        assert_eq!(parse(&Request::GetMeter(a)), Call::GetMeter(a));
        for (request, call) in [
            (Request::GetConfig, Call::GetConfig),
            (Request::GetMdmsKey, Call::GetMdmsKey),
            (Request::GetCounts, Call::GetCounts),
            (Request::GetHeadEnd, Call::GetHeadEnd),
        ] {
            assert_eq!(parse(&request), call);
        }
        let q = ReadingsRequest {
            hid: a,
            from: Some(10),
            to: Some(20),
            page_size: Some(7),
            bookmark: "15".into(),
        };
        let Call::GetReadings(parsed) = parse(&Request::GetReadings(&q)) else {
            panic!()
        };
        assert_eq!(
            (parsed.hid, parsed.start, parsed.to, parsed.page_size),
            (a, 15, Some(20), 7)
        );
        let m = MetersRequest {
            page_size: Some(3),
            bookmark: a.to_string(),
        };
        assert_eq!(
            parse(&Request::ListMeters(&m)),
            Call::ListMeters(MetersQuery {
                start: Some(a),
                page_size: 3
            })
        );
    }

    #[test]
    fn anonymous_calls_round_trip() {
        let hid = Hid::from_meter_id("SM-1");
        let key = AnonIssuerKeyArg {
            issuer_key: STANDARD.encode([0x21, 1, 2]),
            period_secs: 1800,
        };
        assert_eq!(
            parse(&Request::SetAnonIssuerKey(&key)),
            Call::SetAnonIssuerKey {
                issuer_key: vec![0x21, 1, 2],
                period_secs: 1800
            }
        );
        let odd = AnonIssuerKeyArg {
            period_secs: 7,
            ..key
        };
        let args: Vec<Vec<u8>> = Request::SetAnonIssuerKey(&odd)
            .args()
            .into_iter()
            .map(String::into_bytes)
            .collect();
        assert!(Call::parse(Function::SetAnonIssuerKey, &args).is_err());
        let posted = AnonCredentialArg {
            hid,
            credential: STANDARD.encode([0x23, 1]),
        };
        assert_eq!(
            parse(&Request::PostAnonCredential(&posted)),
            Call::PostAnonCredential {
                hid,
                credential: vec![0x23, 1]
            }
        );
        let readings = vec![vec![0x24, 1, 2], vec![9]];
        assert_eq!(
            parse(&Request::SubmitAnonReadings(&readings)),
            Call::SubmitAnonReadings(vec![
                crate::AnonInput::Bytes(vec![0x24, 1, 2]),
                crate::AnonInput::Bytes(vec![9])
            ])
        );
        assert_eq!(
            parse(&Request::GetAnonIssuerKey(None)),
            Call::GetAnonIssuerKey(None)
        );
        assert_eq!(
            parse(&Request::GetAnonIssuerKey(Some(3))),
            Call::GetAnonIssuerKey(Some(3))
        );
        let q = AnonCredentialQuery { hid, epoch: 2 };
        assert_eq!(
            parse(&Request::GetAnonCredential(&q)),
            Call::GetAnonCredential(q)
        );
        let p = AnonPeriodQuery { period_start: 5 };
        assert_eq!(
            parse(&Request::GetAnonAggregate(p)),
            Call::GetAnonAggregate(p)
        );
        assert_eq!(
            parse(&Request::GetAnonDoubleReports(p)),
            Call::GetAnonDoubleReports(p)
        );
    }

    #[test]
    fn binary_messages_travel_as_base64() {
        let key = MeterSecretKey::from_bytes(&[7; 32]).unwrap();
        let new = MeterSecretKey::from_bytes(&[8; 32]).unwrap();
        let hid = Hid::from_meter_id("SM-1");
        let ts = Timestamp::from_unix_millis(1_700_000_000_000);
        let registration = RegistrationRequest::build(&key, hid, ts).unwrap().encode();
        let Call::RegisterMeter(parsed) = parse(&Request::RegisterMeter(&registration)) else {
            panic!()
        };
        assert_eq!(parsed.encode(), registration);
        let rotation = KeyRotationRequest::build(&key, &new, hid, ts)
            .unwrap()
            .encode();
        let Call::RotateMeterKey(parsed) = parse(&Request::RotateMeterKey(&rotation)) else {
            panic!()
        };
        assert_eq!(parsed.encode(), rotation);
        let ahe = HeadEndSecretKey::from_bytes(&[9; 32]).unwrap();
        let head_end = HeadEndRegistrationRequest::build(&ahe, Hid::from_meter_id("AHE-1"), ts)
            .unwrap()
            .encode();
        let Call::RegisterHeadEndKey(parsed) = parse(&Request::RegisterHeadEndKey(&head_end))
        else {
            panic!()
        };
        assert_eq!(parsed.encode(), head_end);
        let Call::RotateHeadEndKey(parsed) = parse(&Request::RotateHeadEndKey(&head_end)) else {
            panic!()
        };
        assert_eq!(parsed.encode(), head_end);
        // An MDMS registration is not a head-end registration.
        let mdms = bcami_sdk::MdmsRegistrationRequest::build(
            &bcami_sdk::MdmsSecretKey::from_bytes(&[9; 32]).unwrap(),
            Hid::from_meter_id("AHE-1"),
            ts,
        )
        .unwrap()
        .encode();
        let request = Request::RegisterHeadEndKey(&mdms);
        let args: Vec<Vec<u8>> = request.args().into_iter().map(String::into_bytes).collect();
        assert!(Call::parse(request.function(), &args).is_err());
        let readings = vec![vec![1, 2, 3]];
        let Call::SubmitReadings(parsed) = parse(&Request::SubmitReadings(&readings)) else {
            panic!()
        };
        assert!(matches!(parsed.as_slice(), [ReadingInput::Rejected(_)]));
    }
}
