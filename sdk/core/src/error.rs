//! Errors, one enum per thing that can go wrong, gathered under [`Error`].
//!
//! Decoding errors are precise (they name the field and the rule that failed) because they
//! describe public bytes. Cryptographic failures are opaque on purpose: a verifier or decrypter
//! that says *why* a MAC or signature failed helps an attacker, not an operator.

use core::fmt;

/// Which field of a message an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The public key being registered (meter or MDMS).
    PublicKey,
    /// The new public key in a key-rotation request.
    NewPublicKey,
    /// The ECIES ephemeral public key at the start of the ciphertext, or the ephemeral key of a
    /// session handshake message.
    EphemeralKey,
    /// The signature of a reading transaction, the proof of possession of a registration, or the
    /// signature of a session handshake message.
    Signature,
    /// The key-rotation signature made with the meter's current key.
    CurrentKeySignature,
    /// The key-rotation proof of possession made with the new key.
    NewKeySignature,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::PublicKey => "public key",
            Field::NewPublicKey => "new public key",
            Field::EphemeralKey => "ephemeral key",
            Field::Signature => "signature",
            Field::CurrentKeySignature => "current-key signature",
            Field::NewKeySignature => "new-key signature",
        })
    }
}

/// The bytes are not a well-formed message of the expected kind and version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends before the message does.
    #[error("input is truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes needed to finish the field being read.
        needed: usize,
        /// Bytes the input has.
        available: usize,
    },
    /// Bytes remain after a complete message.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes follow the message.
        extra: usize,
    },
    /// The kind byte names a different message (or none at all).
    #[error("expected a {expected} message, found kind byte {found:#04x}")]
    UnexpectedKind {
        /// The kind the decoder was asked to read.
        expected: crate::MessageKind,
        /// The kind byte found.
        found: u8,
    },
    /// The format version is not one this build understands.
    #[error("unsupported {kind} format version {version}")]
    UnsupportedVersion {
        /// The message kind.
        kind: crate::MessageKind,
        /// The version byte found.
        version: u8,
    },
    /// The usage report's version is not one this build understands.
    #[error("unsupported usage report version {version}")]
    UnsupportedReportVersion {
        /// The version byte found.
        version: u8,
    },
    /// A point is not in compressed SEC1 form (first byte must be 0x02 or 0x03).
    #[error("{field} is not a compressed SEC1 point (prefix {prefix:#04x})")]
    InvalidPointEncoding {
        /// Which key.
        field: Field,
        /// The prefix byte found.
        prefix: u8,
    },
    /// A compressed point's x coordinate is not the x coordinate of a secp256k1 point.
    #[error("{field} is not a point on secp256k1")]
    PointNotOnCurve {
        /// Which key.
        field: Field,
    },
    /// A signature's r or s is zero or not below the group order.
    #[error("{field} has r or s outside 1..n-1")]
    InvalidSignatureScalar {
        /// Which signature.
        field: Field,
    },
    /// A signature's s is in the upper half of the group order (malleable form).
    #[error("{field} is not low-S")]
    HighS {
        /// Which signature.
        field: Field,
    },
    /// The ciphertext is too short to hold the ephemeral key, a report version byte and a tag.
    #[error("ciphertext of {length} bytes is shorter than the minimum {minimum}")]
    CiphertextTooShort {
        /// Declared ciphertext length.
        length: usize,
        /// Minimum length.
        minimum: usize,
    },
    /// A usage report with an interval length of zero seconds.
    #[error("usage report interval length is zero")]
    ZeroIntervalLength,
    /// A usage report with quality flag bits this version does not define.
    #[error("usage report has undefined quality flag bits {bits:#06x}")]
    UnknownQualityFlags {
        /// The undefined bits that were set.
        bits: u16,
    },
}

/// A signature did not verify. Deliberately says nothing about why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The reading transaction's signature is not valid under the given meter key.
    #[error("reading signature is not valid under the meter's key")]
    Signature,
    /// The registration's proof of possession is not valid under the key being registered.
    #[error("proof of possession is not valid under the registered key")]
    ProofOfPossession,
    /// The key-rotation signature is not valid under the meter's current key.
    #[error("key rotation is not signed by the meter's current key")]
    CurrentKeySignature,
    /// The key-rotation proof of possession is not valid under the new key.
    #[error("key rotation proof of possession is not valid under the new key")]
    NewKeySignature,
    /// The anonymous-credential request is not signed by the meter's registered key.
    #[error("anonymous-credential request is not signed by the meter's key")]
    CredentialRequestSignature,
}

