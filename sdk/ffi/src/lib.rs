#![doc = include_str!("../README.md")]
// The C ABI needs raw pointers; the workspace denies unsafe code, so it is allowed here only.
// Every unsafe block states why it is sound (`SAFETY:`).
#![allow(unsafe_code)]
#![warn(missing_docs)]
// C naming for C-facing types, as rustls-ffi does, so the header reads like C.
#![allow(non_camel_case_types)]

pub mod anon;

use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

mod session;
pub use session::*;

use bcami_sdk::{
    BuildError, Hid, IntervalLength, KeyError, KeyRotationRequest, MdmsPublicKey, MeterSecretKey,
    QualityFlags, RegistrationRequest, Timestamp, Transaction, UsageReport, WattHours,
};

/// Length of a HID.
pub const BCAMI_HID_LEN: usize = 32;
/// Length of a secret key.
pub const BCAMI_SECRET_KEY_LEN: usize = 32;
/// Length of a compressed public key.
pub const BCAMI_PUBLIC_KEY_LEN: usize = 33;
/// Minimum entropy for key and reading generation.
pub const BCAMI_MIN_ENTROPY_LEN: usize = 32;

/// Result codes. Values are stable: new codes are only ever appended.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum bcami_result {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL.
    NullArgument = 1,
    /// A secret key is zero or not below the secp256k1 group order.
    InvalidSecretKey = 2,
    /// Fewer than `BCAMI_MIN_ENTROPY_LEN` bytes of entropy.
    NotEnoughEntropy = 3,
    /// A public key is not a compressed secp256k1 point.
    InvalidPublicKey = 4,
    /// The usage report has a zero interval length or undefined quality flags.
    InvalidUsageReport = 5,
    /// Signing or key generation failed (practically impossible with valid inputs).
    BuildFailed = 6,
    /// A panic was caught at the boundary (a bug in this library).
    Panic = 7,
    // Session codes start at 100 so that other modules can append below them.
    /// A session message is malformed (wrong kind, version or length, point off the curve).
    MalformedMessage = 100,
    /// The head-end's response is not authentic (wrong head-end, MAC or signature).
    HandshakeFailed = 101,
    /// A sealed message was replayed or reordered (its sequence number is not new).
    Replayed = 102,
    /// A sealed message failed authenticated decryption (altered, or wrong session or aad).
    DecryptFailed = 103,
    /// The session's sequence numbers are used up: start a new session.
    SequenceExhausted = 104,
}

/// A byte buffer owned by this library. Read it with [`bcami_bytes_data`] and
/// [`bcami_bytes_len`]; free it with [`bcami_bytes_free`].
pub struct bcami_bytes {
    bytes: Vec<u8>,
}

/// A usage report (layout of the encrypted plaintext: FORMAT.md, usage report version 1).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bcami_usage_report {
    /// Start of the interval, Unix milliseconds.
    pub interval_start_ms: u64,
    /// Length of the interval in seconds; must not be zero.
    pub interval_length_s: u32,
    /// Energy imported during the interval, Wh.
    pub energy_wh: u64,
    /// Cumulative import register at the end of the interval, Wh.
    pub cumulative_register_wh: u64,
    /// Quality flags: bit 0 estimated, 1 power outage, 2 clock adjusted, 3 tamper alarm.
    pub quality_flags: u16,
}

/// Runs `body`, turning a panic into [`bcami_result::Panic`].
fn guard(body: impl FnOnce() -> Result<(), bcami_result>) -> bcami_result {
    // A panic leaves nothing half-written that the caller could observe as valid: out-pointers are
    // written only on success, after all fallible work. So asserting unwind safety is sound.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => bcami_result::Ok,
        Ok(Err(code)) => code,
        Err(_) => bcami_result::Panic,
    }
}

