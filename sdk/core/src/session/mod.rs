//! Meter ↔ head-end authenticated sessions: a SIGMA-I style signed-ephemeral ECDH in three
//! messages, then AES-256-GCM with a key and a sequence number per direction.
//!
//! This replaces the handshake of the multicast-key paper, whose meter holds no long-term secret
//! (its `H(ID‖Y)` is keyless, so anyone knowing a meter's ID could get a session as that meter).
//! Here each side signs the transcript with the key registered for it on the ledger:
//!
//! ```text
//! meter                                                         head-end
//! SessionInit  = HID, timestamp, X = x·G, N_M            ──▶
//!                                                               looks the HID up (key, version, status)
//!          ◀──  SessionResponse = AHE id, Y = y·G, N_A, Sig_AHE(th1), MAC_km(th1)
//! SessionConfirm = Sig_meter(th2), MAC_km(th2)           ──▶
//!                                                               checks the key is still the registered one
//! ```
//! `th1 = SHA-256(tag ‖ SessionInit ‖ response up to N_A)`, `th2 = SHA-256(tag ‖ SessionInit ‖
//! SessionResponse)`; `km ‖ k_meter→AHE ‖ k_AHE→meter = HKDF-SHA-256(salt = th1, ikm = x(x·Y),
//! info = tag)`. The byte layouts are in FORMAT.md.
//!
//! The API is sans-I/O and typed (rustls style): each step consumes its state by value, so no
//! step can run twice, and the caller supplies the RNG and the clock.
//!
//! ```
//! use bcami_sdk::session::{
//!     HeadEnd, HeadEndIdentity, HeadEndPolicy, MeterHandshake, MeterRecord, MeterStatus,
//!     SessionConfirm, SessionInit, SessionResponse,
//! };
//! use bcami_sdk::{HeadEndSecretKey, Hid, MeterSecretKey, Timestamp};
//! use std::collections::BTreeMap;
//!
//! # fn main() -> Result<(), bcami_sdk::Error> {
//! # let mut rng = rand_core_for_doc::Rng(1);
//! let meter_key = MeterSecretKey::from_entropy(&[1; 32])?;
//! let hid = Hid::from_meter_id("SM-0001");
//! let head_end_key = HeadEndSecretKey::from_entropy(&[2; 32])?;
//! let head_end_id = Hid::from_meter_id("AHE-1");
//! let now = Timestamp::from_unix_millis(1_700_000_000_000);
//!
//! // What each side reads from the ledger.
//! let head_end_on_ledger = HeadEndIdentity { id: head_end_id, public_key: head_end_key.public_key() };
//! let mut directory = BTreeMap::new();
//! directory.insert(hid, MeterRecord {
//!     public_key: meter_key.public_key(), key_version: 1, status: MeterStatus::Active,
//! });
//! let head_end = HeadEnd::new(head_end_id, head_end_key, HeadEndPolicy::default());
//!
//! let (meter, init) = MeterHandshake::start(&mut rng, hid, head_end_on_ledger, now)?;
//! let init = SessionInit::decode(&init.encode())?; // over the wire
//! let (pending, response) = head_end.respond(&mut rng, &init, &directory, now)?;
//! let response = SessionResponse::decode(&response.encode())?;
//! let (mut meter_session, confirm) = meter.finish(&meter_key, &response)?;
//! let confirm = SessionConfirm::decode(&confirm.encode())?;
//! let mut head_end_session = pending.finish(&confirm, &directory)?;
//!
//! let command = head_end_session.seal(b"", b"demand response: -2 kW for 30 min")?;
//! assert_eq!(meter_session.open(b"", &command)?, b"demand response: -2 kW for 30 min");
//! assert!(meter_session.open(b"", &command).is_err()); // a replay
//! # Ok(())
//! # }
//! # mod rand_core_for_doc {
//! #     // A toy generator for the example only; use the platform's CSPRNG (e.g. `OsRng`).
//! #     pub struct Rng(pub u64);
//! #     impl bcami_sdk::rand_core::RngCore for Rng {
//! #         fn next_u32(&mut self) -> u32 { (self.next_u64() >> 32) as u32 }
//! #         fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); self.0 }
//! #         fn fill_bytes(&mut self, d: &mut [u8]) { for b in d { *b = (self.next_u64() >> 56) as u8; } }
//! #         fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), bcami_sdk::rand_core::Error> { self.fill_bytes(d); Ok(()) }
//! #     }
//! #     impl bcami_sdk::rand_core::CryptoRng for Rng {}
//! # }
//! ```

