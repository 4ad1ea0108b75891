//! The meter side of a meter ↔ head-end session (FORMAT.md, *Meter ↔ head-end sessions*) for C
//! firmware: start a handshake, finish it with the head-end's response, then seal and open.
//!
//! The handshake state is consumed by [`bcami_session_meter_finish`] whatever the outcome (the
//! C twin of Rust's by-value state machine), so a handshake can never be finished twice.

use bcami_sdk::session::{HeadEndIdentity, MeterHandshake, Session, SessionResponse};
use bcami_sdk::{HandshakeError, HeadEndPublicKey, Hid, SessionError, Timestamp};

use crate::{
    BCAMI_HID_LEN, BCAMI_PUBLIC_KEY_LEN, bcami_bytes, bcami_result, guard, key_error, slice_in,
};
use crate::{array_in, array_out, bytes_out, secret_key_in};

/// Length of a session id (the hash of the handshake transcript).
pub const BCAMI_SESSION_ID_LEN: usize = 32;

/// A meter's handshake in progress (after `SessionInit`, before `SessionResponse`). Made by
/// [`bcami_session_meter_start`]; consumed by [`bcami_session_meter_finish`] or
/// [`bcami_meter_handshake_free`].
pub struct bcami_meter_handshake {
    inner: MeterHandshake,
}

/// An established session. Made by [`bcami_session_meter_finish`]; freed by
/// [`bcami_session_free`]. Not thread-safe: use it from one thread at a time.
pub struct bcami_session {
    inner: Session,
}

fn handshake_error(error: HandshakeError) -> bcami_result {
    match error {
        HandshakeError::Key(key) => key_error(key),
        HandshakeError::Signing => bcami_result::BuildFailed,
        // The meter side refuses only an unauthentic response; the head-end's directory errors
        // cannot occur here.
        _ => bcami_result::HandshakeFailed,
    }
}

fn session_error(error: SessionError) -> bcami_result {
    match error {
        SessionError::Decode(_) => bcami_result::MalformedMessage,
        SessionError::Replayed { .. } => bcami_result::Replayed,
        SessionError::SequenceExhausted => bcami_result::SequenceExhausted,
        _ => bcami_result::DecryptFailed,
    }
}

/// Starts a handshake with the head-end registered on the ledger as `head_end_id` (32 bytes,
/// SHA-256 of its ID) with `head_end_public_key` (33 bytes), at the meter's time `timestamp_ms`.
/// `entropy` (at least `BCAMI_MIN_ENTROPY_LEN` fresh TRNG bytes) makes the ephemeral key and
/// nonce, hedged with the meter key. Writes the handshake state to `*handshake_out` and the
/// `SessionInit` to send (91 bytes) to `*init_out`; both are written only on success.
///
/// # Safety
/// `secret_key`, `hid`, `head_end_id` point to 32 readable bytes; `head_end_public_key` to 33;
/// `entropy` to `entropy_len`; `handshake_out` and `init_out` to writable pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_session_meter_start(
    secret_key: *const u8,
    hid: *const u8,
    timestamp_ms: u64,
    head_end_id: *const u8,
    head_end_public_key: *const u8,
    entropy: *const u8,
    entropy_len: usize,
    handshake_out: *mut *mut bcami_meter_handshake,
    init_out: *mut *mut bcami_bytes,
) -> bcami_result {
    guard(|| {
        // SAFETY: the caller's contract above.
        let key = unsafe { secret_key_in(secret_key) }?;
        // SAFETY: the caller's contract above.
        let hid = Hid::from_bytes(unsafe { array_in::<BCAMI_HID_LEN>(hid) }?);
        // SAFETY: the caller's contract above.
        let id = Hid::from_bytes(unsafe { array_in::<BCAMI_HID_LEN>(head_end_id) }?);
        // SAFETY: the caller's contract above.
        let public = unsafe { array_in::<BCAMI_PUBLIC_KEY_LEN>(head_end_public_key) }?;
        let public_key = HeadEndPublicKey::from_sec1_bytes(&public)
            .map_err(|_| bcami_result::InvalidPublicKey)?;
        // SAFETY: the caller's contract above.
        let entropy = unsafe { slice_in(entropy, entropy_len) }?;
        if handshake_out.is_null() || init_out.is_null() {
            return Err(bcami_result::NullArgument);
        }
        let (handshake, init) = MeterHandshake::start_from_entropy(
            entropy,
            &key,
            hid,
            HeadEndIdentity { id, public_key },
            Timestamp::from_unix_millis(timestamp_ms),
        )
        .map_err(handshake_error)?;
        // SAFETY: the caller's contract above; checked non-null.
        unsafe { bytes_out(init_out, init.encode()) }?;
        let state = Box::into_raw(Box::new(bcami_meter_handshake { inner: handshake }));
        // SAFETY: non-null and writable per the contract.
        unsafe { handshake_out.write(state) };
        Ok(())
    })
}

