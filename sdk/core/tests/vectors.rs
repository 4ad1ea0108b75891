//! Known-answer vectors in `tests/vectors/v1.json`.
//!
//! `generate()` builds every vector from its fixed inputs with this crate; the test checks that the
//! committed file matches byte for byte, then checks the committed bytes on their own (decode,
//! verify, decrypt, and the expected error of every negative vector) so the file is also a usable
//! specification for another implementation. `tests/vectors/crosscheck.py` recomputes the
//! cryptography independently (Python `cryptography` / OpenSSL).
//!
//! Regenerate (only when the format changes on purpose, with a new format version):
//! `BCAMI_WRITE_VECTORS=1 cargo test -p bcami-sdk --test vectors`.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bcami_sdk::rand_core::{CryptoRng, Error as RngError, RngCore};
use bcami_sdk::session::{
    HeadEnd, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus, Session, SessionConfirm,
    SessionInit, SessionResponse,
};
use bcami_sdk::{
    DecodeError, HeadEndRegistrationRequest, HeadEndSecretKey, Hid, IntervalLength,
    KeyRotationRequest, MdmsRegistrationRequest, MdmsSecretKey, MeterPublicKey, MeterSecretKey,
    QualityFlags, RegistrationRequest, Timestamp, Transaction, UsageReport, WattHours, domain,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/v1.json");

/// An RNG that hands out exactly the given bytes, so that vectors pin what the "RNG" returned.
struct ReplayRng {
    bytes: Vec<u8>,
    position: usize,
}

impl ReplayRng {
    fn new(bytes: Vec<u8>) -> Self {
        ReplayRng { bytes, position: 0 }
    }
}

impl RngCore for ReplayRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.try_fill_bytes(dest).expect("replay RNG exhausted");
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), RngError> {
        let end = self.position + dest.len();
        if end > self.bytes.len() {
            return Err(RngError::from(
                core::num::NonZeroU32::new(RngError::CUSTOM_START).unwrap(),
            ));
        }
        dest.copy_from_slice(&self.bytes[self.position..end]);
        self.position = end;
        Ok(())
    }
}
impl CryptoRng for ReplayRng {}

fn h(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

fn unhex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("hex string")).expect("valid hex")
}

fn key32(value: &Value) -> [u8; 32] {
    unhex(value).try_into().expect("32 bytes")
}

/// Tags are ASCII ending in NUL; hex is the exact, unambiguous form.
fn tag(tag: &[u8]) -> String {
    h(tag)
}

// Fixed inputs. Keys are small-ish distinct scalars written out in full so that anyone can load
// them; the meter ID and times are realistic.
const METER_ID: &str = "SM-0001";
const MDMS_ID: &str = "MDMS-UTILITY-1";
const METER_KEY: &str = "6f0ffa5c1b35a2a3f9c0e7d4b8a1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3";
const NEW_METER_KEY: &str = "1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f001";
const MDMS_KEY: &str = "3b1c5a7d9e2f4a6b8c0d1e3f5a7b9c2d4e6f8a0b1c3d5e7f9a2b4c6d8e0f1a3b";
// The 32 bytes the meter's RNG returns for the reading (hedged into the ephemeral key).
const RNG_OUTPUT: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00";
// For `MeterSecretKey::generate`: the first 32 bytes are >= n, so they are rejected and the next
// 32 are the key. This pins the rejection-sampling rule of FORMAT.md.
const KEYGEN_RNG_OUTPUT: &str = concat!(
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0c0ffee0"
);
const ENTROPY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const REGISTRATION_TIME: u64 = 1_700_000_000_000;
const ROTATION_TIME: u64 = 1_700_000_000_500;
const READING_TIME: u64 = 1_700_001_801_234;

fn report() -> UsageReport {
    UsageReport {
        interval_start: Timestamp::from_unix_millis(1_700_000_000_000),
        interval_length: IntervalLength::HALF_HOUR,
        energy: WattHours(412),
        cumulative_register: WattHours(12_345_678),
        quality: QualityFlags::ESTIMATED,
    }
}

fn meter_key() -> MeterSecretKey {
    MeterSecretKey::from_bytes(&key32(&json!(METER_KEY))).unwrap()
}

fn mdms_key() -> MdmsSecretKey {
    MdmsSecretKey::from_bytes(&key32(&json!(MDMS_KEY))).unwrap()
}

/// The reading built from the fixed inputs (RNG replay).
fn reading() -> Transaction {
    Transaction::build(
        &mut ReplayRng::new(hex::decode(RNG_OUTPUT).unwrap()),
        &meter_key(),
        Hid::from_meter_id(METER_ID),
        Timestamp::from_unix_millis(READING_TIME),
        &report(),
        &mdms_key().public_key(),
    )
    .unwrap()
}

/// `n - s`: the high-S twin of a valid signature (same r).
fn malleate(signature: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    let s = &signature[32..64];
    let mut out = signature[..32].to_vec();
    let mut diff = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = N[i] as i16 - s[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        diff[i] = d as u8;
    }
    out.extend_from_slice(&diff);
    out
}

