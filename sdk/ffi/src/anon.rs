//! The meter side of anonymous readings (`bcami-anon`) for C: the meter secret, the join
//! request, a meter handle holding the checked credential, and anonymous readings. Its own
//! result codes (`bcami_anon_result`), stable and only ever appended.

use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use bcami_anon::{
    AnonReport, Credential, IssuerPublicKey, JoinRequest, KeyHolder, MeterCredential, Period,
    Presentation, ReportFlags, SoftwareKeyHolder, Zk,
};

use crate::bcami_bytes;

/// Length of an anonymous-credential meter secret.
pub const BCAMI_ANON_SECRET_LEN: usize = 32;
/// Length of the nonce a join request is bound to.
pub const BCAMI_ANON_NONCE_LEN: usize = 32;
/// Entropy for one anonymous reading (fresh from the TRNG each time).
pub const BCAMI_ANON_READING_ENTROPY_LEN: usize = 64;
/// Entropy for a join request.
pub const BCAMI_ANON_JOIN_ENTROPY_LEN: usize = 32;
/// Length of an encoded anonymous reading.
pub const BCAMI_ANON_READING_LEN: usize = 380;

/// Result codes of the `bcami_anon_*` functions. Values are stable: new codes are only ever
/// appended.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum bcami_anon_result {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL.
    NullArgument = 1,
    /// The meter secret is zero or not below the group order.
    InvalidSecret = 2,
    /// Fewer than `BCAMI_MIN_ENTROPY_LEN` bytes of entropy for a new secret.
    NotEnoughEntropy = 3,
    /// The issuer key or the credential bytes are malformed.
    InvalidMessage = 4,
    /// The credential does not verify for this secret under the issuer key (or is for another
    /// epoch).
    InvalidCredential = 5,
    /// The report has a zero-length period or undefined flags.
    InvalidReport = 6,
    /// Building failed (practically impossible with valid inputs).
    BuildFailed = 7,
    /// A panic was caught at the boundary (a bug in this library).
    Panic = 8,
}

/// An anonymous report.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bcami_anon_report {
    /// Start of the period, Unix milliseconds.
    pub period_start_ms: u64,
    /// Length of the period in seconds; must not be zero.
    pub period_length_s: u32,
    /// Energy in the period, Wh.
    pub energy_wh: u64,
    /// Flags: bit 0 estimated, 1 power outage, 2 clock adjusted, 3 tamper alarm.
    pub flags: u16,
}

/// A meter ready to build anonymous readings: its secret, the issuer key and the checked
/// credential. Create with [`bcami_anon_meter_new`], free with [`bcami_anon_meter_free`].
pub struct bcami_anon_meter {
    holder: SoftwareKeyHolder<Zk>,
    issuer: IssuerPublicKey<Zk>,
    credential: MeterCredential<Zk>,
}

type AnonResult = Result<(), bcami_anon_result>;

fn guard(body: impl FnOnce() -> AnonResult) -> bcami_anon_result {
    // Out-pointers are written only after all fallible work, so a panic leaves nothing
    // half-written that C could take for a result: asserting unwind safety is sound.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => bcami_anon_result::Ok,
        Ok(Err(code)) => code,
        Err(_) => bcami_anon_result::Panic,
    }
}