/// Finishes the handshake with the head-end's `SessionResponse`: checks the head-end's identity,
/// MAC and signature, then signs the transcript with the meter's registered `secret_key`. On
/// success writes the session to `*session_out` and the `SessionConfirm` to send (98 bytes) to
/// `*confirm_out`. `handshake` is consumed and freed on every return, success or not (NULL gives
/// `BCAMI_RESULT_NULL_ARGUMENT`); start a new handshake after a failure.
///
/// # Safety
/// `handshake` is NULL or a live handshake from [`bcami_session_meter_start`], not used after
/// this call; `secret_key` points to 32 readable bytes; `response` to `response_len` readable
/// bytes; `session_out` and `confirm_out` to writable pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_session_meter_finish(
    handshake: *mut bcami_meter_handshake,
    secret_key: *const u8,
    response: *const u8,
    response_len: usize,
    session_out: *mut *mut bcami_session,
    confirm_out: *mut *mut bcami_bytes,
) -> bcami_result {
    guard(|| {
        if handshake.is_null() {
            return Err(bcami_result::NullArgument);
        }
        // SAFETY: non-null, made by Box::into_raw in `bcami_session_meter_start`, and owned by
        // this call from here on per the contract; dropped on every path below.
        let handshake = unsafe { Box::from_raw(handshake) }.inner;
        // SAFETY: the caller's contract above.
        let key = unsafe { secret_key_in(secret_key) }?;
        // SAFETY: the caller's contract above.
        let response = unsafe { slice_in(response, response_len) }?;
        let response =
            SessionResponse::decode(response).map_err(|_| bcami_result::MalformedMessage)?;
        if session_out.is_null() || confirm_out.is_null() {
            return Err(bcami_result::NullArgument);
        }
        let (session, confirm) = handshake.finish(&key, &response).map_err(handshake_error)?;
        // SAFETY: the caller's contract above; checked non-null.
        unsafe { bytes_out(confirm_out, confirm.encode()) }?;
        let session = Box::into_raw(Box::new(bcami_session { inner: session }));
        // SAFETY: non-null and writable per the contract.
        unsafe { session_out.write(session) };
        Ok(())
    })
}

/// Abandons a handshake. NULL is accepted and ignored.
///
/// # Safety
/// `handshake` is NULL or a live handshake from [`bcami_session_meter_start`], not freed before
/// (nor passed to [`bcami_session_meter_finish`]) and not used after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_meter_handshake_free(handshake: *mut bcami_meter_handshake) {
    let _ = std::panic::catch_unwind(|| {
        if !handshake.is_null() {
            // SAFETY: non-null, created by Box::into_raw, freed only once per the contract.
            drop(unsafe { Box::from_raw(handshake) });
        }
    });
}

/// Seals `plaintext` for the head-end, binding `aad` (not sent; the head-end must use the same).
/// Writes `kind || version || sequence number || ciphertext || tag` to `*out`.
///
/// # Safety
/// `session` is a live session; `aad` points to `aad_len` and `plaintext` to `plaintext_len`
/// readable bytes (NULL only with length 0); `out` to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_session_seal(
    session: *mut bcami_session,
    aad: *const u8,
    aad_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut *mut bcami_bytes,
) -> bcami_result {
    guard(|| {
        // SAFETY: NULL or a live session used by this thread only, per the contract.
        let session = unsafe { session.as_mut() }.ok_or(bcami_result::NullArgument)?;
        // SAFETY: the caller's contract above.
        let aad = unsafe { slice_in(aad, aad_len) }?;
        // SAFETY: the caller's contract above.
        let plaintext = unsafe { slice_in(plaintext, plaintext_len) }?;
        if out.is_null() {
            return Err(bcami_result::NullArgument);
        }
        let sealed = session.inner.seal(aad, plaintext).map_err(session_error)?;
        // SAFETY: the caller's contract above.
        unsafe { bytes_out(out, sealed) }
    })
}

