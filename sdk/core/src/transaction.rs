//! The reading transaction (paper Table 2): `E(UD)`, `SHA-256(E(UD))`, HID, signature, timestamp.
//!
//! The hash is not sent: every verifier recomputes it from the ciphertext it has, which is the only
//! way a hash can be checked anyway, and saves 32 bytes per reading.

use alloc::vec::Vec;

use k256::PublicKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::ecies;
use crate::error::{BuildError, DecodeError, DecryptError, Field, KeyError, VerifyError};
use crate::identity::{Hid, Timestamp};
use crate::keys::{LowSSignature, hedged_ephemeral, parse_point, sign, verify};
use crate::keys::{MdmsPublicKey, MdmsSecretKey, MeterPublicKey, MeterSecretKey};
use crate::report::UsageReport;
use crate::wire::{Header, Reader};
use crate::{MessageKind, domain};

/// A signed, encrypted meter reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    header: Header,
    /// `E || AES-GCM ciphertext || tag`, E known to be on the curve.
    ciphertext: Vec<u8>,
    ephemeral: PublicKey,
    ciphertext_hash: [u8; 32],
    signature: LowSSignature,
}

/// Bytes of a transaction that are not ciphertext: header, length prefix, signature.
const FRAME_LEN: usize = Header::LEN + 2 + LowSSignature::LEN;

impl Transaction {
    /// Bytes a transaction adds to the plaintext usage report: 157
    /// (header 42, length 2, ephemeral key 33, tag 16, signature 64).
    pub const OVERHEAD: usize = FRAME_LEN + ecies::OVERHEAD;
    /// Smallest ciphertext a decoder accepts: ephemeral key, one report byte, tag.
    pub const MIN_CIPHERTEXT_LEN: usize = ecies::OVERHEAD + 1;

    /// Encrypts `report` to the MDMS and signs the result. The ephemeral ECIES key is derived
    /// from 32 bytes of `rng`, hedged with the meter's key, the header and the report (FORMAT.md),
    /// so even a failing RNG never reuses an AES-GCM key for a different message; the signature is
    /// deterministic (RFC 6979).
    pub fn build<R: CryptoRngCore + ?Sized>(
        rng: &mut R,
        meter_key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        report: &UsageReport,
        mdms_key: &MdmsPublicKey,
    ) -> Result<Self, BuildError> {
        let mut entropy = [0u8; 32];
        rng.try_fill_bytes(&mut entropy)
            .map_err(|_| KeyError::Rng)?;
        Self::build_from_entropy(&entropy, meter_key, hid, timestamp, report, mdms_key)
    }

    /// Like [`Transaction::build`], with at least 32 bytes of caller entropy instead of an RNG.
    /// Use fresh entropy for every reading. Reusing it is not catastrophic, because the ephemeral
    /// key is hedged (FORMAT.md): a reused value only repeats the ciphertext of an identical
    /// reading, and anyone who sees both learns that they are identical.
    pub fn build_from_entropy(
        entropy: &[u8],
        meter_key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        report: &UsageReport,
        mdms_key: &MdmsPublicKey,
    ) -> Result<Self, BuildError> {
        let header = Header { hid, timestamp };
        let aad = header.encode(MessageKind::Reading);
        let plaintext = report.encode();
        let ephemeral = hedged_ephemeral(entropy, meter_key.signing_key(), &aad, &plaintext)?;
        let (ciphertext, ephemeral) = ecies::encrypt(&ephemeral, mdms_key, &plaintext, &aad);
        let ciphertext_hash: [u8; 32] = Sha256::digest(&ciphertext).into();
        let signature = sign(
            meter_key.signing_key(),
            signed_digest(&aad, &ciphertext_hash),
        )?;
        Ok(Transaction {
            header,
            ciphertext,
            ephemeral,
            ciphertext_hash,
            signature,
        })
    }

