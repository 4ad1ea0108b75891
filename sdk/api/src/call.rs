//! Parsing the string arguments of every function into typed calls, once, at the edge (the
//! contract does this for every transaction). Everything here is pure (bytes in, values out) and
//! is what the contract's fuzz target exercises.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_sdk::{
    AnonCredentialRequest, DecodeError, HeadEndRegistrationRequest, Hid, KeyRotationRequest,
    MdmsRegistrationRequest, RegistrationRequest, Transaction,
};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::anon::{
    AnonCredentialArg, AnonCredentialQuery, AnonInput, AnonIssuerKeyArg, AnonPeriodQuery,
    AnonTraceArg, MAX_ANON_BATCH, MAX_ANON_BATCH_ARG_BYTES, MAX_ANON_KEY_BASE64,
    MAX_ANON_PERIOD_SECS, MIN_ANON_PERIOD_SECS, parse_anon_reading,
};
use crate::config::{ConfigUpdate, RoleRule, Window};
use crate::function::Function;
use crate::key_hash::KeyHash;
use crate::limits::{
    DEFAULT_PAGE_SIZE, MAX_BATCH, MAX_BATCH_ARG_BYTES, MAX_MSP_ID_LEN, MAX_PAGE_SIZE,
    MAX_PROVISION, MAX_READING_BASE64, MAX_READING_BYTES, MAX_ROLE_RULES,
};
use crate::submit::{RejectReason, Rejection};

/// A malformed argument: the whole call is refused with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgError {
    /// Wrong number of arguments.
    #[error("{function} expects {expected} argument(s), got {got}")]
    Count {
        /// The function.
        function: &'static str,
        /// What it takes, e.g. `1` or `0 or 1`.
        expected: &'static str,
        /// What it got.
        got: usize,
    },
    /// An argument is not UTF-8.
    #[error("{function}: argument {index} is not UTF-8")]
    NotUtf8 {
        /// The function.
        function: &'static str,
        /// 1-based.
        index: usize,
    },
    /// An argument is not the JSON the function expects.
    #[error("{function}: argument is not valid JSON of the expected shape: {detail}")]
    Json {
        /// The function.
        function: &'static str,
        /// serde_json's complaint.
        detail: String,
    },
    /// A HID is not 64 hex digits.
    #[error("{function}: {what} is not a HID (64 hex digits): {text:?}")]
    Hid {
        /// The function.
        function: &'static str,
        /// Which value.
        what: String,
        /// The text (truncated).
        text: String,
    },
    /// A key hash is not 64 hex digits.
    #[error(
        "{function}: {what} is not a key hash (64 hex digits: SHA-256 of the 33-byte compressed public key): {text:?}"
    )]
    KeyHash {
        /// The function.
        function: &'static str,
        /// Which value.
        what: String,
        /// The text (truncated).
        text: String,
    },
    /// A binary message is not standard base64.
    #[error("{function}: argument is not standard base64 (RFC 4648 §4, with padding)")]
    Base64 {
        /// The function.
        function: &'static str,
    },
    /// A binary message does not decode.
    #[error("malformed message: {0}")]
    Message(#[from] DecodeError),
    /// Too many items, too large, or empty.
    #[error("{function}: {detail}")]
    Limit {
        /// The function.
        function: &'static str,
        /// Which limit.
        detail: String,
    },
    /// A value is out of its allowed range.
    #[error("{function}: {detail}")]
    Invalid {
        /// The function.
        function: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// One element of a `SubmitReadings` batch after parsing: a decoded transaction, or a
/// rejection found without looking at the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadingInput {
    /// Decoded (signature not yet checked).
    Decoded(Box<Transaction>),
    /// Refused already: bad base64, oversize, or malformed.
    Rejected(Rejection),
}

/// What `GetReadings` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingsQuery {
    /// The meter.
    pub hid: Hid,
    /// First timestamp to return (inclusive): `max(from, bookmark)`.
    pub start: u64,
    /// End (exclusive), if any.
    pub to: Option<u64>,
    /// At most this many readings.
    pub page_size: u32,
}

/// What `ListMeters` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetersQuery {
    /// First HID to return (inclusive), if any.
    pub start: Option<Hid>,
    /// At most this many meters.
    pub page_size: u32,
}

