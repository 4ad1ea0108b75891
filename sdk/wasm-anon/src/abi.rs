//! The anonymous meter's operations on one fixed I/O buffer and the meter's state: inputs at
//! fixed offsets, the output written from offset 0, the output length or a [`Status`] returned.
//! Pure and safe; the wasm exports (`crate::wasm`) hand this module their buffer and state.
//!
//! The state ([`Meter`]) is the key holder (the secret `f`, which never leaves the module) and
//! the accepted credential with its issuer key. Integers are big-endian, as on the wire; every
//! layout is a constant below. The messages are bcami-anon's encodings (Zk backend).

use bcami_anon::{
    AnonReport, Backend, Credential, IssuerPublicKey, JoinRequest, KeyHolder, MeterCredential,
    Period, Presentation, ReportFlags, SoftwareKeyHolder, Zk,
};
use bcami_wasm_rt::{Fields, emit};

/// Size of the I/O buffer: the largest input or output (a presentation, 380 bytes), rounded up.
pub const IO_LEN: usize = 384;
/// Bytes of caller entropy for a key, a join proof.
pub const ENTROPY_LEN: usize = 32;
/// Bytes of caller entropy for a presentation (32 for the key holder, 32 for the host part).
pub const PRESENT_ENTROPY_LEN: usize = 64;
/// A compressed G1 point: the issuance commitment `C = H_f·f`.
pub const COMMITMENT_LEN: usize = 48;
/// An encoded issuer public key.
pub const ISSUER_KEY_LEN: usize = IssuerPublicKey::<Zk>::ENCODED_LEN;
/// A hashed identity.
pub const HID_LEN: usize = 32;
/// The ledger's join nonce (`bcami_sdk::anon_join_nonce` of the issuer transaction and HID).
pub const NONCE_LEN: usize = 32;
/// An encoded join request.
pub const JOIN_REQUEST_LEN: usize = JoinRequest::<Zk>::ENCODED_LEN;
/// An encoded credential.
pub const CREDENTIAL_LEN: usize = Credential::<Zk>::ENCODED_LEN;
/// A credential epoch: u32, big-endian.
pub const EPOCH_LEN: usize = 4;
/// An encoded anonymous report: period start (u64 ms), period length (u32 s), energy (u64 Wh),
/// flags (u16).
pub const REPORT_LEN: usize = AnonReport::ENCODED_LEN;
/// An encoded presentation (the anonymous reading).
pub const PRESENTATION_LEN: usize = Presentation::<Zk>::ENCODED_LEN;

/// `keygen` input: entropy. Output: the commitment `C`. Forgets any credential.
pub const KEYGEN_INPUT_LEN: usize = ENTROPY_LEN;
/// `join` input: issuer key, HID, ledger nonce, entropy. Output: the join request.
pub const JOIN_INPUT_LEN: usize = ISSUER_KEY_LEN + HID_LEN + NONCE_LEN + ENTROPY_LEN;
/// `accept` input: issuer key, credential. Output: the credential's epoch. Replaces the held
/// credential; a refused one leaves none held.
pub const ACCEPT_INPUT_LEN: usize = ISSUER_KEY_LEN + CREDENTIAL_LEN;
/// `present` input: report, entropy. Output: the presentation.
pub const PRESENT_INPUT_LEN: usize = REPORT_LEN + PRESENT_ENTROPY_LEN;

const _: () = assert!(JOIN_INPUT_LEN <= IO_LEN);
const _: () = assert!(ACCEPT_INPUT_LEN <= IO_LEN);
const _: () = assert!(PRESENT_INPUT_LEN <= IO_LEN);
const _: () = assert!(JOIN_REQUEST_LEN <= IO_LEN);
const _: () = assert!(PRESENTATION_LEN <= IO_LEN);

/// Why an operation produced nothing. The wasm exports return `-(code)`; codes are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
#[non_exhaustive]
pub enum Status {
    /// The entropy gave no secret (a zero scalar; never in practice).
    Entropy = 1,
    /// No key holder yet: `keygen` first.
    NoKey = 2,
    /// The issuer key does not decode (not a G2 point, wrong kind or version).
    IssuerKey = 3,
    /// The credential does not decode.
    Credential = 4,
    /// The credential is not the issuer's signature on this meter's commitment for the key's
    /// epoch (wrong epoch, tampered, or another meter's).
    CredentialRefused = 5,
    /// No credential held: `accept` first.
    NoCredential = 6,
    /// The report is not valid (zero period length, unknown flags).
    Report = 7,
    /// The key holder or the proof failed.
    Build = 8,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 8] = [
        Status::Entropy,
        Status::NoKey,
        Status::IssuerKey,
        Status::Credential,
        Status::CredentialRefused,
        Status::NoCredential,
        Status::Report,
        Status::Build,
    ];

    /// The status for a negative return value of an export, if it is one.
    pub fn from_return(value: i32) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.to_return() == value)
    }

    /// The value an export returns for this status.
    pub const fn to_return(self) -> i32 {
        -(self as i32)
    }
}