/// Borrows `len` bytes at `ptr`; NULL is accepted only for an empty slice.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes that stay valid and unmodified for `'a`.
unsafe fn slice_in<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], bcami_result> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(bcami_result::NullArgument)
        };
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Copies `N` bytes from `ptr`.
///
/// # Safety
/// `ptr` must be NULL or point to `N` readable bytes.
unsafe fn array_in<const N: usize>(ptr: *const u8) -> Result<[u8; N], bcami_result> {
    // SAFETY: forwarded from the caller: NULL or N readable bytes.
    let bytes = unsafe { slice_in(ptr, N) }?;
    if bytes.len() != N {
        return Err(bcami_result::NullArgument);
    }
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

/// Writes `value` to `ptr`.
///
/// # Safety
/// `ptr` must be NULL or point to `N` writable bytes.
unsafe fn array_out<const N: usize>(ptr: *mut u8, value: &[u8; N]) -> Result<(), bcami_result> {
    if ptr.is_null() {
        return Err(bcami_result::NullArgument);
    }
    // SAFETY: non-null and the caller guarantees N writable bytes; `value` is a distinct Rust
    // array, so the regions cannot overlap.
    unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), ptr, N) };
    Ok(())
}

/// Hands a buffer to C through `out`.
///
/// # Safety
/// `out` must be NULL or point to a writable `bcami_bytes *`.
unsafe fn bytes_out(out: *mut *mut bcami_bytes, bytes: Vec<u8>) -> Result<(), bcami_result> {
    if out.is_null() {
        return Err(bcami_result::NullArgument);
    }
    let boxed = Box::into_raw(Box::new(bcami_bytes { bytes }));
    // SAFETY: `out` is non-null and writable per the caller's contract.
    unsafe { out.write(boxed) };
    Ok(())
}

fn key_error(error: KeyError) -> bcami_result {
    match error {
        KeyError::InvalidSecretKey => bcami_result::InvalidSecretKey,
        KeyError::NotEnoughEntropy { .. } => bcami_result::NotEnoughEntropy,
        _ => bcami_result::BuildFailed,
    }
}

fn build_error(error: BuildError) -> bcami_result {
    match error {
        BuildError::Key(key) => key_error(key),
        _ => bcami_result::BuildFailed,
    }
}

/// # Safety
/// `ptr` must be NULL or point to 32 readable bytes.
unsafe fn secret_key_in(ptr: *const u8) -> Result<MeterSecretKey, bcami_result> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { array_in::<BCAMI_SECRET_KEY_LEN>(ptr) }?;
    MeterSecretKey::from_bytes(&bytes).map_err(key_error)
}

/// Computes `HID = SHA-256(meter_id)` into `hid_out` (`BCAMI_HID_LEN` bytes).
///
/// # Safety
/// `meter_id` points to `meter_id_len` readable bytes (NULL only if the length is 0);
/// `hid_out` points to 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_hid_from_meter_id(
    meter_id: *const u8,
    meter_id_len: usize,
    hid_out: *mut u8,
) -> bcami_result {
    guard(|| {
        // SAFETY: the caller's contract above.
        let id = unsafe { slice_in(meter_id, meter_id_len) }?;
        // SAFETY: the caller's contract above.
        unsafe { array_out(hid_out, Hid::from_meter_id(id).as_bytes()) }
    })
}

/// Derives a meter key pair from at least `BCAMI_MIN_ENTROPY_LEN` bytes of entropy (the same
/// entropy always gives the same key). Writes the 32-byte secret key and the 33-byte compressed
/// public key.
///
/// # Safety
/// `entropy` points to `entropy_len` readable bytes; `secret_key_out` to 32 and
/// `public_key_out` to 33 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_meter_key_from_entropy(
    entropy: *const u8,
    entropy_len: usize,
    secret_key_out: *mut u8,
    public_key_out: *mut u8,
) -> bcami_result {
    guard(|| {
        // SAFETY: the caller's contract above.
        let entropy = unsafe { slice_in(entropy, entropy_len) }?;
        if secret_key_out.is_null() || public_key_out.is_null() {
            return Err(bcami_result::NullArgument);
        }
        let key = MeterSecretKey::from_entropy(entropy).map_err(key_error)?;
        // SAFETY: the caller's contract above; both checked non-null.
        unsafe { array_out(secret_key_out, &key.to_bytes()) }?;
        // SAFETY: as above.
        unsafe { array_out(public_key_out, &key.public_key().to_bytes()) }
    })
}

/// Writes the 33-byte compressed public key of a 32-byte secret key.
///
/// # Safety
/// `secret_key` points to 32 readable bytes; `public_key_out` to 33 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_meter_public_key(
    secret_key: *const u8,
    public_key_out: *mut u8,
) -> bcami_result {
    guard(|| {
        // SAFETY: the caller's contract above.
        let key = unsafe { secret_key_in(secret_key) }?;
        // SAFETY: the caller's contract above.
        unsafe { array_out(public_key_out, &key.public_key().to_bytes()) }
    })
}

