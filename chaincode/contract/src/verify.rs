//! Verifying reading signatures: libsecp256k1 (chosen, by measurement: see BENCHMARKS.md
//! `## Contract`) or RustCrypto k256 through the SDK. Both check the same signed message,
//! defined once in FORMAT.md: `SHA-256(reading tag || kind || version || HID || timestamp ||
//! SHA-256(E(UD)))`, where the ciphertext hash is recomputed by the SDK's decoder.

use bcami_sdk::{MeterPublicKey, Transaction};
use secp256k1::{Message, PublicKey, Secp256k1, VerifyOnly, ecdsa::Signature};

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
                let digest = Message::from_digest(tx.signed_digest());
                self.secp.verify_ecdsa(digest, &signature, k).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bcami_sdk::{
        Hid, IntervalLength, MdmsSecretKey, MeterSecretKey, QualityFlags, Timestamp, UsageReport,
        WattHours,
    };

    #[test]
    fn both_verifiers_agree_on_valid_and_altered_readings() {
        let meter = MeterSecretKey::from_entropy(&[3; 32]).unwrap();
        let other = MeterSecretKey::from_entropy(&[4; 32]).unwrap();
        let mdms = MdmsSecretKey::from_entropy(&[5; 32]).unwrap();
        let report = UsageReport {
            interval_start: Timestamp::from_unix_millis(1_000),
            interval_length: IntervalLength::HALF_HOUR,
            energy: WattHours(1),
            cumulative_register: WattHours(2),
            quality: QualityFlags::NONE,
        };
        let tx = Transaction::build_from_entropy(
            &[6; 32],
            &meter,
            Hid::from_meter_id("SM-1"),
            Timestamp::from_unix_millis(5_000),
            &report,
            &mdms.public_key(),
        )
        .unwrap();
        let wire = tx.encode();
        let mut candidates = vec![(wire.clone(), true)];
        for i in [2, 40, 41, 44, 80, wire.len() - 70, wire.len() - 1] {
            let mut altered = wire.clone();
            altered[i] ^= 0x01;
            candidates.push((altered, false));
        }
        let lib = Verifier::new(VerifierKind::Libsecp256k1);
        let k = Verifier::new(VerifierKind::K256);
        for (bytes, valid) in candidates {
            let Ok(tx) = Transaction::decode(&bytes) else {
                continue;
            };
            for key in [meter.public_key(), other.public_key()] {
                let a = lib.verify(&lib.prepare(&key).unwrap(), &tx);
                let b = k.verify(&k.prepare(&key).unwrap(), &tx);
                assert_eq!(a, b);
                assert_eq!(a, valid && key == meter.public_key());
            }
        }
    }
}