mod messages;
mod record;

use alloc::collections::BTreeMap;

use hkdf::Hkdf;
use hkdf::hmac::digest::KeyInit;
use hkdf::hmac::{Hmac, Mac};
use k256::elliptic_curve::ops::MulByGenerator;
use k256::elliptic_curve::zeroize::Zeroize;
use k256::{FieldBytes, NonZeroScalar, ProjectivePoint, PublicKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

pub use messages::{MAC_LEN, NONCE_LEN, SessionConfirm, SessionInit, SessionResponse};
pub use record::{Role, Session};

use crate::domain;
use crate::error::{HandshakeError, KeyError};
use crate::identity::{Hid, Timestamp};
use crate::keys::{
    HeadEndPublicKey, HeadEndSecretKey, MIN_ENTROPY_LEN, MeterPublicKey, MeterSecretKey,
    random_scalar, sign, verify,
};
use crate::wire::Header;
use messages::Ephemeral;
use record::SessionParts;

/// The head-end as a meter knows it from the ledger: its identity (`SHA-256` of its ID, like a
/// HID) and its registered signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadEndIdentity {
    /// `SHA-256(head-end ID)`.
    pub id: Hid,
    /// The head-end's registered public key.
    pub public_key: HeadEndPublicKey,
}

/// Whether the ledger lets a meter in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MeterStatus {
    /// Registered and not revoked.
    Active,
    /// Revoked by the Utility: no new session.
    Revoked,
}

/// A meter as the ledger records it: the key registered for its HID now, that key's version
/// (it increases with every rotation) and its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterRecord {
    /// The key the meter must sign the handshake with.
    pub public_key: MeterPublicKey,
    /// The version of that key.
    pub key_version: u64,
    /// Active or revoked.
    pub status: MeterStatus,
}

/// The head-end's view of the ledger's meter registry. The head-end consults it when a meter asks
/// for a session and again when the meter confirms, so a key rotated or revoked in between is
/// refused. Implement it over a ledger cache; `BTreeMap<Hid, MeterRecord>` implements it for tests
/// and embedded use.
pub trait MeterDirectory {
    /// The current record for `hid`, or `None` if no key is registered for it.
    fn meter(&self, hid: &Hid) -> Option<MeterRecord>;
}

impl MeterDirectory for BTreeMap<Hid, MeterRecord> {
    fn meter(&self, hid: &Hid) -> Option<MeterRecord> {
        self.get(hid).copied()
    }
}

impl<D: MeterDirectory + ?Sized> MeterDirectory for &D {
    fn meter(&self, hid: &Hid) -> Option<MeterRecord> {
        (**self).meter(hid)
    }
}

/// What the head-end accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadEndPolicy {
    /// How far a `SessionInit` timestamp may be from the head-end's clock, either way. This only
    /// bounds how long a captured request stays answerable: a replayed request gets a fresh
    /// ephemeral key from the head-end, so the replayer can never finish it without the meter's
    /// key.
    pub max_clock_skew_ms: u64,
}

impl Default for HeadEndPolicy {
    /// Five minutes.
    fn default() -> Self {
        HeadEndPolicy {
            max_clock_skew_ms: 5 * 60 * 1000,
        }
    }
}