/// Builds a meter registration request (139 bytes; FORMAT.md) and returns it in `*out`.
///
/// # Safety
/// `secret_key` and `hid` point to 32 readable bytes each; `out` to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_registration_request_build(
    secret_key: *const u8,
    hid: *const u8,
    timestamp_ms: u64,
    out: *mut *mut bcami_bytes,
) -> bcami_result {
    guard(|| {
        // SAFETY: the caller's contract above.
        let key = unsafe { secret_key_in(secret_key) }?;
        // SAFETY: the caller's contract above.
        let hid = Hid::from_bytes(unsafe { array_in(hid) }?);
        let request =
            RegistrationRequest::build(&key, hid, Timestamp::from_unix_millis(timestamp_ms))
                .map_err(build_error)?;
        // SAFETY: the caller's contract above.
        unsafe { bytes_out(out, request.encode()) }
    })
}

/// Builds a key-rotation request (203 bytes) from the current and the new 32-byte secret keys.
///
/// # Safety
/// `current_secret_key`, `new_secret_key` and `hid` point to 32 readable bytes each; `out` to a
/// writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_key_rotation_build(
    current_secret_key: *const u8,
    new_secret_key: *const u8,
    hid: *const u8,
    timestamp_ms: u64,
    out: *mut *mut bcami_bytes,
) -> bcami_result {
    guard(|| {
        // SAFETY: the caller's contract above.
        let current = unsafe { secret_key_in(current_secret_key) }?;
        // SAFETY: the caller's contract above.
        let new = unsafe { secret_key_in(new_secret_key) }?;
        // SAFETY: the caller's contract above.
        let hid = Hid::from_bytes(unsafe { array_in(hid) }?);
        let request = KeyRotationRequest::build(
            &current,
            &new,
            hid,
            Timestamp::from_unix_millis(timestamp_ms),
        )
        .map_err(build_error)?;
        // SAFETY: the caller's contract above.
        unsafe { bytes_out(out, request.encode()) }
    })
}

/// Encrypts `report` to the MDMS and signs it: a reading transaction (FORMAT.md) in `*out`.
/// `entropy` (at least 32 bytes) should be fresh from the TRNG for every reading. It makes the
/// ECIES ephemeral key, hedged with the meter key and the reading, so a repeated value never
/// reuses an AES-GCM key for a different reading.
///
/// # Safety
/// `secret_key`, `hid` point to 32 readable bytes; `report` to a `bcami_usage_report`;
/// `mdms_public_key` to 33 readable bytes; `entropy` to `entropy_len` readable bytes; `out` to a
/// writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_reading_build(
    secret_key: *const u8,
    hid: *const u8,
    timestamp_ms: u64,
    report: *const bcami_usage_report,
    mdms_public_key: *const u8,
    entropy: *const u8,
    entropy_len: usize,
    out: *mut *mut bcami_bytes,
) -> bcami_result {
    guard(|| {
        // SAFETY: the caller's contract above.
        let key = unsafe { secret_key_in(secret_key) }?;
        // SAFETY: the caller's contract above.
        let hid = Hid::from_bytes(unsafe { array_in(hid) }?);
        // SAFETY: the caller's contract above.
        let mdms_bytes = unsafe { array_in::<BCAMI_PUBLIC_KEY_LEN>(mdms_public_key) }?;
        let mdms = MdmsPublicKey::from_sec1_bytes(&mdms_bytes)
            .map_err(|_| bcami_result::InvalidPublicKey)?;
        // SAFETY: the caller's contract above.
        let entropy = unsafe { slice_in(entropy, entropy_len) }?;
        // SAFETY: `report` is NULL or points to a valid bcami_usage_report, per the contract;
        // `as_ref` handles NULL.
        let report = unsafe { report.as_ref() }.ok_or(bcami_result::NullArgument)?;
        let report = UsageReport {
            interval_start: Timestamp::from_unix_millis(report.interval_start_ms),
            interval_length: IntervalLength::from_seconds(report.interval_length_s)
                .ok_or(bcami_result::InvalidUsageReport)?,
            energy: WattHours(report.energy_wh),
            cumulative_register: WattHours(report.cumulative_register_wh),
            quality: QualityFlags::from_bits(report.quality_flags)
                .map_err(|_| bcami_result::InvalidUsageReport)?,
        };
        let reading = Transaction::build_from_entropy(
            entropy,
            &key,
            hid,
            Timestamp::from_unix_millis(timestamp_ms),
            &report,
            &mdms,
        )
        .map_err(build_error)?;
        // SAFETY: the caller's contract above.
        unsafe { bytes_out(out, reading.encode()) }
    })
}

