//! Errors. Decoding errors name the field and the rule (they describe public bytes); proof
//! failures are opaque on purpose.

/// Which field of a message an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The issuer's public key `W` (G2).
    IssuerKey,
    /// The meter's blind commitment `C = H_f·f`.
    Commitment,
    /// A scalar of a join proof.
    JoinProof,
    /// The credential's `A`.
    CredentialA,
    /// The credential's `e`.
    CredentialE,
    /// The pseudonym `K = J·f`.
    Pseudonym,
    /// One of the randomised credential points `Abar`, `Bbar`, `D`.
    ProofPoint,
    /// A response scalar or the challenge of a presentation.
    ProofScalar,
    /// The tracing proof's `C` point.
    TraceCommitment,
    /// A scalar of a tracing proof.
    TraceScalar,
    /// A secret scalar (leaked-secret list, secret key).
    Secret,
}

impl core::fmt::Display for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Field::IssuerKey => "issuer key",
            Field::Commitment => "commitment",
            Field::JoinProof => "join proof",
            Field::CredentialA => "credential A",
            Field::CredentialE => "credential e",
            Field::Pseudonym => "pseudonym",
            Field::ProofPoint => "proof point",
            Field::ProofScalar => "proof scalar",
            Field::TraceCommitment => "trace commitment",
            Field::TraceScalar => "trace scalar",
            Field::Secret => "secret",
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
    /// The kind byte names a different message.
    #[error("expected message kind {expected:#04x}, found {found:#04x}")]
    UnexpectedKind {
        /// The kind the decoder was asked to read.
        expected: u8,
        /// The kind byte found.
        found: u8,
    },
    /// The format version is not one this build understands.
    #[error("unsupported format version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// A point is not a compressed point of the prime-order subgroup.
    #[error("{field} is not a compressed point of the prime-order subgroup")]
    InvalidPoint {
        /// Which point.
        field: Field,
    },
    /// A point is the identity, which no honest message contains.
    #[error("{field} is the identity point")]
    IdentityPoint {
        /// Which point.
        field: Field,
    },
    /// A scalar is not below the group order.
    #[error("{field} is not a canonical scalar")]
    NonCanonicalScalar {
        /// Which scalar.
        field: Field,
    },
    /// A period of zero seconds.
    #[error("period length is zero")]
    ZeroPeriodLength,
    /// Report flag bits this version does not define.
    #[error("report has undefined flag bits {bits:#06x}")]
    UnknownFlags {
        /// The undefined bits that were set.
        bits: u16,
    },
}

/// A proof, credential or request did not verify. Deliberately says nothing about which
/// equation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The presentation's proof is not valid under the issuer key.
    #[error("presentation proof is not valid under the issuer key")]
    Presentation,
    /// The presentation names another credential epoch than the issuer key's.
    #[error("presentation is for credential epoch {found}, the issuer key for {expected}")]
    WrongEpoch {
        /// The issuer key's epoch.
        expected: u32,
        /// The presentation's epoch.
        found: u32,
    },
    /// The join request's proof of knowledge does not verify for its HID, epoch and nonce.
    #[error("join request proof of knowledge is not valid")]
    JoinProof,
    /// The credential does not verify for this secret under the issuer key.
    #[error("credential is not valid under the issuer key")]
    Credential,
    /// The tracing proof does not verify (or proves nothing: `C` is the identity).
    #[error("tracing proof is not valid")]
    Trace,
    /// The pseudonym or commitment was made with a secret on the leaked-secret list.
    #[error("made with a secret on the leaked-secret list")]
    LeakedSecret,
}

/// The key holder could not act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyHolderError {
    /// `respond` was called without an outstanding `commit` (a nonce is used once).
    #[error("no outstanding commitment: respond follows exactly one commit")]
    NoCommitment,
    /// The secret is zero or not below the group order.
    #[error("secret is zero or not below the group order")]
    InvalidSecret,
    /// The key holder's own failure (a secure element's error).
    #[error("key holder failed")]
    Device,
}

/// The meter cannot prove that a suspect pseudonym is not its own: it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The suspect pseudonym was made with this meter's secret.
    #[error("the suspect pseudonym was made with this secret")]
    SameSecret,
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
    /// See [`KeyHolderError`].
    #[error("key holder: {0}")]
    KeyHolder(#[from] KeyHolderError),
    /// See [`TraceError`].
    #[error("trace: {0}")]
    Trace(#[from] TraceError),
}