/// Draws a handshake ephemeral scalar and nonce from the RNG (rejection sampling as in FORMAT.md
/// *Scalars*, then 16 bytes).
fn ephemeral_from_rng<R: CryptoRngCore + ?Sized>(
    rng: &mut R,
) -> Result<(NonZeroScalar, [u8; NONCE_LEN]), KeyError> {
    let scalar = random_scalar(rng)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.try_fill_bytes(&mut nonce).map_err(|_| KeyError::Rng)?;
    Ok((scalar, nonce))
}

/// Handshake keys from caller entropy, hedged with the meter's key and the request:
/// `HKDF-SHA-256(salt = none, ikm = entropy || meter secret key, info = SESSION_EPHEMERAL ||
/// counter || HID || timestamp || head-end id)`, 48 bytes: a scalar candidate (32) and the nonce
/// (16); counter 0, 1, … until the scalar is in `[1, n-1]`.
fn ephemeral_from_entropy(
    entropy: &[u8],
    meter_key: &MeterSecretKey,
    hid: Hid,
    timestamp: Timestamp,
    head_end: Hid,
) -> Result<(NonZeroScalar, [u8; NONCE_LEN]), KeyError> {
    if entropy.len() < MIN_ENTROPY_LEN {
        return Err(KeyError::NotEnoughEntropy {
            provided: entropy.len(),
            needed: MIN_ENTROPY_LEN,
        });
    }
    let mut extract = hkdf::HkdfExtract::<Sha256>::new(None);
    extract.input_ikm(entropy);
    let mut secret = meter_key.to_bytes();
    extract.input_ikm(&secret);
    secret.zeroize();
    let (_, hkdf) = extract.finalize();
    let mut okm = [0u8; 32 + NONCE_LEN];
    for counter in 0..16u8 {
        hkdf.expand_multi_info(
            &[
                domain::SESSION_EPHEMERAL,
                &[counter],
                hid.as_bytes(),
                &timestamp.to_bytes(),
                head_end.as_bytes(),
            ],
            &mut okm,
        )
        .map_err(|_| KeyError::Rng)?;
        let mut candidate = [0u8; 32];
        candidate.copy_from_slice(&okm[..32]);
        let scalar: Option<NonZeroScalar> =
            NonZeroScalar::from_repr(FieldBytes::from(candidate)).into();
        candidate.zeroize();
        if let Some(scalar) = scalar {
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&okm[32..]);
            okm.zeroize();
            return Ok((scalar, nonce));
        }
    }
    okm.zeroize();
    Err(KeyError::Rng)
}

fn ephemeral_point(scalar: &NonZeroScalar) -> Ephemeral {
    // `mul_by_generator` uses k256's precomputed tables when enabled. `from_affine` refuses only
    // the identity, which a non-zero scalar cannot give; the fallback keeps this free of panics.
    let point =
        PublicKey::from_affine(ProjectivePoint::mul_by_generator(scalar.as_ref()).to_affine())
            .unwrap_or_else(|_| PublicKey::from_secret_scalar(scalar));
    Ephemeral::from_point(point)
}

/// HMAC-SHA-256 under a 32-byte key. A key shorter than the 64-byte block is zero-padded by
/// HMAC's definition (RFC 2104), so padding it here and using the infallible constructor is the
/// same function without an error path.
fn hmac(key: &[u8; 32], tag: &[u8], transcript: &[u8; 32]) -> [u8; MAC_LEN] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    mac.update(tag);
    mac.update(transcript);
    mac.finalize().into_bytes().into()
}

fn hmac_verify(
    key: &[u8; 32],
    tag: &[u8],
    transcript: &[u8; 32],
    expected: &[u8; MAC_LEN],
) -> bool {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    mac.update(tag);
    mac.update(transcript);
    // Constant-time comparison.
    mac.verify_slice(expected).is_ok()
}