/// An accepted credential and the key it was issued under.
struct Held {
    credential: MeterCredential<Zk>,
    issuer: IssuerPublicKey<Zk>,
}

/// The meter's anonymous state, kept in module memory between operations.
#[derive(Default)]
pub struct Meter {
    holder: Option<SoftwareKeyHolder<Zk>>,
    held: Option<Held>,
}

impl core::fmt::Debug for Meter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Meter")
            .field("has_key", &self.holder.is_some())
            .field("epoch", &self.held.as_ref().map(|h| h.credential.epoch()))
            .finish()
    }
}

impl Meter {
    /// No key, no credential.
    pub const fn new() -> Meter {
        Meter {
            holder: None,
            held: None,
        }
    }

    /// Drops the held credential and its issuer key (before the heap they live in is cleared).
    pub fn forget_credential(&mut self) {
        self.held = None;
    }

    fn holder(&mut self) -> Result<&mut SoftwareKeyHolder<Zk>, Status> {
        self.holder.as_mut().ok_or(Status::NoKey)
    }
}

fn issuer_key(bytes: &[u8; ISSUER_KEY_LEN]) -> Result<IssuerPublicKey<Zk>, Status> {
    IssuerPublicKey::decode(bytes).map_err(|_| Status::IssuerKey)
}

/// A new key holder from caller entropy (`SoftwareKeyHolder::from_entropy`); outputs its
/// issuance commitment. The previous key and credential are forgotten.
pub fn keygen(meter: &mut Meter, io: &mut [u8; IO_LEN]) -> Result<usize, Status> {
    meter.forget_credential();
    meter.holder = None;
    let holder = SoftwareKeyHolder::<Zk>::from_entropy(&io[..KEYGEN_INPUT_LEN])
        .map_err(|_| Status::Entropy)?;
    let commitment = Zk::g1_to_bytes(&holder.commitment());
    meter.holder = Some(holder);
    Ok(emit(io, &[&commitment]))
}

/// The join request for the issuer key's epoch (`JoinRequest::build`): the commitment and a proof
/// of the secret bound to the key, HID, epoch and ledger nonce.
pub fn join(meter: &mut Meter, io: &mut [u8; IO_LEN]) -> Result<usize, Status> {
    let mut input = Fields::new(&io[..JOIN_INPUT_LEN]);
    let issuer = issuer_key(&input.take())?;
    let hid = input.take::<HID_LEN>();
    let nonce = input.take::<NONCE_LEN>();
    let entropy = input.take::<ENTROPY_LEN>();
    let request = JoinRequest::build(meter.holder()?, &issuer, hid, nonce, &entropy)
        .map_err(|_| Status::Build)?;
    Ok(emit(io, &[&request.encode()]))
}

/// Checks the credential against this meter's commitment (`Credential::accept`, the pairing
/// check) and keeps it with its issuer key; outputs its epoch.
pub fn accept(meter: &mut Meter, io: &mut [u8; IO_LEN]) -> Result<usize, Status> {
    meter.forget_credential();
    let mut input = Fields::new(&io[..ACCEPT_INPUT_LEN]);
    let issuer = issuer_key(&input.take())?;
    let credential = Credential::<Zk>::decode(&input.take::<CREDENTIAL_LEN>())
        .map_err(|_| Status::Credential)?;
    let commitment = meter.holder()?.commitment();
    let credential = credential
        .accept(&issuer, &commitment)
        .map_err(|_| Status::CredentialRefused)?;
    let epoch = credential.epoch();
    meter.held = Some(Held { credential, issuer });
    Ok(emit(io, &[&epoch.to_be_bytes()]))
}