fn with(bytes: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut v = bytes.to_vec();
    f(&mut v);
    h(v)
}

fn negative(message: &str, name: &str, encoded: String, stage: &str, error: &str) -> Value {
    json!({ "message": message, "case": name, "encoded": encoded, "stage": stage, "error": error })
}

/// A reading made from the primitives (k256, HKDF, AES-GCM) rather than through
/// `Transaction::build`, so that the plaintext can be a report the builder would refuse to make.
/// The report's quality flags are replaced by `flags`; the MDMS key it is encrypted to is `mdms`.
fn forged_reading(meter: &MeterSecretKey, mdms: &MdmsSecretKey, hid: Hid, flags: u16) -> Vec<u8> {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use k256::ecdsa::signature::DigestSigner;

    let mut plaintext = report().encode().to_vec();
    if flags != 0 {
        plaintext[29..31].copy_from_slice(&flags.to_be_bytes());
    }
    let mut header = vec![2u8, 1];
    header.extend_from_slice(hid.as_bytes());
    header.extend_from_slice(&READING_TIME.to_be_bytes());

    let ephemeral = k256::NonZeroScalar::try_from(&[0x5e; 32][..]).unwrap();
    let ephemeral_public = k256::PublicKey::from_secret_scalar(&ephemeral);
    let e = k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&ephemeral_public, true);
    let recipient = mdms.public_key().to_bytes();
    let shared = k256::ecdh::diffie_hellman(
        ephemeral,
        k256::PublicKey::from_sec1_bytes(&recipient)
            .unwrap()
            .as_affine(),
    );
    let mut salt = e.as_bytes().to_vec();
    salt.extend_from_slice(&recipient);
    let mut okm = [0u8; 44];
    hkdf::Hkdf::<Sha256>::new(Some(&salt), shared.raw_secret_bytes())
        .expand(domain::ECIES, &mut okm)
        .unwrap();
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&okm[..32]).unwrap();
    let tag = cipher
        .encrypt_in_place_detached(
            aes_gcm::Nonce::from_slice(&okm[32..]),
            &header,
            &mut plaintext,
        )
        .unwrap();
    let mut ciphertext = e.as_bytes().to_vec();
    ciphertext.extend_from_slice(&plaintext);
    ciphertext.extend_from_slice(&tag);

    let signing = k256::ecdsa::SigningKey::from_slice(&meter.to_bytes()).unwrap();
    let digest = Sha256::new()
        .chain_update(domain::READING)
        .chain_update(&header)
        .chain_update(Sha256::digest(&ciphertext));
    let signature: k256::ecdsa::Signature = signing.sign_digest(digest);
    let signature = signature.normalize_s().unwrap_or(signature);

    let mut wire = header;
    wire.extend_from_slice(&u16::try_from(ciphertext.len()).unwrap().to_be_bytes());
    wire.extend_from_slice(&ciphertext);
    wire.extend_from_slice(&signature.to_bytes());
    wire
}