/// Borrows `len` bytes at `ptr`; NULL only for an empty slice.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes valid for `'a`.
unsafe fn slice_in<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], bcami_anon_result> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(bcami_anon_result::NullArgument)
        };
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Copies `N` bytes from a non-NULL `ptr`.
///
/// # Safety
/// `ptr` must be NULL or point to `N` readable bytes.
unsafe fn array_in<const N: usize>(ptr: *const u8) -> Result<[u8; N], bcami_anon_result> {
    if ptr.is_null() {
        return Err(bcami_anon_result::NullArgument);
    }
    // SAFETY: non-null, and the caller guarantees N readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, N) };
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

/// Hands a buffer to C through `out`.
///
/// # Safety
/// `out` must be NULL or point to a writable `bcami_bytes *`.
unsafe fn bytes_out(out: *mut *mut bcami_bytes, bytes: Vec<u8>) -> AnonResult {
    if out.is_null() {
        return Err(bcami_anon_result::NullArgument);
    }
    let boxed = Box::into_raw(Box::new(bcami_bytes { bytes }));
    // SAFETY: non-null and writable per the caller's contract.
    unsafe { out.write(boxed) };
    Ok(())
}

fn holder(
    secret: &[u8; BCAMI_ANON_SECRET_LEN],
) -> Result<SoftwareKeyHolder<Zk>, bcami_anon_result> {
    SoftwareKeyHolder::from_bytes(secret).map_err(|_| bcami_anon_result::InvalidSecret)
}

fn decode_issuer_key(bytes: &[u8]) -> Result<IssuerPublicKey<Zk>, bcami_anon_result> {
    IssuerPublicKey::decode(bytes).map_err(|_| bcami_anon_result::InvalidMessage)
}

/// Derives a meter secret from at least `BCAMI_MIN_ENTROPY_LEN` bytes of TRNG output into
/// `out_secret` (`BCAMI_ANON_SECRET_LEN` bytes; keep it like a private key).
///
/// # Safety
/// `entropy` points to `entropy_len` readable bytes; `out_secret` to `BCAMI_ANON_SECRET_LEN`
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_anon_secret_from_entropy(
    entropy: *const u8,
    entropy_len: usize,
    out_secret: *mut u8,
) -> bcami_anon_result {
    guard(|| {
        // SAFETY: forwarded from the caller's contract.
        let entropy = unsafe { slice_in(entropy, entropy_len) }?;
        if entropy.len() < bcami_anon::MIN_SECRET_ENTROPY {
            return Err(bcami_anon_result::NotEnoughEntropy);
        }
        let secret = SoftwareKeyHolder::<Zk>::from_entropy(entropy)
            .map_err(|_| bcami_anon_result::InvalidSecret)?
            .to_bytes();
        if out_secret.is_null() {
            return Err(bcami_anon_result::NullArgument);
        }
        // SAFETY: non-null, BCAMI_ANON_SECRET_LEN writable bytes per the contract; `secret` is a
        // distinct Rust array.
        unsafe { std::ptr::copy_nonoverlapping(secret.as_ptr(), out_secret, secret.len()) };
        Ok(())
    })
}

/// Builds the join request (`bcami-anon` kind 0x22) for the issuer key's epoch, bound to the
/// meter's HID and the ledger's nonce.
///
/// # Safety
/// `secret`: `BCAMI_ANON_SECRET_LEN` bytes; `issuer_key`: `issuer_key_len` bytes; `hid`:
/// `BCAMI_HID_LEN` bytes; `nonce`: `BCAMI_ANON_NONCE_LEN` bytes; `entropy`:
/// `BCAMI_ANON_JOIN_ENTROPY_LEN` bytes; `out`: a writable `bcami_bytes *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_anon_join_request_build(
    secret: *const u8,
    issuer_key: *const u8,
    issuer_key_len: usize,
    hid: *const u8,
    nonce: *const u8,
    entropy: *const u8,
    out: *mut *mut bcami_bytes,
) -> bcami_anon_result {
    guard(|| {
        // SAFETY (all four): forwarded from the caller's contract.
        let mut holder = holder(&unsafe { array_in(secret) }?)?;
        let ipk = decode_issuer_key(unsafe { slice_in(issuer_key, issuer_key_len) }?)?;
        let hid = unsafe { array_in::<32>(hid) }?;
        let nonce = unsafe { array_in::<32>(nonce) }?;
        let entropy = unsafe { array_in::<32>(entropy) }?;
        let request = JoinRequest::build(&mut holder, &ipk, hid, nonce, &entropy)
            .map_err(|_| bcami_anon_result::BuildFailed)?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { bytes_out(out, request.encode()) }
    })
}

/// Checks the issuer's credential for this secret (paper eq. 13) and returns a meter handle for
/// readings in `out_meter`.
///
/// # Safety
/// `secret`: `BCAMI_ANON_SECRET_LEN` bytes; `issuer_key`, `credential`: the given lengths;
/// `out_meter`: a writable `bcami_anon_meter *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_anon_meter_new(
    secret: *const u8,
    issuer_key: *const u8,
    issuer_key_len: usize,
    credential: *const u8,
    credential_len: usize,
    out_meter: *mut *mut bcami_anon_meter,
) -> bcami_anon_result {
    guard(|| {
        // SAFETY (all three): forwarded from the caller's contract.
        let holder = holder(&unsafe { array_in(secret) }?)?;
        let issuer = decode_issuer_key(unsafe { slice_in(issuer_key, issuer_key_len) }?)?;
        let credential = Credential::<Zk>::decode(unsafe { slice_in(credential, credential_len) }?)
            .map_err(|_| bcami_anon_result::InvalidMessage)?
            .accept(&issuer, &holder.commitment())
            .map_err(|_| bcami_anon_result::InvalidCredential)?;
        if out_meter.is_null() {
            return Err(bcami_anon_result::NullArgument);
        }
        let meter = Box::into_raw(Box::new(bcami_anon_meter {
            holder,
            issuer,
            credential,
        }));
        // SAFETY: non-null and writable per the contract.
        unsafe { out_meter.write(meter) };
        Ok(())
    })
}