/// The anonymous reading of a report (`Presentation::build_from_entropy`).
pub fn present(meter: &mut Meter, io: &mut [u8; IO_LEN]) -> Result<usize, Status> {
    let mut input = Fields::new(&io[..PRESENT_INPUT_LEN]);
    let report = report(&input.take())?;
    let entropy = input.take::<PRESENT_ENTROPY_LEN>();
    let holder = meter.holder.as_mut().ok_or(Status::NoKey)?;
    let held = meter.held.as_ref().ok_or(Status::NoCredential)?;
    let presentation =
        Presentation::build_from_entropy(holder, &held.credential, &held.issuer, &report, &entropy)
            .map_err(|_| Status::Build)?;
    Ok(emit(io, &[&presentation.encode()]))
}

fn report(bytes: &[u8; REPORT_LEN]) -> Result<AnonReport, Status> {
    let mut fields = Fields::new(bytes);
    let start = u64::from_be_bytes(fields.take());
    let length = u32::from_be_bytes(fields.take());
    let energy_wh = u64::from_be_bytes(fields.take());
    let flags = u16::from_be_bytes(fields.take());
    Ok(AnonReport {
        period: Period::new(start, length).ok_or(Status::Report)?,
        energy_wh,
        flags: ReportFlags::from_bits(flags).map_err(|_| Status::Report)?,
    })
}

#[cfg(test)]
mod tests {
    // Test code: a failing unwrap is a failing test.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bcami_anon::IssuerSecretKey;

    fn io(parts: &[&[u8]]) -> [u8; IO_LEN] {
        let mut io = [0u8; IO_LEN];
        emit(&mut io, parts);
        io
    }

    fn report_bytes(length: u32, flags: u16) -> [u8; REPORT_LEN] {
        let mut b = [0u8; REPORT_LEN];
        emit(
            &mut b,
            &[
                &1_700_000_000_000u64.to_be_bytes(),
                &length.to_be_bytes(),
                &42u64.to_be_bytes(),
                &flags.to_be_bytes(),
            ],
        );
        b
    }

    #[test]
    fn the_report_layout_is_bcami_anons_encoding() {
        let report = report(&report_bytes(900, 1)).unwrap();
        assert_eq!(report.encode(), report_bytes(900, 1));
        assert_eq!(super::report(&report_bytes(0, 0)), Err(Status::Report));
        assert_eq!(
            super::report(&report_bytes(900, 1 << 9)),
            Err(Status::Report)
        );
    }

    #[test]
    fn operations_out_of_order_are_statuses_and_a_foreign_credential_is_refused() {
        let mut meter = Meter::new();
        let issuer = IssuerSecretKey::<Zk>::from_bytes(&[7; 32], 3).unwrap();
        let ipk = issuer.public_key().encode();
        let join_input = [&ipk[..], &[1; 32], &[2; 32], &[3; 32]].concat();
        assert_eq!(
            join(&mut meter, &mut io(&[&join_input])),
            Err(Status::NoKey)
        );
        let present_input = [&report_bytes(900, 0)[..], &[4; 64]].concat();
        assert_eq!(
            present(&mut meter, &mut io(&[&present_input])),
            Err(Status::NoKey)
        );

        assert_eq!(keygen(&mut meter, &mut io(&[&[5; 32]])), Ok(COMMITMENT_LEN));
        assert_eq!(
            present(&mut meter, &mut io(&[&present_input])),
            Err(Status::NoCredential)
        );

        // A credential issued to another meter's join request does not fit this meter.
        let mut other = SoftwareKeyHolder::<Zk>::from_entropy(&[6; 32]).unwrap();
        let request =
            JoinRequest::build(&mut other, issuer.public_key(), [1; 32], [2; 32], &[3; 32])
                .unwrap();
        let foreign = issuer.issue(&request, &[2; 32]).unwrap().encode();
        assert_eq!(
            accept(&mut meter, &mut io(&[&ipk, &foreign])),
            Err(Status::CredentialRefused)
        );
        assert_eq!(
            accept(&mut meter, &mut io(&[&[0; ISSUER_KEY_LEN], &foreign])),
            Err(Status::IssuerKey)
        );
        assert_eq!(
            accept(&mut meter, &mut io(&[&ipk, &[0; CREDENTIAL_LEN]])),
            Err(Status::Credential)
        );
    }

    #[test]
    fn statuses_round_trip_and_nothing_else_is_a_status() {
        for status in Status::ALL {
            assert!(status.to_return() < 0);
            assert_eq!(Status::from_return(status.to_return()), Some(status));
        }
        assert_eq!(Status::from_return(0), None);
        assert_eq!(Status::from_return(-9), None);
        assert_eq!(Status::from_return(380), None);
    }
}