/// Opens a message the head-end sealed with the same `aad`. Refuses a replayed or reordered
/// message (`BCAMI_RESULT_REPLAYED`) and an altered one (`BCAMI_RESULT_DECRYPT_FAILED`); writes
/// the plaintext to `*out` only on success.
///
/// # Safety
/// `session` is a live session; `aad` points to `aad_len` and `sealed` to `sealed_len` readable
/// bytes (NULL only with length 0); `out` to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_session_open(
    session: *mut bcami_session,
    aad: *const u8,
    aad_len: usize,
    sealed: *const u8,
    sealed_len: usize,
    out: *mut *mut bcami_bytes,
) -> bcami_result {
    guard(|| {
        // SAFETY: NULL or a live session used by this thread only, per the contract.
        let session = unsafe { session.as_mut() }.ok_or(bcami_result::NullArgument)?;
        // SAFETY: the caller's contract above.
        let aad = unsafe { slice_in(aad, aad_len) }?;
        // SAFETY: the caller's contract above.
        let sealed = unsafe { slice_in(sealed, sealed_len) }?;
        if out.is_null() {
            return Err(bcami_result::NullArgument);
        }
        let plaintext = session.inner.open(aad, sealed).map_err(session_error)?;
        // SAFETY: the caller's contract above.
        unsafe { bytes_out(out, plaintext) }
    })
}

/// Writes the session id (`BCAMI_SESSION_ID_LEN` bytes, the same on both sides) to `id_out`.
///
/// # Safety
/// `session` is a live session; `id_out` points to 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_session_id(
    session: *const bcami_session,
    id_out: *mut u8,
) -> bcami_result {
    guard(|| {
        // SAFETY: NULL or a live session, per the contract.
        let session = unsafe { session.as_ref() }.ok_or(bcami_result::NullArgument)?;
        // SAFETY: the caller's contract above.
        unsafe { array_out(id_out, session.inner.id()) }
    })
}

/// Frees a session (its keys are in the AES key schedule inside). NULL is accepted and ignored.
///
/// # Safety
/// `session` is NULL or a live session, not freed before and not used after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcami_session_free(session: *mut bcami_session) {
    let _ = std::panic::catch_unwind(|| {
        if !session.is_null() {
            // SAFETY: non-null, created by Box::into_raw, freed only once per the contract.
            drop(unsafe { Box::from_raw(session) });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_handshake_and_session_are_refused_or_ignored() {
        let mut session: *mut bcami_session = std::ptr::null_mut();
        let mut confirm: *mut bcami_bytes = std::ptr::null_mut();
        // SAFETY: NULL pointers are part of the contract and must be rejected.
        let r = unsafe {
            bcami_session_meter_finish(
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
                0,
                &mut session,
                &mut confirm,
            )
        };
        assert_eq!(r, bcami_result::NullArgument);
        assert!(session.is_null() && confirm.is_null());
        let mut out: *mut bcami_bytes = std::ptr::null_mut();
        // SAFETY: as above.
        let r = unsafe {
            bcami_session_seal(
                std::ptr::null_mut(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                &mut out,
            )
        };
        assert_eq!(r, bcami_result::NullArgument);
        // SAFETY: NULL is accepted.
        unsafe { bcami_session_free(std::ptr::null_mut()) };
        // SAFETY: NULL is accepted.
        unsafe { bcami_meter_handshake_free(std::ptr::null_mut()) };
    }

    #[test]
    fn session_codes_have_their_own_text() {
        for code in [
            bcami_result::MalformedMessage,
            bcami_result::HandshakeFailed,
            bcami_result::Replayed,
            bcami_result::DecryptFailed,
            bcami_result::SequenceExhausted,
        ] {
            // SAFETY: the function returns a static NUL-terminated string.
            let text = unsafe { std::ffi::CStr::from_ptr(crate::bcami_result_text(code as u32)) };
            assert_ne!(text.to_bytes(), b"unknown result code", "{code:?}");
        }
    }
}
