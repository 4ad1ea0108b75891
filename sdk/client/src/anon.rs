//! Anonymous readings: the contract's anonymous functions as typed calls, and the two off-ledger
//! roles as library calls: [`AnonMeter`] (a meter's key holder and credential: join requests and
//! anonymous readings) and [`AnonIssuer`] (the Utility's issuer service). The cryptography is
//! `bcami-anon`'s on its `blst` backend.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcami_anon::{
    AnonReport, Backend, Blst, Credential, IssuerPublicKey, IssuerSecretKey, JoinRequest,
    KeyHolder, MeterCredential, NonEqualityProof, Period, Presentation, ReportFlags,
    SoftwareKeyHolder, TraceError,
};
use bcami_api::{
    AnonAggregate, AnonCredentialArg, AnonCredentialQuery, AnonDoubleReport, AnonIssuerKeyArg,
    AnonIssuerRecord, AnonJoinRecord, AnonPeriodQuery, AnonRejectReason, AnonSubmitResponse,
    AnonTraceArg, AnonTraceRecord, Function, Request, anon_join_nonce,
};
use bcami_sdk::{AnonCredentialRequest, Hid, MeterSecretKey, Timestamp};

use crate::client::{Client, Error};
use crate::ledger::{Caller, Ledger};

/// An anonymous-credential step failed off the ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnonError {
    /// `bcami-anon` refused (decode, verify, key holder).
    #[error("anonymous credential: {0}")]
    Anon(#[from] bcami_anon::Error),
    /// The meter's signature could not be made.
    #[error("signing the credential request: {0}")]
    Sign(#[from] bcami_sdk::BuildError),
    /// A ledger record is not what it should be (bad base64, wrong meter).
    #[error("ledger record: {0}")]
    Record(String),
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>, AnonError> {
    STANDARD
        .decode(text)
        .map_err(|_| AnonError::Record(format!("{what} is not base64")))
}

/// The issuer public key of an issuer record.
pub fn issuer_public_key(record: &AnonIssuerRecord) -> Result<IssuerPublicKey<Blst>, AnonError> {
    let bytes = unb64(&record.issuer_key, "issuerKey")?;
    Ok(IssuerPublicKey::decode(&bytes).map_err(bcami_anon::Error::from)?)
}

fn period(start: u64, secs: u32) -> Result<Period, AnonError> {
    Period::new(start, secs)
        .ok_or(bcami_anon::DecodeError::ZeroPeriodLength)
        .map_err(|e| AnonError::Anon(e.into()))
}

/// The context every tracing proof of a pseudonym is bound to.
pub fn trace_context(period_start: u64, pseudonym: &[u8; 48]) -> Vec<u8> {
    let mut ctx = b"BC-AMI/1 anon trace\0".to_vec();
    ctx.extend_from_slice(&period_start.to_be_bytes());
    ctx.extend_from_slice(pseudonym);
    ctx
}

/// The Utility's issuer service for one credential epoch.
#[derive(Debug)]
pub struct AnonIssuer {
    key: IssuerSecretKey<Blst>,
}

impl AnonIssuer {
    /// The issuer with this secret key.
    pub fn new(key: IssuerSecretKey<Blst>) -> Self {
        Self { key }
    }

    /// The key for `epoch` from 32 secret bytes (big-endian, below the group order).
    pub fn from_bytes(secret: &[u8; 32], epoch: u32) -> Result<Self, AnonError> {
        Ok(Self::new(
            IssuerSecretKey::from_bytes(secret, epoch).map_err(bcami_anon::Error::from)?,
        ))
    }

    /// The public key.
    pub fn public_key(&self) -> &IssuerPublicKey<Blst> {
        self.key.public_key()
    }

    /// The credential for a recorded request (`GetAnonCredential`), its proof checked against
    /// the ledger's nonce (from `issuer_tx`, the transaction that set this key).
    pub fn issue(&self, record: &AnonJoinRecord, issuer_tx: &str) -> Result<Vec<u8>, AnonError> {
        let join = JoinRequest::<Blst>::decode(&unb64(&record.join_request, "joinRequest")?)
            .map_err(bcami_anon::Error::from)?;
        if join.hid() != record.hid.as_bytes() {
            return Err(AnonError::Record(format!(
                "the join request recorded for {} names another meter",
                record.hid
            )));
        }
        let nonce = anon_join_nonce(issuer_tx, &record.hid);
        let credential = self
            .key
            .issue(&join, &nonce)
            .map_err(bcami_anon::Error::from)?;
        Ok(credential.encode())
    }

    /// The tracer's check of a meter's proof that `pseudonym` (a double-reported one) is not
    /// its own, against the commitment in the meter's recorded request of this epoch.
    pub fn check_not_mine(
        &self,
        record: &AnonJoinRecord,
        period_start: u64,
        period_secs: u32,
        pseudonym: &[u8; 48],
        proof: &[u8],
    ) -> Result<(), AnonError> {
        let join = JoinRequest::<Blst>::decode(&unb64(&record.join_request, "joinRequest")?)
            .map_err(bcami_anon::Error::from)?;
        let proof = NonEqualityProof::<Blst>::decode(proof).map_err(bcami_anon::Error::from)?;
        proof
            .verify(
                self.key.public_key(),
                &join,
                period(period_start, period_secs)?,
                pseudonym,
                &trace_context(period_start, pseudonym),
            )
            .map_err(bcami_anon::Error::from)?;
        Ok(())
    }
}

/// A meter's anonymous side: the holder of its secret `f` and its credential.
#[derive(Debug)]
pub struct AnonMeter {
    hid: Hid,
    holder: SoftwareKeyHolder<Blst>,
    credential: Option<(MeterCredential<Blst>, IssuerPublicKey<Blst>)>,
}

impl AnonMeter {
    /// A meter with a secret from `entropy` (at least 32 bytes).
    pub fn new(hid: Hid, entropy: &[u8]) -> Result<Self, AnonError> {
        Ok(Self {
            hid,
            holder: SoftwareKeyHolder::from_entropy(entropy).map_err(bcami_anon::Error::from)?,
            credential: None,
        })
    }

    /// The meter's HID.
    pub fn hid(&self) -> Hid {
        self.hid
    }

    /// The key holder (tracing proofs).
    pub fn holder(&self) -> &SoftwareKeyHolder<Blst> {
        &self.holder
    }

    /// The signed credential request for the issuer key set by transaction `issuer_tx`.
    pub fn credential_request(
        &mut self,
        ipk: &IssuerPublicKey<Blst>,
        issuer_tx: &str,
        meter_key: &MeterSecretKey,
        timestamp: Timestamp,
        entropy: &[u8; 32],
    ) -> Result<Vec<u8>, AnonError> {
        let nonce = anon_join_nonce(issuer_tx, &self.hid);
        let join = JoinRequest::build(&mut self.holder, ipk, *self.hid.as_bytes(), nonce, entropy)
            .map_err(bcami_anon::Error::from)?;
        let encoded: [u8; bcami_sdk::ANON_JOIN_REQUEST_LEN] = join
            .encode()
            .try_into()
            .map_err(|_| AnonError::Record("join request of unexpected length".into()))?;
        Ok(AnonCredentialRequest::build(meter_key, self.hid, timestamp, &encoded)?.encode())
    }

    /// Checks and keeps the credential the issuer posted.
    pub fn accept(
        &mut self,
        ipk: &IssuerPublicKey<Blst>,
        record: &AnonJoinRecord,
    ) -> Result<(), AnonError> {
        let text = record
            .credential
            .as_deref()
            .ok_or_else(|| AnonError::Record(format!("no credential for {} yet", self.hid)))?;
        let credential = Credential::<Blst>::decode(&unb64(text, "credential")?)
            .map_err(bcami_anon::Error::from)?;
        let checked = credential
            .accept(ipk, &self.holder.commitment())
            .map_err(bcami_anon::Error::from)?;
        self.credential = Some((checked, ipk.clone()));
        Ok(())
    }

    /// The tracing proof that `pseudonym` of the period is not this meter's; `Ok(None)` if it
    /// is (this meter is the culprit and cannot prove otherwise).
    pub fn prove_not_mine(
        &self,
        period_start: u64,
        period_secs: u32,
        pseudonym: &[u8; 48],
        entropy: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, AnonError> {
        let k = Blst::g1_from_bytes(pseudonym)
            .ok_or(bcami_anon::DecodeError::InvalidPoint {
                field: bcami_anon::Field::Pseudonym,
            })
            .map_err(bcami_anon::Error::from)?;
        match self.holder.prove_not_mine(
            period(period_start, period_secs)?,
            &k,
            &trace_context(period_start, pseudonym),
            entropy,
        ) {
            Ok(proof) => Ok(Some(proof.encode())),
            Err(TraceError::SameSecret) => Ok(None),
            Err(e) => Err(bcami_anon::Error::from(e).into()),
        }
    }

    /// The credential epoch held, if any.
    pub fn epoch(&self) -> Option<u32> {
        self.credential.as_ref().map(|(c, _)| c.epoch())
    }

    /// An anonymous reading of `energy_wh` for the period starting at `period_start` (Unix ms)
    /// of `period_secs`; `entropy` fresh for every reading.
    pub fn reading(
        &mut self,
        period_start: u64,
        period_secs: u32,
        energy_wh: u64,
        entropy: &[u8; 64],
    ) -> Result<Vec<u8>, AnonError> {
        let (credential, ipk) = self
            .credential
            .as_ref()
            .ok_or_else(|| AnonError::Record(format!("meter {} has no credential", self.hid)))?;
        let period = Period::new(period_start, period_secs)
            .ok_or(bcami_anon::DecodeError::ZeroPeriodLength)
            .map_err(bcami_anon::Error::from)?;
        let report = AnonReport {
            period,
            energy_wh,
            flags: ReportFlags::NONE,
        };
        Ok(
            Presentation::build_from_entropy(&mut self.holder, credential, ipk, &report, entropy)?
                .encode(),
        )
    }
}

impl<L: Ledger + ?Sized> Client<'_, L> {
    /// `SetAnonIssuerKey`: the issuer record (its `txId` is what join nonces derive from).
    pub async fn set_anon_issuer_key(
        &self,
        caller: Caller,
        issuer_key: &IssuerPublicKey<Blst>,
        period_secs: u32,
    ) -> Result<AnonIssuerRecord, Error> {
        let arg = AnonIssuerKeyArg {
            issuer_key: STANDARD.encode(issuer_key.encode()),
            period_secs,
        };
        self.json(caller, &Request::SetAnonIssuerKey(&arg)).await
    }

    /// `RequestAnonCredential` of an encoded, signed request: the recorded request.
    pub async fn request_anon_credential(
        &self,
        caller: Caller,
        request: &[u8],
    ) -> Result<AnonJoinRecord, Error> {
        self.json(caller, &Request::RequestAnonCredential(request))
            .await
    }

    /// `PostAnonCredential` of an encoded credential: the record with it.
    pub async fn post_anon_credential(
        &self,
        caller: Caller,
        hid: Hid,
        credential: &[u8],
    ) -> Result<AnonJoinRecord, Error> {
        let arg = AnonCredentialArg {
            hid,
            credential: STANDARD.encode(credential),
        };
        self.json(caller, &Request::PostAnonCredential(&arg)).await
    }

    /// `SubmitAnonReadings`: per reading, `None` if counted, else why not.
    pub async fn submit_anon_readings(
        &self,
        caller: Caller,
        readings: &[Vec<u8>],
    ) -> Result<Vec<Option<AnonRejectReason>>, Error> {
        let response: AnonSubmitResponse = self
            .json(caller, &Request::SubmitAnonReadings(readings))
            .await?;
        response
            .reasons(readings.len())
            .ok_or_else(|| Error::Response {
                function: Function::SubmitAnonReadings,
                detail: format!(
                    "{} accepted + {} rejected ({} listed) for {} readings",
                    response.accepted,
                    response.rejected,
                    response.rejections.len(),
                    readings.len()
                ),
            })
    }

    /// `GetAnonIssuerKey`: of `epoch`, or the current one.
    pub async fn anon_issuer_key(
        &self,
        caller: Caller,
        epoch: Option<u32>,
    ) -> Result<AnonIssuerRecord, Error> {
        self.json(caller, &Request::GetAnonIssuerKey(epoch)).await
    }

    /// `GetAnonCredential`.
    pub async fn anon_credential(
        &self,
        caller: Caller,
        hid: Hid,
        epoch: u32,
    ) -> Result<AnonJoinRecord, Error> {
        let q = AnonCredentialQuery { hid, epoch };
        self.json(caller, &Request::GetAnonCredential(&q)).await
    }

    /// `GetAnonAggregate`.
    pub async fn anon_aggregate(
        &self,
        caller: Caller,
        period_start: u64,
    ) -> Result<AnonAggregate, Error> {
        self.json(
            caller,
            &Request::GetAnonAggregate(AnonPeriodQuery { period_start }),
        )
        .await
    }

    /// `RecordAnonTrace`: the culprit of a double report, revoked.
    pub async fn record_anon_trace(
        &self,
        caller: Caller,
        trace: &AnonTraceArg,
    ) -> Result<AnonTraceRecord, Error> {
        self.json(caller, &Request::RecordAnonTrace(trace)).await
    }

    /// `GetAnonDoubleReports`.
    pub async fn anon_double_reports(
        &self,
        caller: Caller,
        period_start: u64,
    ) -> Result<Vec<AnonDoubleReport>, Error> {
        self.json(
            caller,
            &Request::GetAnonDoubleReports(AnonPeriodQuery { period_start }),
        )
        .await
    }
}