/// The transcript hashes and the keys derived from the ECDH secret.
struct KeySchedule {
    /// `th1`: the transcript up to the head-end's nonce.
    th1: [u8; 32],
    /// The running hash after `th1`, to extend with the response's signature and MAC.
    running: Sha256,
    /// The key-confirmation (MAC) key.
    km: [u8; 32],
    meter_to_head_end: [u8; 32],
    head_end_to_meter: [u8; 32],
}

impl KeySchedule {
    fn new(init: &SessionInit, response_body: &[u8], shared_x: &[u8]) -> KeySchedule {
        let running = Sha256::new()
            .chain_update(domain::SESSION_TRANSCRIPT)
            .chain_update(init.encode())
            .chain_update(response_body);
        let th1: [u8; 32] = running.clone().finalize().into();
        let mut okm = [0u8; 96];
        // 96 bytes is far below HKDF-SHA-256's limit of 255 * 32, so expand cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(&th1), shared_x).expand(domain::SESSION_KEYS, &mut okm);
        let mut keys = KeySchedule {
            th1,
            running,
            km: [0; 32],
            meter_to_head_end: [0; 32],
            head_end_to_meter: [0; 32],
        };
        keys.km.copy_from_slice(&okm[..32]);
        keys.meter_to_head_end.copy_from_slice(&okm[32..64]);
        keys.head_end_to_meter.copy_from_slice(&okm[64..]);
        okm.zeroize();
        keys
    }

    /// `th2`: the whole transcript up to the meter's confirmation.
    fn th2(&self, response: &SessionResponse) -> [u8; 32] {
        self.running
            .clone()
            .chain_update(response.signature.to_bytes())
            .chain_update(response.mac)
            .finalize()
            .into()
    }

    fn session(
        &self,
        role: Role,
        id: [u8; 32],
        meter: Hid,
        head_end: Hid,
        version: Option<u64>,
    ) -> Session {
        Session::new(SessionParts {
            role,
            meter_to_head_end: &self.meter_to_head_end,
            head_end_to_meter: &self.head_end_to_meter,
            id,
            meter,
            head_end,
            meter_key_version: version,
        })
    }
}

impl Drop for KeySchedule {
    fn drop(&mut self) {
        self.km.zeroize();
        self.meter_to_head_end.zeroize();
        self.head_end_to_meter.zeroize();
    }
}

fn head_end_signature_digest(th1: &[u8; 32]) -> Sha256 {
    Sha256::new()
        .chain_update(domain::SESSION_HEAD_END_SIGNATURE)
        .chain_update(th1)
}

fn meter_signature_digest(th2: &[u8; 32]) -> Sha256 {
    Sha256::new()
        .chain_update(domain::SESSION_METER_SIGNATURE)
        .chain_update(th2)
}

/// The meter after sending [`SessionInit`], waiting for the head-end's [`SessionResponse`].
/// Holds the ephemeral secret; dropping it abandons the handshake.
pub struct MeterHandshake {
    init: SessionInit,
    ephemeral: NonZeroScalar,
    head_end: HeadEndIdentity,
}

impl core::fmt::Debug for MeterHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MeterHandshake")
            .field("init", &self.init)
            .field("head_end", &self.head_end)
            .finish_non_exhaustive()
    }
}

impl MeterHandshake {
    /// Starts a handshake with `head_end` (as read from the ledger) at the meter's time `now`:
    /// an ephemeral key and a nonce from `rng`.
    pub fn start<R: CryptoRngCore + ?Sized>(
        rng: &mut R,
        hid: Hid,
        head_end: HeadEndIdentity,
        now: Timestamp,
    ) -> Result<(MeterHandshake, SessionInit), HandshakeError> {
        let (ephemeral, nonce) = ephemeral_from_rng(rng)?;
        Ok(Self::with_ephemeral(ephemeral, nonce, hid, head_end, now))
    }

