//! Framing on a byte stream: `u16 big-endian length || message`, the length at most
//! [`MAX_FRAME_LEN`] and never zero.

/// The largest message a frame may carry. Handshake messages are at most 179 bytes; sealed
/// commands and readings are small. A peer announcing more is refused before anything is read.
pub const MAX_FRAME_LEN: usize = 4096;

/// A frame length outside `1..=MAX_FRAME_LEN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("frame length {0} is outside 1..={MAX_FRAME_LEN}")]
pub struct FrameLengthError(pub usize);

/// Checks a length read from the stream before reading the body.
pub fn check_len(len: usize) -> Result<usize, FrameLengthError> {
    if (1..=MAX_FRAME_LEN).contains(&len) {
        Ok(len)
    } else {
        Err(FrameLengthError(len))
    }
}

/// The frame for `message`.
pub fn encode(message: &[u8]) -> Result<Vec<u8>, FrameLengthError> {
    let len =
        u16::try_from(check_len(message.len())?).map_err(|_| FrameLengthError(message.len()))?;
    let mut out = Vec::with_capacity(2 + message.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_bounded() {
        assert_eq!(encode(&[7, 8]).unwrap(), [0, 2, 7, 8]);
        assert_eq!(encode(&[]), Err(FrameLengthError(0)));
        assert_eq!(
            encode(&[0; MAX_FRAME_LEN + 1]),
            Err(FrameLengthError(MAX_FRAME_LEN + 1))
        );
        assert_eq!(check_len(MAX_FRAME_LEN), Ok(MAX_FRAME_LEN));
    }
}