/// Builds one anonymous reading (`BCAMI_ANON_READING_LEN` bytes) with
/// `BCAMI_ANON_READING_ENTROPY_LEN` fresh TRNG bytes.
///
/// # Safety
/// `meter`: a live handle from [`bcami_anon_meter_new`], not used by another thread at the same
/// time; `report`: a readable report; `entropy`: `BCAMI_ANON_READING_ENTROPY_LEN` bytes; `out`:
/// a writable `bcami_bytes *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_anon_reading_build(
    meter: *mut bcami_anon_meter,
    report: *const bcami_anon_report,
    entropy: *const u8,
    out: *mut *mut bcami_bytes,
) -> bcami_anon_result {
    guard(|| {
        // SAFETY: NULL or a live, exclusively used handle, per the contract.
        let meter = unsafe { meter.as_mut() }.ok_or(bcami_anon_result::NullArgument)?;
        // SAFETY: NULL or a readable report, per the contract.
        let report = *unsafe { report.as_ref() }.ok_or(bcami_anon_result::NullArgument)?;
        // SAFETY: forwarded from the caller's contract.
        let entropy = unsafe { array_in::<64>(entropy) }?;
        let report = AnonReport {
            period: Period::new(report.period_start_ms, report.period_length_s)
                .ok_or(bcami_anon_result::InvalidReport)?,
            energy_wh: report.energy_wh,
            flags: ReportFlags::from_bits(report.flags)
                .map_err(|_| bcami_anon_result::InvalidReport)?,
        };
        let reading = Presentation::build_from_entropy(
            &mut meter.holder,
            &meter.credential,
            &meter.issuer,
            &report,
            &entropy,
        )
        .map_err(|_| bcami_anon_result::BuildFailed)?;
        // SAFETY: forwarded from the caller's contract.
        unsafe { bytes_out(out, reading.encode()) }
    })
}

/// Frees a meter handle. NULL is accepted and ignored.
///
/// # Safety
/// `meter` is NULL or a handle from [`bcami_anon_meter_new`], not freed before, not used after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_anon_meter_free(meter: *mut bcami_anon_meter) {
    let _ = catch_unwind(|| {
        if !meter.is_null() {
            // SAFETY: non-null, from Box::into_raw in `bcami_anon_meter_new`, freed once.
            drop(unsafe { Box::from_raw(meter) });
        }
    });
}

/// A static, NUL-terminated English description of a `bcami_anon_result` (unknown codes
/// included).
#[unsafe(no_mangle)]
pub extern "C" fn bcami_anon_result_text(result: u32) -> *const c_char {
    catch_unwind(|| anon_result_text(result).as_ptr()).unwrap_or(c"internal error".as_ptr())
}

fn anon_result_text(result: u32) -> &'static std::ffi::CStr {
    match result {
        0 => c"ok",
        1 => c"a required pointer was NULL",
        2 => c"meter secret is zero or not below the group order",
        3 => c"not enough entropy (at least 32 bytes)",
        4 => c"issuer key or credential is malformed",
        5 => c"credential does not verify for this secret and issuer key",
        6 => c"report has a zero-length period or undefined flags",
        7 => c"building failed",
        8 => c"internal error (panic caught at the C boundary)",
        _ => c"unknown result code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_and_nulls_become_result_codes() {
        assert_eq!(guard(|| panic!("boom")), bcami_anon_result::Panic);
        let mut out: *mut bcami_bytes = std::ptr::null_mut();
        // SAFETY: NULL pointers are part of the contract and must be rejected.
        let r = unsafe {
            bcami_anon_join_request_build(
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                &mut out,
            )
        };
        assert_eq!(r, bcami_anon_result::NullArgument);
        assert!(out.is_null());
        // SAFETY: NULL is accepted.
        unsafe { bcami_anon_meter_free(std::ptr::null_mut()) };
        let mut secret = [0u8; 32];
        // SAFETY: 16 readable bytes, 32 writable ones.
        let r =
            unsafe { bcami_anon_secret_from_entropy([1u8; 16].as_ptr(), 16, secret.as_mut_ptr()) };
        assert_eq!(r, bcami_anon_result::NotEnoughEntropy);
    }

    #[test]
    fn every_code_has_text() {
        for code in 0..=8u32 {
            // SAFETY: the function returns a static NUL-terminated string.
            let text = unsafe { std::ffi::CStr::from_ptr(bcami_anon_result_text(code)) };
            assert_ne!(text.to_bytes(), b"unknown result code");
        }
    }
}