/// A call with its arguments parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// Replace parts of the configuration.
    Configure(ConfigUpdate),
    /// Read the configuration.
    GetConfig,
    /// Provision meters (deduplicated, sorted), each with the hash of the key it must register,
    /// if the administrator bound one.
    ProvisionMeters(BTreeMap<Hid, Option<KeyHash>>),
    /// Provision the MDMS, with the hash of the key it must register, if bound.
    ProvisionMdms {
        /// The MDMS.
        hid: Hid,
        /// The bound key hash.
        key_hash: Option<KeyHash>,
    },
    /// Register a meter key.
    RegisterMeter(Box<RegistrationRequest>),
    /// Register the MDMS key.
    RegisterMdmsKey(Box<MdmsRegistrationRequest>),
    /// Rotate a meter key.
    RotateMeterKey(Box<KeyRotationRequest>),
    /// Replace the MDMS key: the new key's registration request (its proof of possession).
    RotateMdmsKey(Box<MdmsRegistrationRequest>),
    /// Revoke a meter.
    RevokeMeter(Hid),
    /// Submit readings, in batch order.
    SubmitReadings(Vec<ReadingInput>),
    /// One meter.
    GetMeter(Hid),
    /// The MDMS key.
    GetMdmsKey,
    /// Readings of a meter.
    GetReadings(ReadingsQuery),
    /// All meters, paginated.
    ListMeters(MetersQuery),
    /// Counts.
    GetCounts,
    /// Provision the AMI head-end, with the hash of the key it must register, if bound.
    ProvisionHeadEnd {
        /// The head-end.
        hid: Hid,
        /// The bound key hash.
        key_hash: Option<KeyHash>,
    },
    /// Register the head-end's session-signing key.
    RegisterHeadEndKey(Box<HeadEndRegistrationRequest>),
    /// The head-end's key.
    GetHeadEnd,
    /// Replace the head-end's key: the new key's registration request.
    RotateHeadEndKey(Box<HeadEndRegistrationRequest>),
    // Anonymous readings (issue 15).
    /// Set the issuer key of a credential epoch.
    SetAnonIssuerKey {
        /// The encoded issuer public key (decoded by the contract).
        issuer_key: Vec<u8>,
        /// The period length, seconds.
        period_secs: u32,
    },
    /// A meter's signed credential request.
    RequestAnonCredential(Box<AnonCredentialRequest>),
    /// The issuer's credential for a meter's request.
    PostAnonCredential {
        /// The meter.
        hid: Hid,
        /// The encoded credential (decoded by the contract).
        credential: Vec<u8>,
    },
    /// Anonymous readings, in batch order.
    SubmitAnonReadings(Vec<AnonInput>),
    /// The issuer key of an epoch, or the current one.
    GetAnonIssuerKey(Option<u32>),
    /// A meter's credential request and credential for an epoch.
    GetAnonCredential(AnonCredentialQuery),
    /// A period's aggregate.
    GetAnonAggregate(AnonPeriodQuery),
    /// A period's double reports.
    GetAnonDoubleReports(AnonPeriodQuery),
    /// The outcome of a trace (the pseudonym checked: 48 bytes).
    RecordAnonTrace {
        /// The period's start, Unix ms.
        period_start: u64,
        /// The pseudonym.
        pseudonym: [u8; 48],
        /// The culprit.
        hid: Hid,
        /// Meters cleared.
        cleared: u64,
    },
    /// A group-keys call (issue 13).
    Group(crate::group::GroupCall),
}

struct Input<'a> {
    function: &'static str,
    args: &'a [Vec<u8>],
}

