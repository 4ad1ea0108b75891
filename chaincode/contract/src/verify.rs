//! Verifying reading signatures: libsecp256k1 (chosen, by measurement: see BENCHMARKS.md
//! `## Contract`) or RustCrypto k256 through the SDK. Both check the same signed message,
//! defined once in FORMAT.md: `SHA-256(reading tag || kind || version || HID || timestamp ||
//! SHA-256(E(UD)))`, where the ciphertext hash is recomputed by the SDK's decoder.

use bcami_sdk::{FORMAT_VERSION, MessageKind, MeterPublicKey, Transaction, domain};
use secp256k1::{Message, PublicKey, Secp256k1, VerifyOnly, ecdsa::Signature};
use sha2::{Digest, Sha256};

/// Which implementation checks reading signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierKind {
    /// bitcoin-core's libsecp256k1 (the `secp256k1` crate). The default.
    Libsecp256k1,
    /// RustCrypto k256, through `Transaction::verify` of the SDK.
    K256,
}

/// A reading-signature verifier.
pub struct Verifier {
    kind: VerifierKind,
    secp: Secp256k1<VerifyOnly>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kind", &self.kind)
            .finish()
    }
}

/// A meter key made ready for the verifier (parsed once per batch, used for each reading).
#[derive(Debug, Clone, Copy)]
pub enum PreparedKey {
    /// For libsecp256k1.
    Libsecp(PublicKey),
    /// For k256.
    K256(MeterPublicKey),
}

impl Verifier {
    /// A verifier of the given kind.
    pub fn new(kind: VerifierKind) -> Self {
        Self {
            kind,
            secp: Secp256k1::verification_only(),
        }
    }

    /// Which implementation this is.
    pub fn kind(&self) -> VerifierKind {
        self.kind
    }

    /// Prepare a registered key. `None` only if the key does not parse, which cannot happen
    /// for a key the SDK accepted (both libraries accept exactly the points on the curve).
    pub fn prepare(&self, key: &MeterPublicKey) -> Option<PreparedKey> {
        match self.kind {
            VerifierKind::Libsecp256k1 => PublicKey::from_byte_array_compressed(key.to_bytes())
                .ok()
                .map(PreparedKey::Libsecp),
            VerifierKind::K256 => Some(PreparedKey::K256(*key)),
        }
    }

    /// Whether `tx` is signed by `key`.
    pub fn verify(&self, key: &PreparedKey, tx: &Transaction) -> bool {
        match key {
            PreparedKey::K256(k) => tx.verify(k).is_ok(),
            PreparedKey::Libsecp(k) => {
                let Ok(signature) = Signature::from_compact(&tx.signature()) else {
                    return false;
                };
                let digest = Message::from_digest(signed_digest(tx));
                self.secp.verify_ecdsa(digest, &signature, k).is_ok()
            }
        }
    }
}

/// The digest a reading's signature covers, rebuilt from the SDK's public accessors exactly as
/// FORMAT.md defines it.
fn signed_digest(tx: &Transaction) -> [u8; 32] {
    let mut header = [0u8; 42];
    header[0] = MessageKind::Reading as u8;
    header[1] = FORMAT_VERSION;
    header[2..34].copy_from_slice(tx.hid().as_bytes());
    header[34..42].copy_from_slice(&tx.timestamp().to_bytes());
    Sha256::new()
        .chain_update(domain::READING)
        .chain_update(header)
        .chain_update(tx.ciphertext_hash())
        .finalize()
        .into()
}