    /// Like [`MeterHandshake::start`], with at least 32 bytes of caller entropy (firmware, the C
    /// ABI). The ephemeral key is hedged with the meter key and the request (FORMAT.md), so a
    /// repeated entropy value can only ever repeat the exact same request.
    pub fn start_from_entropy(
        entropy: &[u8],
        meter_key: &MeterSecretKey,
        hid: Hid,
        head_end: HeadEndIdentity,
        now: Timestamp,
    ) -> Result<(MeterHandshake, SessionInit), HandshakeError> {
        let (ephemeral, nonce) = ephemeral_from_entropy(entropy, meter_key, hid, now, head_end.id)?;
        Ok(Self::with_ephemeral(ephemeral, nonce, hid, head_end, now))
    }

    fn with_ephemeral(
        ephemeral: NonZeroScalar,
        nonce: [u8; NONCE_LEN],
        hid: Hid,
        head_end: HeadEndIdentity,
        now: Timestamp,
    ) -> (MeterHandshake, SessionInit) {
        let init = SessionInit {
            header: Header {
                hid,
                timestamp: now,
            },
            ephemeral: ephemeral_point(&ephemeral),
            nonce,
        };
        (
            MeterHandshake {
                init: init.clone(),
                ephemeral,
                head_end,
            },
            init,
        )
    }

    /// Checks the head-end's response (its identity, its key-confirmation MAC, its signature over
    /// the transcript under the registered head-end key), then signs the transcript with the
    /// meter's registered key. Returns the session and the [`SessionConfirm`] to send.
    pub fn finish(
        self,
        meter_key: &MeterSecretKey,
        response: &SessionResponse,
    ) -> Result<(Session, SessionConfirm), HandshakeError> {
        if response.head_end != self.head_end.id {
            return Err(HandshakeError::UnexpectedHeadEnd);
        }
        let shared =
            k256::ecdh::diffie_hellman(self.ephemeral, response.ephemeral.point.as_affine());
        let keys = KeySchedule::new(&self.init, &response.body(), shared.raw_secret_bytes());
        let km = &keys.km;
        if !hmac_verify(km, domain::SESSION_HEAD_END_MAC, &keys.th1, &response.mac)
            || !verify(
                &self.head_end.public_key.verifying_key(),
                head_end_signature_digest(&keys.th1),
                &response.signature,
            )
        {
            return Err(HandshakeError::Authentication);
        }
        let th2 = keys.th2(response);
        let confirm = SessionConfirm {
            signature: sign(meter_key.signing_key(), meter_signature_digest(&th2))?,
            mac: hmac(km, domain::SESSION_METER_MAC, &th2),
        };
        let session = keys.session(
            Role::Meter,
            th2,
            self.init.header.hid,
            self.head_end.id,
            None,
        );
        Ok((session, confirm))
    }
}

/// The head-end: its identity, signing key and policy. One value serves every meter; each
/// handshake in progress is a [`HeadEndHandshake`].
pub struct HeadEnd {
    id: Hid,
    key: HeadEndSecretKey,
    policy: HeadEndPolicy,
}

