//! ECIES from a meter to the MDMS: ephemeral secp256k1 ECDH, HKDF-SHA-256, AES-256-GCM.
//!
//! `ciphertext = E || AES-256-GCM(key, nonce, plaintext, aad) || tag` where `E = e·G` is the
//! compressed ephemeral public key, `Z = x(e·P_mdms)`, and
//! `key || nonce = HKDF-SHA-256(salt = E || P_mdms, ikm = Z, info = ECIES_LABEL)` (44 bytes).
//! Each ephemeral key is used once, so a derived nonce is safe; putting both public keys in the
//! salt binds the key to this exact pair.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use alloc::vec::Vec;
use hkdf::Hkdf;
use k256::elliptic_curve::ops::MulByGenerator;
use k256::elliptic_curve::zeroize::Zeroize;
use k256::{NonZeroScalar, ProjectivePoint, PublicKey};
use sha2::Sha256;

use crate::error::DecryptError;
use crate::keys::{MdmsPublicKey, MdmsSecretKey, compress};

/// HKDF `info` for the ECIES key schedule.
pub const ECIES_LABEL: &[u8] = b"BC-AMI/1 ECIES secp256k1 HKDF-SHA-256 AES-256-GCM\0";
/// Bytes the ephemeral public key adds.
pub const EPHEMERAL_KEY_LEN: usize = 33;
/// Bytes the AES-GCM tag adds.
pub const TAG_LEN: usize = 16;
/// Bytes ECIES adds to a plaintext.
pub const OVERHEAD: usize = EPHEMERAL_KEY_LEN + TAG_LEN;

struct Keys {
    okm: [u8; 44],
}

impl Keys {
    fn derive(shared_x: &[u8], ephemeral: &[u8; 33], recipient: &[u8; 33]) -> Keys {
        let mut salt = [0u8; 66];
        salt[..33].copy_from_slice(ephemeral);
        salt[33..].copy_from_slice(recipient);
        let mut okm = [0u8; 44];
        // 44 bytes is far below HKDF-SHA-256's limit of 255 * 32, so expand cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(&salt), shared_x).expand(ECIES_LABEL, &mut okm);
        Keys { okm }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.okm[..32].into())
    }

    fn nonce(&self) -> &Nonce<aes_gcm::aead::consts::U12> {
        Nonce::from_slice(&self.okm[32..])
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.okm.zeroize();
    }
}

/// Encrypts `plaintext` to the MDMS with the given ephemeral scalar, binding `aad`; returns the
/// ciphertext and the ephemeral public key. Allocates exactly once (the ciphertext).
pub(crate) fn encrypt(
    ephemeral: &NonZeroScalar,
    recipient: &MdmsPublicKey,
    plaintext: &[u8],
    aad: &[u8],
) -> (Vec<u8>, PublicKey) {
    // `mul_by_generator` uses k256's precomputed tables when enabled; `from_secret_scalar` never
    // does. `from_affine` rejects only the identity, which a non-zero scalar cannot give; the
    // fallback keeps this path free of panics all the same.
    let ephemeral_point =
        PublicKey::from_affine(ProjectivePoint::mul_by_generator(ephemeral.as_ref()).to_affine())
            .unwrap_or_else(|_| PublicKey::from_secret_scalar(ephemeral));
    let ephemeral_public = compress(&ephemeral_point);
    let recipient_bytes = recipient.to_bytes();
    let shared = k256::ecdh::diffie_hellman(ephemeral, recipient.point().as_affine());
    let keys = Keys::derive(
        shared.raw_secret_bytes(),
        &ephemeral_public,
        &recipient_bytes,
    );

    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(plaintext);
    // AES-GCM refuses only plaintexts over 2^36 bytes; ours are a few dozen bytes, so this
    // cannot fail and the tag is always written.
    if let Ok(tag) =
        keys.cipher()
            .encrypt_in_place_detached(keys.nonce(), aad, &mut out[EPHEMERAL_KEY_LEN..])
    {
        out.extend_from_slice(&tag);
    }
    (out, ephemeral_point)
}

/// Decrypts a ciphertext whose ephemeral key (`ephemeral`, parsed from `ephemeral_bytes`, the
/// first 33 bytes of `ciphertext`) has already been checked to be on the curve.
pub(crate) fn decrypt(
    recipient: &MdmsSecretKey,
    ephemeral: &PublicKey,
    ephemeral_bytes: &[u8; 33],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, DecryptError> {
    let body_len = ciphertext
        .len()
        .checked_sub(OVERHEAD)
        .ok_or(DecryptError::Aead)?;
    let shared = k256::ecdh::diffie_hellman(recipient.scalar(), ephemeral.as_affine());
    let keys = Keys::derive(
        shared.raw_secret_bytes(),
        ephemeral_bytes,
        &recipient.public_key().to_bytes(),
    );
    let body = &ciphertext[EPHEMERAL_KEY_LEN..];
    let mut plaintext = Vec::from(&body[..body_len]);
    let tag = Tag::from_slice(&body[body_len..]);
    keys.cipher()
        .decrypt_in_place_detached(keys.nonce(), aad, &mut plaintext, tag)
        .map_err(|_| DecryptError::Aead)?;
    Ok(plaintext)
}