    /// Parses exactly one transaction. Checks the form (kind, version, lengths, ephemeral key on
    /// the curve, low-S) and computes the ciphertext hash; call [`Transaction::verify`] for the
    /// signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let header = reader.header(MessageKind::Reading)?;
        let length = usize::from(u16::from_be_bytes(reader.array()?));
        if length < Self::MIN_CIPHERTEXT_LEN {
            return Err(DecodeError::CiphertextTooShort {
                length,
                minimum: Self::MIN_CIPHERTEXT_LEN,
            });
        }
        let ciphertext = reader.slice(length)?;
        let signature = LowSSignature::parse(&reader.array()?, Field::Signature)?;
        reader.finish()?;
        let mut ephemeral_bytes = [0u8; 33];
        ephemeral_bytes.copy_from_slice(&ciphertext[..33]);
        let ephemeral = parse_point(&ephemeral_bytes, Field::EphemeralKey)?;
        Ok(Transaction {
            header,
            ciphertext: Vec::from(ciphertext),
            ephemeral,
            ciphertext_hash: Sha256::digest(ciphertext).into(),
            signature,
        })
    }

    /// The wire form: `header || u16 length || ciphertext || signature`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.header.encode(MessageKind::Reading));
        // The ciphertext is a fixed-size report plus ECIES overhead when built, and at most
        // u16::MAX bytes when decoded, so it always fits.
        let length = u16::try_from(self.ciphertext.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out.extend_from_slice(&self.signature.to_bytes());
        out
    }

    /// Length of [`Transaction::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        FRAME_LEN + self.ciphertext.len()
    }

    /// Checks the signature under the meter's registered key. The hash it covers is recomputed
    /// from the ciphertext, so a verified transaction's ciphertext, HID and timestamp are exactly
    /// what the meter signed.
    pub fn verify(&self, meter_key: &MeterPublicKey) -> Result<(), VerifyError> {
        let aad = self.header.encode(MessageKind::Reading);
        if verify(
            &meter_key.verifying_key(),
            signed_digest(&aad, &self.ciphertext_hash),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(VerifyError::Signature)
        }
    }

    /// Decrypts the usage report with the MDMS's key. Does not check the signature: the MDMS
    /// should [`verify`](Transaction::verify) first (or trust the ledger, which did).
    pub fn decrypt(&self, mdms_key: &MdmsSecretKey) -> Result<UsageReport, DecryptError> {
        let aad = self.header.encode(MessageKind::Reading);
        let mut ephemeral_bytes = [0u8; 33];
        ephemeral_bytes.copy_from_slice(&self.ciphertext[..33]);
        let plaintext = ecies::decrypt(
            mdms_key,
            &self.ephemeral,
            &ephemeral_bytes,
            &self.ciphertext,
            &aad,
        )?;
        UsageReport::decode(&plaintext).map_err(DecryptError::Report)
    }

    /// The meter's hashed identity.
    pub fn hid(&self) -> Hid {
        self.header.hid
    }

    /// When the meter made the reading.
    pub fn timestamp(&self) -> Timestamp {
        self.header.timestamp
    }

    /// `E(UD)`: ephemeral key, AES-GCM ciphertext, tag.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// `SHA-256(E(UD))`, computed locally (never read from the wire).
    pub fn ciphertext_hash(&self) -> &[u8; 32] {
        &self.ciphertext_hash
    }

    /// The signature, `r || s`.
    pub fn signature(&self) -> [u8; 64] {
        self.signature.to_bytes()
    }

    /// The SHA-256 digest the signature covers (FORMAT.md), recomputed from the header and the
    /// ciphertext: for a verifier that brings its own ECDSA implementation (the contract's
    /// libsecp256k1 path) instead of [`Transaction::verify`].
    pub fn signed_digest(&self) -> [u8; 32] {
        let aad = self.header.encode(MessageKind::Reading);
        signed_digest(&aad, &self.ciphertext_hash).finalize().into()
    }
}

/// `SHA-256` state over `READING tag || kind || version || HID || timestamp || SHA-256(E(UD))`.
fn signed_digest(header: &[u8; Header::LEN], ciphertext_hash: &[u8; 32]) -> Sha256 {
    Sha256::new()
        .chain_update(domain::READING)
        .chain_update(header)
        .chain_update(ciphertext_hash)
}