/// The MDMS could not decrypt a reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// Authenticated decryption failed: wrong MDMS key, or the ciphertext, HID or timestamp was
    /// altered. Deliberately opaque.
    #[error("authenticated decryption failed (wrong MDMS key or altered reading)")]
    Aead,
    /// Decryption succeeded but the plaintext is not a valid usage report.
    #[error("decrypted usage report is malformed: {0}")]
    Report(#[source] DecodeError),
}

/// A secret key could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The 32 bytes are zero or not below the secp256k1 group order.
    #[error("secret key is zero or not below the group order")]
    InvalidSecretKey,
    /// Fewer than [`MIN_ENTROPY_LEN`](crate::MIN_ENTROPY_LEN) bytes of entropy were supplied.
    #[error("{provided} bytes of entropy supplied, at least {needed} required")]
    NotEnoughEntropy {
        /// Bytes supplied.
        provided: usize,
        /// Bytes required.
        needed: usize,
    },
    /// The caller's RNG failed, or returned no valid scalar in many draws (a broken RNG).
    #[error("random number generator failed or is stuck")]
    Rng,
}

/// A message could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The ephemeral key could not be generated.
    #[error("ephemeral key: {0}")]
    Key(#[from] KeyError),
    /// ECDSA signing failed (the RFC 6979 nonce was invalid; probability about 2^-128).
    #[error("ECDSA signing failed")]
    Signing,
}

/// A session handshake was refused. The head-end's directory answers (unknown, revoked, key
/// changed) are precise because they come from the ledger, not from the peer; a failed signature
/// or MAC is opaque on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head-end's meter directory has no registered key for this HID.
    #[error("meter is not registered with the head-end's directory")]
    UnknownMeter,
    /// The meter is revoked on the ledger.
    #[error("meter is revoked")]
    MeterRevoked,
    /// The meter's registered key changed (rotated) between the head-end's response and the
    /// meter's confirmation: the handshake is refused and the meter must start again.
    #[error(
        "meter key version changed during the handshake (registered {registered}, handshake {handshake})"
    )]
    MeterKeyChanged {
        /// The version the directory holds now.
        registered: u64,
        /// The version the handshake started with.
        handshake: u64,
    },
    /// The session request's timestamp is too far from the head-end's clock.
    #[error(
        "session request time {timestamp_ms} ms is more than {max_skew_ms} ms from the head-end's clock {now_ms} ms"
    )]
    ClockSkew {
        /// The request's timestamp, Unix milliseconds.
        timestamp_ms: u64,
        /// The head-end's time, Unix milliseconds.
        now_ms: u64,
        /// The allowed difference.
        max_skew_ms: u64,
    },
    /// The response names a head-end other than the one the meter asked for.
    #[error("response comes from a different head-end")]
    UnexpectedHeadEnd,
    /// A handshake signature or key-confirmation MAC did not verify: the peer is not who it says,
    /// or a message was altered. Deliberately says nothing more.
    #[error("handshake authentication failed")]
    Authentication,
    /// The caller's RNG failed, or fewer than 32 bytes of entropy were given.
    #[error("handshake key: {0}")]
    Key(#[from] KeyError),
    /// ECDSA signing failed (the RFC 6979 nonce was invalid; probability about 2^-128).
    #[error("ECDSA signing failed")]
    Signing,
}

impl From<BuildError> for HandshakeError {
    fn from(error: BuildError) -> Self {
        match error {
            BuildError::Key(key) => HandshakeError::Key(key),
            BuildError::Signing => HandshakeError::Signing,
        }
    }
}

/// A sealed session message could not be made or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The bytes are not a sealed session message.
    #[error("sealed message: {0}")]
    Decode(#[from] DecodeError),
    /// The sequence number is not above the last one opened: a replayed or reordered message.
    #[error(
        "sequence number {sequence} is below the next expected {expected} (replayed or reordered)"
    )]
    Replayed {
        /// The message's sequence number.
        sequence: u64,
        /// The lowest sequence number still acceptable.
        expected: u64,
    },
    /// Authenticated decryption failed: altered message, wrong session or wrong direction.
    /// Deliberately opaque.
    #[error("authenticated decryption failed")]
    Aead,
    /// The sequence numbers of this direction are used up (the last is 2^64 - 2; 2^64 - 1 is
    /// never used): start a new session.
    #[error("sequence numbers exhausted; start a new session")]
    SequenceExhausted,
}

/// Any error from this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`DecodeError`].
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// See [`VerifyError`].
    #[error("verify: {0}")]
    Verify(#[from] VerifyError),
    /// See [`DecryptError`].
    #[error("decrypt: {0}")]
    Decrypt(#[from] DecryptError),
    /// See [`KeyError`].
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// See [`BuildError`].
    #[error("build: {0}")]
    Build(#[from] BuildError),
    /// See [`HandshakeError`].
    #[error("session handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// See [`SessionError`].
    #[error("session: {0}")]
    Session(#[from] SessionError),
}