fn generate() -> Value {
    let meter = meter_key();
    let new_meter = MeterSecretKey::from_bytes(&key32(&json!(NEW_METER_KEY))).unwrap();
    let mdms = mdms_key();
    let hid = Hid::from_meter_id(METER_ID);
    let mdms_hid = Hid::from_meter_id(MDMS_ID);

    let registration =
        RegistrationRequest::build(&meter, hid, Timestamp::from_unix_millis(REGISTRATION_TIME))
            .unwrap()
            .encode();
    let mdms_registration = MdmsRegistrationRequest::build(
        &mdms,
        mdms_hid,
        Timestamp::from_unix_millis(REGISTRATION_TIME),
    )
    .unwrap()
    .encode();
    let head_end_registration = HeadEndRegistrationRequest::build(
        &HeadEndSecretKey::from_bytes(&key32(&json!(HEAD_END_KEY))).unwrap(),
        Hid::from_meter_id(HEAD_END_ID),
        Timestamp::from_unix_millis(REGISTRATION_TIME),
    )
    .unwrap()
    .encode();
    let rotation = KeyRotationRequest::build(
        &meter,
        &new_meter,
        hid,
        Timestamp::from_unix_millis(ROTATION_TIME),
    )
    .unwrap()
    .encode();
    let tx = reading();
    let wire = tx.encode();
    let ciphertext = tx.ciphertext();
    let sig_at = wire.len() - 64;

    // ECIES intermediates, recomputed here from the primitives for implementers to debug against.
    // Hedged ephemeral scalar: HKDF(ikm = rng output || meter secret, info = label || 0 || aad ||
    // report); counter 0 gives a valid scalar for these inputs.
    let mut ikm = hex::decode(RNG_OUTPUT).unwrap();
    ikm.extend_from_slice(&meter.to_bytes());
    let mut ephemeral = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, &ikm)
        .expand_multi_info(
            &[
                domain::ECIES_EPHEMERAL,
                &[0],
                &wire[..42],
                &report().encode(),
            ],
            &mut ephemeral,
        )
        .unwrap();
    let ephemeral_scalar = k256::NonZeroScalar::try_from(&ephemeral[..]).unwrap();
    let shared = k256::ecdh::diffie_hellman(
        ephemeral_scalar,
        k256::PublicKey::from_sec1_bytes(&mdms.public_key().to_bytes())
            .unwrap()
            .as_affine(),
    );
    let mut salt = ciphertext[..33].to_vec();
    salt.extend_from_slice(&mdms.public_key().to_bytes());
    let mut okm = [0u8; 44];
    hkdf::Hkdf::<Sha256>::new(Some(&salt), shared.raw_secret_bytes())
        .expand(domain::ECIES, &mut okm)
        .unwrap();
    let mut signed_message = domain::READING.to_vec();
    signed_message.extend_from_slice(&wire[..42]);
    signed_message.extend_from_slice(&Sha256::digest(ciphertext));

    let r = report();
    let negatives = vec![
        negative(
            "reading",
            "empty input",
            String::new(),
            "decode",
            "Truncated { needed: 1, available: 0 }",
        ),
        negative(
            "reading",
            "last byte missing",
            h(&wire[..wire.len() - 1]),
            "decode",
            &format!(
                "Truncated {{ needed: {}, available: {} }}",
                wire.len(),
                wire.len() - 1
            ),
        ),
        negative(
            "reading",
            "one trailing byte",
            with(&wire, |v| v.push(0)),
            "decode",
            "TrailingBytes { extra: 1 }",
        ),
        negative(
            "reading",
            "kind byte is a registration",
            with(&wire, |v| v[0] = 1),
            "decode",
            "UnexpectedKind { expected: Reading, found: 1 }",
        ),
        negative(
            "reading",
            "unknown format version 2",
            with(&wire, |v| v[1] = 2),
            "decode",
            "UnsupportedVersion { kind: Reading, version: 2 }",
        ),
        negative(
            "reading",
            "ciphertext length below minimum",
            with(&wire, |v| v[42..44].copy_from_slice(&[0, 49])),
            "decode",
            "CiphertextTooShort { length: 49, minimum: 50 }",
        ),
        negative(
            "reading",
            "ephemeral key uncompressed prefix",
            with(&wire, |v| v[44] = 4),
            "decode",
            "InvalidPointEncoding { field: EphemeralKey, prefix: 4 }",
        ),
        negative(
            "reading",
            "ephemeral key x=5 is not on the curve",
            with(&wire, |v| {
                v[45..77].fill(0);
                v[76] = 5;
            }),
            "decode",
            "PointNotOnCurve { field: EphemeralKey }",
        ),
        negative(
            "reading",
            "signature replaced by its high-S twin (n - s)",
            with(&wire, |v| {
                let twin = malleate(&v[sig_at..]);
                v[sig_at..].copy_from_slice(&twin);
            }),
            "decode",
            "HighS { field: Signature }",
        ),
        negative(
            "reading",
            "signature r = 0",
            with(&wire, |v| v[sig_at..sig_at + 32].fill(0)),
            "decode",
            "InvalidSignatureScalar { field: Signature }",
        ),
        negative(
            "reading",
            "HID bit flipped",
            with(&wire, |v| v[2] ^= 1),
            "verify",
            "Signature",
        ),
        negative(
            "reading",
            "timestamp bit flipped",
            with(&wire, |v| v[41] ^= 1),
            "verify",
            "Signature",
        ),
        negative(
            "reading",
            "ciphertext bit flipped",
            with(&wire, |v| v[80] ^= 1),
            "verify",
            "Signature",
        ),
        negative(
            "reading",
            "tag bit flipped",
            with(&wire, |v| v[sig_at - 1] ^= 1),
            "verify",
            "Signature",
        ),
        negative(
            "reading",
            "signature s bit flipped",
            with(&wire, |v| v[wire.len() - 1] ^= 1),
            "verify",
            "Signature",
        ),
        negative(
            "registration",
            "signature replaced by its high-S twin (n - s)",
            with(&registration, |v| {
                let twin = malleate(&v[75..]);
                v[75..].copy_from_slice(&twin);
            }),
            "decode",
            "HighS { field: Signature }",
        ),
        negative(
            "registration",
            "public key x=5 is not on the curve",
            with(&registration, |v| {
                v[43..75].fill(0);
                v[74] = 5;
            }),
            "decode",
            "PointNotOnCurve { field: PublicKey }",
        ),
        negative(
            "registration",
            "HID bit flipped",
            with(&registration, |v| v[2] ^= 1),
            "verify",
            "ProofOfPossession",
        ),
        negative(
            "registration",
            "relabelled as MDMS registration",
            with(&registration, |v| v[0] = 4),
            "decode",
            "UnexpectedKind { expected: MeterRegistration, found: 4 }",
        ),
        negative(
            "mdms_registration",
            "relabelled as meter registration",
            with(&mdms_registration, |v| v[0] = 1),
            "decode",
            "UnexpectedKind { expected: MdmsRegistration, found: 1 }",
        ),
        negative(
            "key_rotation",
            "signatures swapped",
            with(&rotation, |v| {
                let (a, b) = (v[75..139].to_vec(), v[139..203].to_vec());
                v[75..139].copy_from_slice(&b);
                v[139..203].copy_from_slice(&a);
            }),
            "verify",
            "CurrentKeySignature",
        ),
        negative(
            "key_rotation",
            "new-key signature replaced by the current-key one",
            with(&rotation, |v| {
                let a = v[75..139].to_vec();
                v[139..203].copy_from_slice(&a);
            }),
            "verify",
            "NewKeySignature",
        ),
        negative(
            "key_rotation",
            "new-key signature high-S twin",
            with(&rotation, |v| {
                let twin = malleate(&v[139..203]);
                v[139..203].copy_from_slice(&twin);
            }),
            "decode",
            "HighS { field: NewKeySignature }",
        ),
        negative(
            "reading",
            "MDMS key is not the one the reading was encrypted to (tag check fails)",
            with(
                &forged_reading(
                    &meter,
                    &MdmsSecretKey::from_bytes(&key32(&json!(METER_KEY))).unwrap(),
                    hid,
                    0,
                ),
                |_| {},
            ),
            "decrypt",
            "Aead",
        ),
        negative(
            "reading",
            "validly signed and encrypted, but the report sets undefined quality flag 0x0010",
            h(forged_reading(&meter, &mdms, hid, 0x0010)),
            "decrypt",
            "Report(UnknownQualityFlags { bits: 16 })",
        ),
        negative(
            "usage_report",
            "unknown report version 2",
            with(&r.encode(), |v| v[0] = 2),
            "decode",
            "UnsupportedReportVersion { version: 2 }",
        ),
        negative(
            "usage_report",
            "zero interval length",
            with(&r.encode(), |v| v[9..13].fill(0)),
            "decode",
            "ZeroIntervalLength",
        ),
        negative(
            "usage_report",
            "undefined quality flag bit 15",
            with(&r.encode(), |v| v[29] |= 0x80),
            "decode",
            "UnknownQualityFlags { bits: 32768 }",
        ),
        negative(
            "usage_report",
            "one trailing byte",
            with(&r.encode(), |v| v.push(0)),
            "decode",
            "TrailingBytes { extra: 1 }",
        ),
    ];

    json!({
        "description": "BC-AMI format version 1 known-answer vectors. All byte strings are lower-case hex.",
        "source": "Generated by bcami-sdk 0.1.0 (format version 1) from the fixed inputs below, by sdk/core/tests/vectors.rs; cross-checked independently by sdk/core/tests/vectors/crosscheck.py (Python cryptography 48 on OpenSSL: key derivation, ECDH, HKDF-SHA-256, AES-256-GCM, SHA-256, ECDSA verification and RFC 6979 deterministic signatures).",
        "format_version": 1,
        "domain_tags_hex": {
            "meter_registration": tag(domain::METER_REGISTRATION),
            "mdms_registration": tag(domain::MDMS_REGISTRATION),
            "head_end_registration": tag(domain::HEAD_END_REGISTRATION),
            "reading": tag(domain::READING),
            "rotation_current_key": tag(domain::ROTATION_CURRENT_KEY),
            "rotation_new_key": tag(domain::ROTATION_NEW_KEY),
            "ecies_hkdf_info": tag(domain::ECIES),
            "ecies_ephemeral": tag(domain::ECIES_EPHEMERAL),
            "secret_key_from_entropy": tag(domain::SECRET_KEY_FROM_ENTROPY),
            "session_transcript": tag(domain::SESSION_TRANSCRIPT),
            "session_keys_hkdf_info": tag(domain::SESSION_KEYS),
            "session_head_end_signature": tag(domain::SESSION_HEAD_END_SIGNATURE),
            "session_head_end_mac": tag(domain::SESSION_HEAD_END_MAC),
            "session_meter_signature": tag(domain::SESSION_METER_SIGNATURE),
            "session_meter_mac": tag(domain::SESSION_METER_MAC),
            "session_ephemeral": tag(domain::SESSION_EPHEMERAL),
        },
        "inputs": {
            "meter_id": METER_ID,
            "mdms_id": MDMS_ID,
            "meter_secret_key": METER_KEY,
            "new_meter_secret_key": NEW_METER_KEY,
            "mdms_secret_key": MDMS_KEY,
            "rng_output": RNG_OUTPUT,
            "keygen_rng_output": KEYGEN_RNG_OUTPUT,
            "registration_timestamp_ms": REGISTRATION_TIME,
            "rotation_timestamp_ms": ROTATION_TIME,
            "reading_timestamp_ms": READING_TIME,
            "report": {
                "interval_start_ms": r.interval_start.unix_millis(),
                "interval_length_s": r.interval_length.seconds(),
                "energy_wh": r.energy.0,
                "cumulative_register_wh": r.cumulative_register.0,
                "quality_flags": r.quality.bits(),
            },
        },
        "derived": {
            "meter_hid": hid.to_string(),
            "mdms_hid": mdms_hid.to_string(),
            "meter_public_key": h(meter.public_key().to_bytes()),
            "new_meter_public_key": h(new_meter.public_key().to_bytes()),
            "mdms_public_key": h(mdms.public_key().to_bytes()),
        },
        "generated_key": {
            "rng_output": KEYGEN_RNG_OUTPUT,
            "secret_key": h(MeterSecretKey::generate(&mut ReplayRng::new(hex::decode(KEYGEN_RNG_OUTPUT).unwrap())).unwrap().to_bytes()),
        },
        "entropy_key": {
            "entropy": ENTROPY,
            "secret_key": h(MeterSecretKey::from_entropy(&hex::decode(ENTROPY).unwrap()).unwrap().to_bytes()),
        },
        "usage_report": h(r.encode()),
        "meter_registration": h(&registration),
        "mdms_registration": h(&mdms_registration),
        "head_end_registration": h(&head_end_registration),
        "key_rotation": h(&rotation),
        "reading": {
            "ephemeral_secret": h(ephemeral),
            "ephemeral_public_key": h(&ciphertext[..33]),
            "ecdh_shared_x": h(shared.raw_secret_bytes()),
            "hkdf_salt": h(&salt),
            "aes_key": h(&okm[..32]),
            "aes_nonce": h(&okm[32..]),
            "aad": h(&wire[..42]),
            "ciphertext": h(ciphertext),
            "ciphertext_sha256": h(tx.ciphertext_hash()),
            "signed_message": h(&signed_message),
            "signature": h(tx.signature()),
            "encoded": h(&wire),
        },
        "negative": negatives,
        "session": session_vectors(),
    })
}