impl<'a> Input<'a> {
    fn exactly(&self, n: usize, expected: &'static str) -> Result<(), ArgError> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(self.count(expected))
        }
    }

    fn count(&self, expected: &'static str) -> ArgError {
        ArgError::Count {
            function: self.function,
            expected,
            got: self.args.len(),
        }
    }

    fn text(&self, i: usize) -> Result<&'a str, ArgError> {
        let bytes = self.args.get(i).ok_or(self.count("more"))?;
        std::str::from_utf8(bytes).map_err(|_| ArgError::NotUtf8 {
            function: self.function,
            index: i + 1,
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, ArgError> {
        serde_json::from_str(self.text(i)?).map_err(|e| ArgError::Json {
            function: self.function,
            detail: e.to_string(),
        })
    }

    fn hid(&self, text: &str, what: &str) -> Result<Hid, ArgError> {
        parse_hid(text).ok_or_else(|| ArgError::Hid {
            function: self.function,
            what: what.to_owned(),
            text: text.chars().take(80).collect(),
        })
    }

    fn key_hash(&self, value: &serde_json::Value, what: &str) -> Result<KeyHash, ArgError> {
        let parsed = match value {
            serde_json::Value::String(text) => text.parse().ok(),
            _ => None,
        };
        parsed.ok_or_else(|| ArgError::KeyHash {
            function: self.function,
            what: what.to_owned(),
            text: shown(value),
        })
    }

    /// One provisioning entry (`meters[i]` of `ProvisionMeters`, or `ProvisionMdms`'s object).
    fn provision_entry(
        &self,
        entry: EntryWire,
        what: &str,
    ) -> Result<(Hid, Option<KeyHash>), ArgError> {
        match entry {
            EntryWire::Plain(text) => Ok((self.hid(&text, what)?, None)),
            EntryWire::Bound { hid, key_hash } => {
                let hid = match hid {
                    None => return Err(self.invalid(format!("{what} has no \"hid\""))),
                    Some(serde_json::Value::String(text)) => {
                        self.hid(&text, &format!("{what}.hid"))?
                    }
                    Some(other) => self.hid(&shown(&other), &format!("{what}.hid"))?,
                };
                let key_hash = key_hash.ok_or_else(|| {
                    self.invalid(format!(
                        "{what} has no \"keyHash\": an object binds a key (write the plain HID string to provision without one)"
                    ))
                })?;
                Ok((
                    hid,
                    Some(self.key_hash(&key_hash, &format!("{what}.keyHash"))?),
                ))
            }
            EntryWire::Bad(why) => Err(self.invalid(format!("{what} {why}"))),
        }
    }

    fn base64(&self, i: usize) -> Result<Vec<u8>, ArgError> {
        let text = self.text(i)?;
        // Registration-type messages are at most a few hundred bytes.
        if text.len() > MAX_READING_BASE64 {
            return Err(self.limit(format!(
                "argument of {} characters is longer than any message ({MAX_READING_BASE64} max)",
                text.len()
            )));
        }
        STANDARD.decode(text).map_err(|_| ArgError::Base64 {
            function: self.function,
        })
    }

    /// A base64 key-type value (issuer key, credential) of at most [`MAX_ANON_KEY_BASE64`].
    fn base64_text(&self, text: &str, what: &str) -> Result<Vec<u8>, ArgError> {
        if text.len() > MAX_ANON_KEY_BASE64 {
            return Err(self.limit(format!(
                "{what} of {} characters is longer than any key ({MAX_ANON_KEY_BASE64} max)",
                text.len()
            )));
        }
        STANDARD.decode(text).map_err(|_| ArgError::Base64 {
            function: self.function,
        })
    }

    fn limit(&self, detail: String) -> ArgError {
        ArgError::Limit {
            function: self.function,
            detail,
        }
    }

    fn invalid(&self, detail: String) -> ArgError {
        ArgError::Invalid {
            function: self.function,
            detail,
        }
    }
}

/// A HID: exactly 64 hex digits.
pub fn parse_hid(text: &str) -> Option<Hid> {
    text.parse().ok()
}

/// A JSON value for an error message: strings as they are, anything else as JSON; truncated.
fn shown(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    text.chars().take(80).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionWire {
    meters: Vec<EntryWire>,
}

/// One provisioning entry as written: `"<hid>"` or `{"hid":"<hid>","keyHash":"<64 hex>"}`.
/// Deserializing it never fails on the element's own shape, so that a bad element is reported
/// with its index (serde's untagged enums only say "did not match any variant").
enum EntryWire {
    /// A HID string: trust on first use.
    Plain(String),
    /// An object; its fields are checked when converted.
    Bound {
        hid: Option<serde_json::Value>,
        key_hash: Option<serde_json::Value>,
    },
    /// Neither: what is wrong with it.
    Bad(String),
}

impl<'de> Deserialize<'de> for EntryWire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

const ENTRY_SHAPE: &str = r#"a HID string or an object {"hid","keyHash"}"#;

struct EntryVisitor;

impl EntryVisitor {
    fn wrong<E>(got: &str) -> Result<EntryWire, E> {
        Ok(EntryWire::Bad(format!("must be {ENTRY_SHAPE}, got {got}")))
    }
}

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = EntryWire;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(ENTRY_SHAPE)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EntryWire, E> {
        Ok(EntryWire::Plain(v.to_owned()))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<EntryWire, E> {
        Self::wrong("a boolean")
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<EntryWire, E> {
        Self::wrong("a number")
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<EntryWire, E> {
        Self::wrong("a number")
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<EntryWire, E> {
        Self::wrong("a number")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<EntryWire, E> {
        Self::wrong("null")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EntryWire, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Self::wrong("an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EntryWire, A::Error> {
        let mut hid = None;
        let mut key_hash = None;
        let mut problem = None;
        while let Some(field) = map.next_key::<String>()? {
            let slot = match field.as_str() {
                "hid" => &mut hid,
                "keyHash" => &mut key_hash,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    problem.get_or_insert_with(|| {
                        format!(
                            "has an unknown field {:?}; an object entry is {{\"hid\",\"keyHash\"}}",
                            field.chars().take(40).collect::<String>()
                        )
                    });
                    continue;
                }
            };
            let value: serde_json::Value = map.next_value()?;
            if slot.is_some() {
                problem.get_or_insert_with(|| format!("has {field:?} twice"));
            }
            *slot = Some(value);
        }
        Ok(match problem {
            Some(why) => EntryWire::Bad(why),
            None => EntryWire::Bound { hid, key_hash },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReadingsQueryWire {
    hid: String,
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    to: Option<u64>,
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    bookmark: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetersQueryWire {
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    bookmark: Option<String>,
}

impl Call {
    /// Parse the arguments of `function`. Fails (400 for the whole call) on a malformed
    /// argument; per-reading problems of `SubmitReadings` become per-reading rejections instead.
    pub fn parse(function: Function, args: &[Vec<u8>]) -> Result<Call, ArgError> {
        let input = Input {
            function: function.name(),
            args,
        };
        match function {
            Function::Configure => {
                input.exactly(1, "1")?;
                let update: ConfigUpdate = input.json(0)?;
                check_config(&input, &update)?;
                Ok(Call::Configure(update))
            }
            Function::GetConfig => input.exactly(0, "0").map(|()| Call::GetConfig),
            Function::ProvisionMeters => {
                input.exactly(1, "1")?;
                let wire: ProvisionWire = input.json(0)?;
                if wire.meters.is_empty() || wire.meters.len() > MAX_PROVISION {
                    return Err(input.limit(format!(
                        "\"meters\" must hold 1 to {MAX_PROVISION} HIDs, got {}",
                        wire.meters.len()
                    )));
                }
                // HID → (first index, key hash): a HID may repeat, but only identically.
                let mut meters: BTreeMap<Hid, (usize, Option<KeyHash>)> = BTreeMap::new();
                for (i, entry) in wire.meters.into_iter().enumerate() {
                    let (hid, key_hash) = input.provision_entry(entry, &format!("meters[{i}]"))?;
                    let (first, earlier) = *meters.entry(hid).or_insert((i, key_hash));
                    if earlier != key_hash {
                        return Err(input.invalid(format!(
                            "meters[{i}] repeats the HID of meters[{first}] with {}",
                            if earlier.is_some() && key_hash.is_some() {
                                "a different key hash"
                            } else {
                                "a key hash in one and not the other"
                            }
                        )));
                    }
                }
                Ok(Call::ProvisionMeters(
                    meters.into_iter().map(|(h, (_, k))| (h, k)).collect(),
                ))
            }
            Function::ProvisionMdms | Function::ProvisionHeadEnd => {
                input.exactly(1, "1")?;
                let text = input.text(0)?;
                let entry = if text.trim_start().starts_with('{') {
                    input.json(0)?
                } else {
                    EntryWire::Plain(text.to_owned())
                };
                let (hid, key_hash) = input.provision_entry(entry, "argument 1")?;
                Ok(if function == Function::ProvisionMdms {
                    Call::ProvisionMdms { hid, key_hash }
                } else {
                    Call::ProvisionHeadEnd { hid, key_hash }
                })
            }
            Function::RegisterMeter => {
                input.exactly(1, "1")?;
                let bytes = input.base64(0)?;
                Ok(Call::RegisterMeter(Box::new(RegistrationRequest::decode(
                    &bytes,
                )?)))
            }
            Function::RegisterMdmsKey | Function::RotateMdmsKey => {
                input.exactly(1, "1")?;
                let request = Box::new(MdmsRegistrationRequest::decode(&input.base64(0)?)?);
                Ok(if function == Function::RegisterMdmsKey {
                    Call::RegisterMdmsKey(request)
                } else {
                    Call::RotateMdmsKey(request)
                })
            }
            Function::RotateMeterKey => {
                input.exactly(1, "1")?;
                let bytes = input.base64(0)?;
                Ok(Call::RotateMeterKey(Box::new(KeyRotationRequest::decode(
                    &bytes,
                )?)))
            }
            Function::RevokeMeter => {
                input.exactly(1, "1")?;
                Ok(Call::RevokeMeter(input.hid(input.text(0)?, "argument 1")?))
            }
            Function::SubmitReadings => {
                input.exactly(1, "1")?;
                parse_batch(&input).map(Call::SubmitReadings)
            }
            Function::GetMeter => {
                input.exactly(1, "1")?;
                Ok(Call::GetMeter(input.hid(input.text(0)?, "argument 1")?))
            }
            Function::GetMdmsKey => input.exactly(0, "0").map(|()| Call::GetMdmsKey),
            Function::RegisterHeadEndKey | Function::RotateHeadEndKey => {
                input.exactly(1, "1")?;
                let request = Box::new(HeadEndRegistrationRequest::decode(&input.base64(0)?)?);
                Ok(if function == Function::RegisterHeadEndKey {
                    Call::RegisterHeadEndKey(request)
                } else {
                    Call::RotateHeadEndKey(request)
                })
            }
            Function::GetHeadEnd => input.exactly(0, "0").map(|()| Call::GetHeadEnd),
            Function::GetReadings => {
                input.exactly(1, "1")?;
                let wire: ReadingsQueryWire = input.json(0)?;
                let hid = input.hid(&wire.hid, "\"hid\"")?;
                let page_size = page_size(&input, wire.page_size)?;
                let bookmark = match wire.bookmark.as_deref() {
                    None | Some("") => None,
                    Some(b) => Some(parse_millis(b).ok_or_else(|| {
                        input.invalid(format!(
                            "\"bookmark\" must be a timestamp in decimal digits (from a previous page), got {:?}",
                            b.chars().take(40).collect::<String>()
                        ))
                    })?),
                };
                let from = wire.from.unwrap_or(0);
                if let Some(to) = wire.to {
                    if to <= from {
                        return Err(
                            input.invalid(format!("\"to\" ({to}) must be after \"from\" ({from})"))
                        );
                    }
                }
                Ok(Call::GetReadings(ReadingsQuery {
                    hid,
                    start: from.max(bookmark.unwrap_or(0)),
                    to: wire.to,
                    page_size,
                }))
            }
            Function::ListMeters => {
                let wire = match args.len() {
                    0 => MetersQueryWire {
                        page_size: None,
                        bookmark: None,
                    },
                    1 => input.json(0)?,
                    _ => return Err(input.count("0 or 1")),
                };
                let start = match wire.bookmark.as_deref() {
                    None | Some("") => None,
                    Some(b) => Some(input.hid(b, "\"bookmark\"")?),
                };
                Ok(Call::ListMeters(MetersQuery {
                    start,
                    page_size: page_size(&input, wire.page_size)?,
                }))
            }
            Function::GetCounts => input.exactly(0, "0").map(|()| Call::GetCounts),
            // Anonymous readings (issue 15).
            Function::SetAnonIssuerKey => {
                input.exactly(1, "1")?;
                let wire: AnonIssuerKeyArg = input.json(0)?;
                if !(MIN_ANON_PERIOD_SECS..=MAX_ANON_PERIOD_SECS).contains(&wire.period_secs)
                    || 86_400 % wire.period_secs != 0
                {
                    return Err(input.invalid(format!(
                        "\"periodSecs\" must divide a day and be {MIN_ANON_PERIOD_SECS} to {MAX_ANON_PERIOD_SECS}, got {}",
                        wire.period_secs
                    )));
                }
                Ok(Call::SetAnonIssuerKey {
                    issuer_key: input.base64_text(&wire.issuer_key, "\"issuerKey\"")?,
                    period_secs: wire.period_secs,
                })
            }
            Function::RequestAnonCredential => {
                input.exactly(1, "1")?;
                Ok(Call::RequestAnonCredential(Box::new(
                    AnonCredentialRequest::decode(&input.base64(0)?)?,
                )))
            }
            Function::PostAnonCredential => {
                input.exactly(1, "1")?;
                let wire: AnonCredentialArg = input.json(0)?;
                Ok(Call::PostAnonCredential {
                    hid: wire.hid,
                    credential: input.base64_text(&wire.credential, "\"credential\"")?,
                })
            }
            Function::SubmitAnonReadings => {
                input.exactly(1, "1")?;
                let raw = input.args.first().map_or(0, Vec::len);
                if raw > MAX_ANON_BATCH_ARG_BYTES {
                    return Err(input.limit(format!(
                        "argument of {raw} bytes is larger than {MAX_ANON_BATCH_ARG_BYTES}"
                    )));
                }
                let items: Vec<String> = input.json(0)?;
                if items.is_empty() || items.len() > MAX_ANON_BATCH {
                    return Err(input.limit(format!(
                        "a batch holds 1 to {MAX_ANON_BATCH} anonymous readings, got {}",
                        items.len()
                    )));
                }
                Ok(Call::SubmitAnonReadings(
                    items.iter().map(|i| parse_anon_reading(i)).collect(),
                ))
            }
            Function::GetAnonIssuerKey => match args.len() {
                0 => Ok(Call::GetAnonIssuerKey(None)),
                1 => {
                    let text = input.text(0)?;
                    let epoch = parse_millis(text)
                        .and_then(|e| u32::try_from(e).ok())
                        .ok_or_else(|| {
                            input.invalid(format!(
                                "the epoch must be decimal digits (a u32), got {:?}",
                                text.chars().take(40).collect::<String>()
                            ))
                        })?;
                    Ok(Call::GetAnonIssuerKey(Some(epoch)))
                }
                _ => Err(input.count("0 or 1")),
            },
            Function::GetAnonCredential => {
                input.exactly(1, "1")?;
                Ok(Call::GetAnonCredential(input.json(0)?))
            }
            Function::GetAnonAggregate => {
                input.exactly(1, "1")?;
                Ok(Call::GetAnonAggregate(input.json(0)?))
            }
            Function::GetAnonDoubleReports => {
                input.exactly(1, "1")?;
                Ok(Call::GetAnonDoubleReports(input.json(0)?))
            }
            Function::RecordAnonTrace => {
                input.exactly(1, "1")?;
                let wire: AnonTraceArg = input.json(0)?;
                let pseudonym = crate::from_hex::<48>(&wire.pseudonym).ok_or_else(|| {
                    input.invalid(format!(
                        "\"pseudonym\" must be 96 hex digits, got {:?}",
                        wire.pseudonym.chars().take(100).collect::<String>()
                    ))
                })?;
                Ok(Call::RecordAnonTrace {
                    period_start: wire.period_start,
                    pseudonym,
                    hid: wire.hid,
                    cleared: wire.cleared,
                })
            }
            // Group keys (issue 13).
            Function::SetGroupAuthority
            | Function::RequestGroupCredential
            | Function::IssueGroupCredential
            | Function::PublishKeyPackages
            | Function::CreateGroup
            | Function::SubmitGroupCommit
            | Function::ProposeGroupRemoval
            | Function::GetGroupAuthority
            | Function::GetGroupCredential
            | Function::GetKeyPackage
            | Function::GetGroup
            | Function::GetGroupCommits
            | Function::GetGroupWelcome => match crate::group::parse(function, args) {
                Some(call) => call.map(Call::Group),
                None => Err(input.invalid("not a group function".into())),
            },
        }
    }
}

fn parse_millis(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn page_size(input: &Input<'_>, size: Option<u32>) -> Result<u32, ArgError> {
    match size {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        Some(n) => Err(input.invalid(format!(
            "\"pageSize\" must be 1 to {MAX_PAGE_SIZE}, got {n}"
        ))),
    }
}

fn check_config(input: &Input<'_>, update: &ConfigUpdate) -> Result<(), ArgError> {
    let lists: [(&str, &Option<Vec<RoleRule>>); 3] = [
        ("administrator", &update.administrator),
        ("concentrator", &update.concentrator),
        ("mdms", &update.mdms),
    ];
    for (name, rules) in lists {
        let Some(rules) = rules else { continue };
        if rules.is_empty() || rules.len() > MAX_ROLE_RULES {
            return Err(input.invalid(format!("\"{name}\" must list 1 to {MAX_ROLE_RULES} rules")));
        }
        for rule in rules {
            if rule.msp_id.is_empty() || rule.msp_id.len() > MAX_MSP_ID_LEN {
                return Err(input.invalid(format!(
                    "\"{name}\": mspId must be 1 to {MAX_MSP_ID_LEN} bytes"
                )));
            }
        }
    }
    if let Some(w) = update.window {
        if w.past_ms > Window::MAX_PAST_MS || w.future_ms > Window::MAX_FUTURE_MS {
            return Err(input.invalid(format!(
                "\"window\": pastMs must be at most {} and futureMs at most {}",
                Window::MAX_PAST_MS,
                Window::MAX_FUTURE_MS
            )));
        }
    }
    Ok(())
}

fn parse_batch(input: &Input<'_>) -> Result<Vec<ReadingInput>, ArgError> {
    let raw = input.args.first().map_or(0, Vec::len);
    if raw > MAX_BATCH_ARG_BYTES {
        return Err(input.limit(format!(
            "argument of {raw} bytes is larger than {MAX_BATCH_ARG_BYTES}"
        )));
    }
    let items: Vec<String> = input.json(0)?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(input.limit(format!(
            "a batch holds 1 to {MAX_BATCH} readings, got {}",
            items.len()
        )));
    }
    Ok(items.iter().map(|item| parse_reading(item)).collect())
}

/// One base64 reading of a batch: decoded, or the reason it cannot be.
pub fn parse_reading(item: &str) -> ReadingInput {
    if item.len() > MAX_READING_BASE64 {
        return ReadingInput::Rejected(Rejection::new(
            RejectReason::Oversize,
            format!(
                "{} base64 characters; a reading is at most {MAX_READING_BYTES} bytes",
                item.len()
            ),
        ));
    }
    let bytes = match STANDARD.decode(item) {
        Ok(b) => b,
        Err(_) => {
            return ReadingInput::Rejected(Rejection::new(
                RejectReason::BadBase64,
                "not standard base64 (RFC 4648 §4, with padding)".into(),
            ));
        }
    };
    if bytes.len() > MAX_READING_BYTES {
        return ReadingInput::Rejected(Rejection::new(
            RejectReason::Oversize,
            format!(
                "{} bytes; a reading is at most {MAX_READING_BYTES}",
                bytes.len()
            ),
        ));
    }
    match Transaction::decode(&bytes) {
        Ok(tx) => ReadingInput::Decoded(Box::new(tx)),
        Err(e) => ReadingInput::Rejected(Rejection::new(RejectReason::Malformed, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn reading_elements_are_classified_without_the_ledger() {
        let reject = |item: &str| match parse_reading(item) {
            ReadingInput::Rejected(r) => r.reason,
            ReadingInput::Decoded(_) => panic!("decoded {item:?}"),
        };
        assert_eq!(reject("***"), RejectReason::BadBase64);
        assert_eq!(reject("AAAA"), RejectReason::Malformed);
        assert_eq!(reject(""), RejectReason::Malformed);
        assert_eq!(
            reject(&"A".repeat(MAX_READING_BASE64 + 4)),
            RejectReason::Oversize
        );
        // Within the base64 limit but decoding to more than the byte limit is impossible by
        // construction; the largest accepted text decodes to at most MAX_READING_BYTES + 2.
        let just = STANDARD.encode(vec![0u8; MAX_READING_BYTES + 1]);
        assert_eq!(reject(&just), RejectReason::Oversize);
    }

    #[test]
    fn readings_query_start_is_the_later_of_from_and_bookmark() {
        let hid = "ab".repeat(32);
        let q = |json: String| match Call::parse(Function::GetReadings, &args(&[&json])) {
            Ok(Call::GetReadings(q)) => q,
            other => panic!("{other:?}"),
        };
        let got = q(format!(r#"{{"hid":"{hid}","from":10,"bookmark":"25"}}"#));
        assert_eq!(
            (got.start, got.to, got.page_size),
            (25, None, DEFAULT_PAGE_SIZE)
        );
        let got = q(format!(
            r#"{{"hid":"{hid}","from":30,"to":40,"bookmark":"","pageSize":7}}"#
        ));
        assert_eq!((got.start, got.to, got.page_size), (30, Some(40), 7));
        for bad in [
            format!(r#"{{"hid":"{hid}","bookmark":"+5"}}"#),
            format!(r#"{{"hid":"{hid}","bookmark":"123456789012345678901"}}"#),
            format!(r#"{{"hid":"{hid}","from":-1}}"#),
        ] {
            assert!(
                Call::parse(Function::GetReadings, &args(&[&bad])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn provisioning_entries_are_hids_or_bound_objects() {
        let (a, b) = ("ab".repeat(32), "cd".repeat(32));
        let hash = "0f".repeat(32);
        let arg = format!(r#"{{"meters":["{b}",{{"keyHash":"{hash}","hid":"{a}"}},"{b}"]}}"#);
        let Ok(Call::ProvisionMeters(meters)) =
            Call::parse(Function::ProvisionMeters, &args(&[&arg]))
        else {
            panic!("{arg}");
        };
        let got: Vec<(String, Option<String>)> = meters
            .iter()
            .map(|(h, k)| (h.to_string(), k.map(|k| k.to_string())))
            .collect();
        assert_eq!(got, vec![(a.clone(), Some(hash.clone())), (b, None)]);

        let mdms = |arg: &str| Call::parse(Function::ProvisionMdms, &args(&[arg]));
        assert_eq!(
            mdms(&a),
            Ok(Call::ProvisionMdms {
                hid: a.parse().unwrap(),
                key_hash: None
            })
        );
        assert_eq!(
            mdms(&format!(r#"{{"hid":"{a}","keyHash":"{hash}"}}"#)),
            Ok(Call::ProvisionMdms {
                hid: a.parse().unwrap(),
                key_hash: Some(hash.parse().unwrap())
            })
        );
        assert!(matches!(
            mdms(&format!(r#"{{"hid":"{a}","keyHash":"{hash}"}} x"#)),
            Err(ArgError::Json { .. })
        ));
        assert!(matches!(
            mdms(&format!(r#"{{"hid":"{a}","keyHash":"{a}1"}}"#)),
            Err(ArgError::KeyHash { .. })
        ));
    }

    #[test]
    fn argument_counts_and_encodings_are_checked() {
        assert!(matches!(
            Call::parse(Function::GetCounts, &args(&["x"])),
            Err(ArgError::Count { got: 1, .. })
        ));
        assert!(matches!(
            Call::parse(Function::RevokeMeter, &[vec![0xff]]),
            Err(ArgError::NotUtf8 { index: 1, .. })
        ));
        assert!(matches!(
            Call::parse(Function::RegisterMeter, &args(&["@@@@"])),
            Err(ArgError::Base64 { .. })
        ));
        assert!(matches!(
            Call::parse(Function::RegisterMeter, &args(&["AAAA"])),
            Err(ArgError::Message(_))
        ));
        assert_eq!(
            Call::parse(Function::ListMeters, &[]),
            Ok(Call::ListMeters(MetersQuery {
                start: None,
                page_size: DEFAULT_PAGE_SIZE
            }))
        );
    }
}