impl core::fmt::Debug for HeadEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeadEnd")
            .field("id", &self.id)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl HeadEnd {
    /// A head-end with identity `id` (`SHA-256` of its ID) and its registered signing key.
    pub fn new(id: Hid, key: HeadEndSecretKey, policy: HeadEndPolicy) -> HeadEnd {
        HeadEnd { id, key, policy }
    }

    /// The identity meters must see on the ledger for this head-end.
    pub fn identity(&self) -> HeadEndIdentity {
        HeadEndIdentity {
            id: self.id,
            public_key: self.key.public_key(),
        }
    }

    /// Answers a [`SessionInit`] received at the head-end's time `now`: refuses an unknown or
    /// revoked meter and a request outside the clock window, then draws a fresh ephemeral key
    /// and nonce from `rng` and signs the transcript.
    pub fn respond<R: CryptoRngCore + ?Sized, D: MeterDirectory + ?Sized>(
        &self,
        rng: &mut R,
        init: &SessionInit,
        directory: &D,
        now: Timestamp,
    ) -> Result<(HeadEndHandshake, SessionResponse), HandshakeError> {
        let hid = init.header.hid;
        let record = directory.meter(&hid).ok_or(HandshakeError::UnknownMeter)?;
        if record.status == MeterStatus::Revoked {
            return Err(HandshakeError::MeterRevoked);
        }
        let (timestamp, now_ms) = (init.header.timestamp.unix_millis(), now.unix_millis());
        if timestamp.abs_diff(now_ms) > self.policy.max_clock_skew_ms {
            return Err(HandshakeError::ClockSkew {
                timestamp_ms: timestamp,
                now_ms,
                max_skew_ms: self.policy.max_clock_skew_ms,
            });
        }
        let (secret, nonce) = ephemeral_from_rng(rng)?;
        let ephemeral = ephemeral_point(&secret);
        let shared = k256::ecdh::diffie_hellman(secret, init.ephemeral.point.as_affine());
        let body = SessionResponse::body_of(&self.id, &ephemeral, &nonce);
        let keys = KeySchedule::new(init, &body, shared.raw_secret_bytes());
        let response = SessionResponse {
            head_end: self.id,
            ephemeral,
            nonce,
            signature: sign(self.key.signing_key(), head_end_signature_digest(&keys.th1))?,
            mac: hmac(&keys.km, domain::SESSION_HEAD_END_MAC, &keys.th1),
        };
        let th2 = keys.th2(&response);
        Ok((
            HeadEndHandshake {
                keys,
                th2,
                hid,
                head_end: self.id,
                record,
            },
            response,
        ))
    }
}

/// The head-end after sending [`SessionResponse`], waiting for the meter's [`SessionConfirm`].
pub struct HeadEndHandshake {
    keys: KeySchedule,
    th2: [u8; 32],
    hid: Hid,
    head_end: Hid,
    record: MeterRecord,
}

impl core::fmt::Debug for HeadEndHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeadEndHandshake")
            .field("meter", &self.hid)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl HeadEndHandshake {
    /// The meter this handshake is with (claimed, not yet authenticated).
    pub fn meter(&self) -> Hid {
        self.hid
    }

    /// Checks the meter's confirmation: the directory must still hold the same active key
    /// version, the MAC must verify under the confirmation key, and the signature over the whole
    /// transcript must verify under the meter's registered key.
    pub fn finish<D: MeterDirectory + ?Sized>(
        self,
        confirm: &SessionConfirm,
        directory: &D,
    ) -> Result<Session, HandshakeError> {
        let now = directory
            .meter(&self.hid)
            .ok_or(HandshakeError::UnknownMeter)?;
        if now.status == MeterStatus::Revoked {
            return Err(HandshakeError::MeterRevoked);
        }
        if now.key_version != self.record.key_version || now.public_key != self.record.public_key {
            return Err(HandshakeError::MeterKeyChanged {
                registered: now.key_version,
                handshake: self.record.key_version,
            });
        }
        if !hmac_verify(
            &self.keys.km,
            domain::SESSION_METER_MAC,
            &self.th2,
            &confirm.mac,
        ) || !verify(
            &self.record.public_key.verifying_key(),
            meter_signature_digest(&self.th2),
            &confirm.signature,
        ) {
            return Err(HandshakeError::Authentication);
        }
        Ok(self.keys.session(
            Role::HeadEnd,
            self.th2,
            self.hid,
            self.head_end,
            Some(self.record.key_version),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_hmac_is_hmac() {
        let key = [0x0b; 32];
        let th = [0x42; 32];
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        reference.update(b"tag");
        reference.update(&th);
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac(&key, b"tag", &th), expected);
        assert!(hmac_verify(&key, b"tag", &th, &expected));
        let mut wrong = expected;
        wrong[0] ^= 1;
        assert!(!hmac_verify(&key, b"tag", &th, &wrong));
    }
}