fn committed() -> Value {
    serde_json::from_str(&std::fs::read_to_string(PATH).expect("vectors file exists"))
        .expect("valid JSON")
}

#[test]
fn committed_vectors_match_this_implementation() {
    let generated = generate();
    if std::env::var_os("BCAMI_WRITE_VECTORS").is_some() {
        std::fs::write(
            PATH,
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
    }
    // Compared without printing both documents: they are too large to read as a diff here.
    // Regenerate to a scratch copy and use `git diff` to see what changed.
    assert!(
        committed() == generated,
        "vectors drifted: the format changed; bump the version (see the module docs)"
    );
}

#[test]
fn committed_bytes_decode_verify_and_decrypt() {
    let v = committed();
    let meter = MeterPublicKey::from_sec1_bytes(&unhex(&v["derived"]["meter_public_key"])).unwrap();
    let mdms = MdmsSecretKey::from_bytes(&key32(&v["inputs"]["mdms_secret_key"])).unwrap();

    let registration = RegistrationRequest::decode(&unhex(&v["meter_registration"])).unwrap();
    registration.verify().unwrap();
    assert_eq!(registration.public_key(), &meter);
    assert_eq!(
        registration.hid(),
        v["derived"]["meter_hid"].as_str().unwrap().parse().unwrap()
    );

    let mdms_registration =
        MdmsRegistrationRequest::decode(&unhex(&v["mdms_registration"])).unwrap();
    mdms_registration.verify().unwrap();
    assert_eq!(mdms_registration.public_key(), &mdms.public_key());

    let head_end_registration =
        HeadEndRegistrationRequest::decode(&unhex(&v["head_end_registration"])).unwrap();
    head_end_registration.verify().unwrap();
    assert_eq!(
        h(head_end_registration.public_key().to_bytes()),
        v["session"]["derived"]["head_end_public_key"]
    );

    let rotation = KeyRotationRequest::decode(&unhex(&v["key_rotation"])).unwrap();
    rotation.verify(&meter).unwrap();
    assert_eq!(
        h(rotation.new_public_key().to_bytes()),
        v["derived"]["new_meter_public_key"]
    );

    let tx = Transaction::decode(&unhex(&v["reading"]["encoded"])).unwrap();
    tx.verify(&meter).unwrap();
    assert_eq!(h(tx.ciphertext_hash()), v["reading"]["ciphertext_sha256"]);
    let decrypted = tx.decrypt(&mdms).unwrap();
    assert_eq!(h(decrypted.encode()), v["usage_report"]);
    assert_eq!(decrypted, report());
}

#[test]
fn every_negative_vector_fails_with_its_error() {
    let v = committed();
    let meter = MeterPublicKey::from_sec1_bytes(&unhex(&v["derived"]["meter_public_key"])).unwrap();
    let mdms = MdmsSecretKey::from_bytes(&key32(&v["inputs"]["mdms_secret_key"])).unwrap();
    let negatives = v["negative"].as_array().unwrap();
    assert!(negatives.len() >= 20);
    for case in negatives {
        let bytes = unhex(&case["encoded"]);
        let outcome: Result<(), String> = match case["message"].as_str().unwrap() {
            "reading" => decode_then(Transaction::decode(&bytes), |tx| {
                tx.verify(&meter).map_err(|e| format!("verify: {e:?}"))?;
                tx.decrypt(&mdms)
                    .map(drop)
                    .map_err(|e| format!("decrypt: {e:?}"))
            }),
            "usage_report" => UsageReport::decode(&bytes)
                .map(drop)
                .map_err(|e| format!("decode: {e:?}")),
            "registration" => decode_then(RegistrationRequest::decode(&bytes), |r| {
                r.verify().map_err(|e| format!("verify: {e:?}"))
            }),
            "mdms_registration" => decode_then(MdmsRegistrationRequest::decode(&bytes), |r| {
                r.verify().map_err(|e| format!("verify: {e:?}"))
            }),
            "key_rotation" => decode_then(KeyRotationRequest::decode(&bytes), |r| {
                r.verify(&meter).map_err(|e| format!("verify: {e:?}"))
            }),
            other => panic!("unknown message {other}"),
        };
        let expected = format!(
            "{}: {}",
            case["stage"].as_str().unwrap(),
            case["error"].as_str().unwrap()
        );
        assert_eq!(outcome, Err(expected), "case {}", case["case"]);
    }
}

/// Decodes, then runs the later stages, which label their own errors ("verify: …", "decrypt: …").
fn decode_then<T>(
    decoded: Result<T, DecodeError>,
    later: impl FnOnce(&T) -> Result<(), String>,
) -> Result<(), String> {
    let value = decoded.map_err(|e| format!("decode: {e:?}"))?;
    later(&value)
}

// ---- Meter ↔ head-end session (FORMAT.md, "Session handshake") ----

const HEAD_END_ID: &str = "AHE-UTILITY-1";
const HEAD_END_KEY: &str = "4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293";
const SESSION_TIME: u64 = 1_700_000_100_000;
// What each side's RNG returns: the ephemeral scalar (32 bytes), then the nonce (16 bytes).
const METER_SESSION_RNG: &str = concat!(
    "7e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7",
    "000102030405060708090a0b0c0d0e0f"
);
const HEAD_END_SESSION_RNG: &str = concat!(
    "2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a",
    "f0e0d0c0b0a090807060504030201000"
);
const SESSION_AAD: &[u8] = b"BC-AMI example aad";
const SESSION_UP: &[u8] = b"meter status: ok";
const SESSION_DOWN: &[u8] = b"demand response: -2 kW, 30 min";

fn head_end() -> HeadEnd {
    HeadEnd::new(
        Hid::from_meter_id(HEAD_END_ID),
        HeadEndSecretKey::from_bytes(&key32(&json!(HEAD_END_KEY))).unwrap(),
        HeadEndPolicy::default(),
    )
}

fn session_directory() -> std::collections::BTreeMap<Hid, MeterRecord> {
    std::collections::BTreeMap::from([(
        Hid::from_meter_id(METER_ID),
        MeterRecord {
            public_key: meter_key().public_key(),
            key_version: 1,
            status: MeterStatus::Active,
        },
    )])
}

/// The meter's first step from the fixed inputs.
fn session_start() -> (MeterHandshake, SessionInit) {
    MeterHandshake::start(
        &mut ReplayRng::new(hex::decode(METER_SESSION_RNG).unwrap()),
        Hid::from_meter_id(METER_ID),
        head_end().identity(),
        Timestamp::from_unix_millis(SESSION_TIME),
    )
    .unwrap()
}

fn session_respond(init: &SessionInit) -> (bcami_sdk::session::HeadEndHandshake, SessionResponse) {
    head_end()
        .respond(
            &mut ReplayRng::new(hex::decode(HEAD_END_SESSION_RNG).unwrap()),
            init,
            &session_directory(),
            Timestamp::from_unix_millis(SESSION_TIME),
        )
        .unwrap()
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    use hkdf::hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn session_vectors() -> Value {
    let (meter, init) = session_start();
    let (pending, response) = session_respond(&init);
    let (mut meter_session, confirm) = meter.finish(&meter_key(), &response).unwrap();
    let mut head_end_session = pending.finish(&confirm, &session_directory()).unwrap();
    let up = meter_session.seal(SESSION_AAD, SESSION_UP).unwrap();
    let down = head_end_session.seal(SESSION_AAD, SESSION_DOWN).unwrap();
    let (init, response, confirm) = (init.encode(), response.encode(), confirm.encode());

    // Intermediates, recomputed from the primitives for implementers to debug against.
    let meter_rng = hex::decode(METER_SESSION_RNG).unwrap();
    let x = k256::NonZeroScalar::try_from(&meter_rng[..32]).unwrap();
    let y_point = k256::PublicKey::from_sec1_bytes(&response[34..67]).unwrap();
    let shared = k256::ecdh::diffie_hellman(x, y_point.as_affine());
    let transcript = |response_part: &[u8]| -> [u8; 32] {
        Sha256::new()
            .chain_update(domain::SESSION_TRANSCRIPT)
            .chain_update(&init)
            .chain_update(response_part)
            .finalize()
            .into()
    };
    let th1 = transcript(&response[..83]);
    let th2 = transcript(&response);
    let mut okm = [0u8; 96];
    hkdf::Hkdf::<Sha256>::new(Some(&th1), shared.raw_secret_bytes())
        .expand(domain::SESSION_KEYS, &mut okm)
        .unwrap();
    assert_eq!(
        hmac_sha256(&okm[..32], &[domain::SESSION_HEAD_END_MAC, &th1]),
        response[147..]
    );
    assert_eq!(
        hmac_sha256(&okm[..32], &[domain::SESSION_METER_MAC, &th2]),
        confirm[66..]
    );
    assert_eq!(meter_session.id(), &th2);
    let signed = |tag: &[u8], th: &[u8; 32]| [tag, th].concat();

    let negatives = vec![
        negative(
            "session_init",
            "empty input",
            String::new(),
            "decode",
            "Truncated { needed: 1, available: 0 }",
        ),
        negative(
            "session_init",
            "one trailing byte",
            with(&init, |v| v.push(0)),
            "decode",
            "TrailingBytes { extra: 1 }",
        ),
        negative(
            "session_init",
            "kind byte is a session confirm",
            with(&init, |v| v[0] = 7),
            "decode",
            "UnexpectedKind { expected: SessionInit, found: 7 }",
        ),
        negative(
            "session_init",
            "unknown format version 2",
            with(&init, |v| v[1] = 2),
            "decode",
            "UnsupportedVersion { kind: SessionInit, version: 2 }",
        ),
        negative(
            "session_init",
            "ephemeral key uncompressed prefix",
            with(&init, |v| v[42] = 4),
            "decode",
            "InvalidPointEncoding { field: EphemeralKey, prefix: 4 }",
        ),
        negative(
            "session_init",
            "ephemeral key x=5 is not on the curve",
            with(&init, |v| {
                v[43..75].fill(0);
                v[74] = 5;
            }),
            "decode",
            "PointNotOnCurve { field: EphemeralKey }",
        ),
        negative(
            "session_init",
            "meter nonce bit flipped (the head-end signs the altered transcript; the meter refuses it)",
            with(&init, |v| v[90] ^= 1),
            "meter finish",
            "Authentication",
        ),
        negative(
            "session_init",
            "timestamp bit flipped",
            with(&init, |v| v[41] ^= 1),
            "meter finish",
            "Authentication",
        ),
        negative(
            "session_response",
            "last byte missing",
            h(&response[..178]),
            "decode",
            "Truncated { needed: 179, available: 178 }",
        ),
        negative(
            "session_response",
            "head-end signature replaced by its high-S twin (n - s)",
            with(&response, |v| {
                let twin = malleate(&v[83..147]);
                v[83..147].copy_from_slice(&twin);
            }),
            "decode",
            "HighS { field: Signature }",
        ),
        negative(
            "session_response",
            "head-end id bit flipped",
            with(&response, |v| v[2] ^= 1),
            "meter finish",
            "UnexpectedHeadEnd",
        ),
        negative(
            "session_response",
            "head-end ephemeral replaced by the meter's",
            with(&response, |v| v[34..67].copy_from_slice(&init[42..75])),
            "meter finish",
            "Authentication",
        ),
        negative(
            "session_response",
            "head-end nonce bit flipped",
            with(&response, |v| v[82] ^= 1),
            "meter finish",
            "Authentication",
        ),
        negative(
            "session_response",
            "signature s bit flipped",
            with(&response, |v| v[146] ^= 1),
            "meter finish",
            "Authentication",
        ),
        negative(
            "session_response",
            "MAC bit flipped",
            with(&response, |v| v[178] ^= 1),
            "meter finish",
            "Authentication",
        ),
        negative(
            "session_confirm",
            "kind byte is a session response",
            with(&confirm, |v| v[0] = 6),
            "decode",
            "UnexpectedKind { expected: SessionConfirm, found: 6 }",
        ),
        negative(
            "session_confirm",
            "meter signature r = 0",
            with(&confirm, |v| v[2..34].fill(0)),
            "decode",
            "InvalidSignatureScalar { field: Signature }",
        ),
        negative(
            "session_confirm",
            "meter signature s bit flipped",
            with(&confirm, |v| v[65] ^= 1),
            "head-end finish",
            "Authentication",
        ),
        negative(
            "session_confirm",
            "MAC bit flipped",
            with(&confirm, |v| v[97] ^= 1),
            "head-end finish",
            "Authentication",
        ),
        negative(
            "session_record",
            "meter to head-end, ciphertext bit flipped",
            with(&up, |v| v[10] ^= 1),
            "open",
            "Aead",
        ),
        negative(
            "session_record",
            "meter to head-end, sequence number 1 instead of 0",
            with(&up, |v| v[9] = 1),
            "open",
            "Aead",
        ),
        negative(
            "session_record",
            "shorter than header and tag",
            h(&up[..25]),
            "open",
            "Decode(Truncated { needed: 26, available: 25 })",
        ),
    ];

    json!({
        "description": "One complete handshake and one sealed message each way. The meter's and the head-end's RNGs return exactly the bytes given (32-byte ephemeral scalar, then the 16-byte nonce); signatures are RFC 6979, low-S.",
        "inputs": {
            "meter_id": METER_ID,
            "meter_secret_key": METER_KEY,
            "meter_key_version": 1,
            "head_end_id": HEAD_END_ID,
            "head_end_secret_key": HEAD_END_KEY,
            "timestamp_ms": SESSION_TIME,
            "meter_rng_output": METER_SESSION_RNG,
            "head_end_rng_output": HEAD_END_SESSION_RNG,
            "aad": h(SESSION_AAD),
            "meter_to_head_end_plaintext": h(SESSION_UP),
            "head_end_to_meter_plaintext": h(SESSION_DOWN),
        },
        "derived": {
            "head_end_hid": Hid::from_meter_id(HEAD_END_ID).to_string(),
            "head_end_public_key": h(head_end().identity().public_key.to_bytes()),
            "meter_ephemeral_public_key": h(&init[42..75]),
            "head_end_ephemeral_public_key": h(&response[34..67]),
            "ecdh_shared_x": h(shared.raw_secret_bytes()),
            "transcript_hash_1": h(th1),
            "confirmation_key": h(&okm[..32]),
            "meter_to_head_end_key": h(&okm[32..64]),
            "head_end_to_meter_key": h(&okm[64..]),
            "head_end_signed_message": h(signed(domain::SESSION_HEAD_END_SIGNATURE, &th1)),
            "transcript_hash_2_session_id": h(th2),
            "meter_signed_message": h(signed(domain::SESSION_METER_SIGNATURE, &th2)),
            "meter_to_head_end_nonce_seq_0": "010000000000000000000000",
            "head_end_to_meter_nonce_seq_0": "020000000000000000000000",
        },
        "session_init": h(&init),
        "session_response": h(&response),
        "session_confirm": h(&confirm),
        "sealed_meter_to_head_end": h(&up),
        "sealed_head_end_to_meter": h(&down),
        "negative": negatives,
    })
}

#[test]
fn committed_session_vectors_complete_and_every_negative_fails() {
    let v = &committed()["session"];
    // The committed messages drive both sides: the head-end answers the committed init with the
    // committed response, the meter confirms with the committed confirm, and each side opens
    // what the other sealed.
    let init = SessionInit::decode(&unhex(&v["session_init"])).unwrap();
    let (meter, init_again) = session_start();
    assert_eq!(init_again, init);
    let (pending, response) = session_respond(&init);
    assert_eq!(h(response.encode()), v["session_response"]);
    let (mut meter_session, confirm) = meter
        .finish(
            &meter_key(),
            &SessionResponse::decode(&unhex(&v["session_response"])).unwrap(),
        )
        .unwrap();
    assert_eq!(h(confirm.encode()), v["session_confirm"]);
    let mut head_end_session = pending
        .finish(
            &SessionConfirm::decode(&unhex(&v["session_confirm"])).unwrap(),
            &session_directory(),
        )
        .unwrap();
    assert_eq!(
        h(meter_session.id()),
        v["derived"]["transcript_hash_2_session_id"]
    );
    assert_eq!(
        head_end_session
            .open(SESSION_AAD, &unhex(&v["sealed_meter_to_head_end"]))
            .unwrap(),
        SESSION_UP
    );
    assert_eq!(
        meter_session
            .open(SESSION_AAD, &unhex(&v["sealed_head_end_to_meter"]))
            .unwrap(),
        SESSION_DOWN
    );

    let negatives = v["negative"].as_array().unwrap();
    assert!(negatives.len() >= 20);
    for case in negatives {
        let bytes = unhex(&case["encoded"]);
        let outcome: Result<(), String> = match case["message"].as_str().unwrap() {
            "session_init" => decode_then(SessionInit::decode(&bytes), |init| {
                // The head-end answers what it received; the meter checks it against what it sent.
                let (meter, _) = session_start();
                let (_, response) = session_respond(init);
                meter
                    .finish(&meter_key(), &response)
                    .map(drop)
                    .map_err(|e| format!("meter finish: {e:?}"))
            }),
            "session_response" => decode_then(SessionResponse::decode(&bytes), |response| {
                let (meter, _) = session_start();
                meter
                    .finish(&meter_key(), response)
                    .map(drop)
                    .map_err(|e| format!("meter finish: {e:?}"))
            }),
            "session_confirm" => decode_then(SessionConfirm::decode(&bytes), |confirm| {
                let (_, init) = session_start();
                let (pending, _) = session_respond(&init);
                pending
                    .finish(confirm, &session_directory())
                    .map(drop)
                    .map_err(|e| format!("head-end finish: {e:?}"))
            }),
            "session_record" => {
                let mut session: Session = {
                    let (meter, init) = session_start();
                    let (pending, response) = session_respond(&init);
                    let (_, confirm) = meter.finish(&meter_key(), &response).unwrap();
                    pending.finish(&confirm, &session_directory()).unwrap()
                };
                session
                    .open(SESSION_AAD, &bytes)
                    .map(drop)
                    .map_err(|e| format!("open: {e:?}"))
            }
            other => panic!("unknown message {other}"),
        };
        let expected = format!(
            "{}: {}",
            case["stage"].as_str().unwrap(),
            case["error"].as_str().unwrap()
        );
        assert_eq!(outcome, Err(expected), "case {}", case["case"]);
    }
}