/// The buffer's bytes (valid until it is freed); NULL for a NULL buffer.
///
/// # Safety
/// `bytes` is NULL or a buffer from this library that has not been freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_bytes_data(bytes: *const bcami_bytes) -> *const u8 {
    catch_unwind(|| {
        // SAFETY: NULL or a live buffer from this library, per the contract.
        match unsafe { bytes.as_ref() } {
            Some(b) => b.bytes.as_ptr(),
            None => std::ptr::null(),
        }
    })
    .unwrap_or(std::ptr::null())
}

/// The buffer's length; 0 for a NULL buffer.
///
/// # Safety
/// `bytes` is NULL or a buffer from this library that has not been freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_bytes_len(bytes: *const bcami_bytes) -> usize {
    catch_unwind(|| {
        // SAFETY: NULL or a live buffer from this library, per the contract.
        unsafe { bytes.as_ref() }.map_or(0, |b| b.bytes.len())
    })
    .unwrap_or(0)
}

/// Frees a buffer. NULL is accepted and ignored.
///
/// # Safety
/// `bytes` is NULL or a buffer from this library, not freed before and not used after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_bytes_free(bytes: *mut bcami_bytes) {
    // Nothing to report to C if dropping a Vec ever panicked; the boundary only stops the unwind.
    let _ = catch_unwind(|| {
        if !bytes.is_null() {
            // SAFETY: non-null, created by Box::into_raw in `bytes_out`, and freed only once per
            // the contract.
            drop(unsafe { Box::from_raw(bytes) });
        }
    });
}

/// A static, NUL-terminated English description of a result code (unknown codes included).
#[unsafe(no_mangle)]
pub extern "C" fn bcami_result_text(result: u32) -> *const c_char {
    catch_unwind(|| result_text(result).as_ptr()).unwrap_or(c"internal error".as_ptr())
}

fn result_text(result: u32) -> &'static std::ffi::CStr {
    match result {
        0 => c"ok",
        1 => c"a required pointer was NULL",
        2 => c"secret key is zero or not below the group order",
        3 => c"not enough entropy (at least 32 bytes)",
        4 => c"public key is not a compressed secp256k1 point",
        5 => c"usage report has a zero interval or undefined quality flags",
        6 => c"signing or key generation failed",
        7 => c"internal error (panic caught at the C boundary)",
        100 => c"malformed session message",
        101 => c"session handshake failed: the head-end's response is not authentic",
        102 => c"sealed message replayed or reordered",
        103 => c"sealed message failed authenticated decryption",
        104 => c"session sequence numbers exhausted; start a new session",
        _ => c"unknown result code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_a_result_code() {
        assert_eq!(guard(|| panic!("boom")), bcami_result::Panic);
        assert_eq!(
            guard(|| Err(bcami_result::InvalidPublicKey)),
            bcami_result::InvalidPublicKey
        );
    }

    #[test]
    fn null_arguments_are_reported() {
        let mut out: *mut bcami_bytes = std::ptr::null_mut();
        // SAFETY: NULL pointers are part of the contract and must be rejected.
        let r = unsafe {
            bcami_registration_request_build(std::ptr::null(), std::ptr::null(), 0, &mut out)
        };
        assert_eq!(r, bcami_result::NullArgument);
        assert!(out.is_null());
        // SAFETY: NULL is accepted.
        unsafe { bcami_bytes_free(std::ptr::null_mut()) };
        // SAFETY: NULL is accepted.
        assert_eq!(unsafe { bcami_bytes_len(std::ptr::null()) }, 0);
    }

    #[test]
    fn every_code_has_text() {
        for code in (0..=8u32).chain(100..=105) {
            // SAFETY: the function returns a static NUL-terminated string.
            let text = unsafe { std::ffi::CStr::from_ptr(bcami_result_text(code)) };
            assert!(!text.to_bytes().is_empty());
        }
    }
}
