//! Revocation. The normal path is the credential epoch: a revoked or traced meter gets no
//! credential for the next epoch, and presentations of other epochs fail with
//! [`VerifyError::WrongEpoch`](crate::VerifyError::WrongEpoch). For the rare case where a
//! meter secret `f'` becomes known, the leaked-secret list rejects its pseudonyms
//! (`K = J·f'`, one scalar multiplication per entry and reading) and its join requests.

use alloc::vec::Vec;

use crate::backend::{Backend, Zk};
use crate::error::{DecodeError, Field as F, VerifyError};
use crate::issuer::{INDEX_F, IssuerPublicKey, JoinRequest};
use crate::presentation::Presentation;

/// Meter secrets known to be leaked.
#[derive(Clone, Debug, Default)]
pub struct LeakedSecrets<B: Backend = Zk> {
    secrets: Vec<B::Fr>,
}

impl<B: Backend> LeakedSecrets<B> {
    /// An empty list.
    pub fn new() -> Self {
        LeakedSecrets {
            secrets: Vec::new(),
        }
    }

    /// Adds a leaked secret (its 32-byte big-endian encoding).
    pub fn insert(&mut self, secret: &[u8; 32]) -> Result<(), DecodeError> {
        let f = B::scalar_from_be(secret)
            .ok_or(DecodeError::NonCanonicalScalar { field: F::Secret })?;
        if !self.secrets.contains(&f) {
            self.secrets.push(f);
        }
        Ok(())
    }

    /// How many secrets are listed.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Rejects a presentation whose pseudonym was made with a listed secret.
    pub fn check_presentation(&self, p: &Presentation<B>) -> Result<(), VerifyError> {
        if self.secrets.is_empty() {
            return Ok(());
        }
        let j = p.report().period.base::<B>();
        if self.secrets.iter().any(|f| j * f == *p.pseudonym_point()) {
            return Err(VerifyError::LeakedSecret);
        }
        Ok(())
    }

    /// Rejects a join request committing to a listed secret.
    pub fn check_join_request(
        &self,
        ipk: &IssuerPublicKey<B>,
        request: &JoinRequest<B>,
    ) -> Result<(), VerifyError> {
        let h_f = ipk.gens.h[INDEX_F];
        if self
            .secrets
            .iter()
            .any(|f| h_f * f == *request.commitment_point())
        {
            return Err(VerifyError::LeakedSecret);
        }
        Ok(())
    }
}
