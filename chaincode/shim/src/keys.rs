//! Keys, key ranges and composite keys, following Fabric's (Go shim's) rules.

use crate::error::StubError;

/// Separator and delimiter of composite keys.
const NUL: char = '\u{0}';
/// The largest code point; ends a partial composite-key range.
const MAX_UNICODE: char = '\u{10FFFF}';
/// What an empty start key of a simple range becomes, so composite keys stay out.
const EMPTY_KEY_SUBSTITUTE: &str = "\u{1}";

/// Build a composite key: `\0 objectType \0 attr1 \0 … attrN \0`.
///
/// Every component must be non-empty for the object type, and contain neither U+0000 nor
/// U+10FFFF.
pub fn composite_key(object_type: &str, attributes: &[&str]) -> Result<String, StubError> {
    check_component(object_type)?;
    if object_type.is_empty() {
        return Err(StubError::InvalidCompositeKey {
            component: String::new(),
            reason: "the object type must not be empty",
        });
    }
    let mut key = String::with_capacity(
        2 + object_type.len() + attributes.iter().map(|a| a.len() + 1).sum::<usize>(),
    );
    key.push(NUL);
    key.push_str(object_type);
    key.push(NUL);
    for attr in attributes {
        check_component(attr)?;
        key.push_str(attr);
        key.push(NUL);
    }
    Ok(key)
}

/// Split a composite key into its object type and attributes.
pub fn split_composite_key(key: &str) -> Result<(String, Vec<String>), StubError> {
    let rest = key.strip_prefix(NUL).ok_or(StubError::InvalidKey {
        key: key.to_owned(),
        reason: "a composite key starts with U+0000",
    })?;
    let body = rest.strip_suffix(NUL).ok_or(StubError::InvalidKey {
        key: key.to_owned(),
        reason: "a composite key ends with U+0000",
    })?;
    let mut parts = body.split(NUL).map(str::to_owned);
    let object_type = parts.next().unwrap_or_default();
    Ok((object_type, parts.collect()))
}

fn check_component(c: &str) -> Result<(), StubError> {
    if c.contains(NUL) || c.contains(MAX_UNICODE) {
        return Err(StubError::InvalidCompositeKey {
            component: c.to_owned(),
            reason: "components must not contain U+0000 or U+10FFFF",
        });
    }
    Ok(())
}

/// Check a key for `put_state`/`delete_state`/`state`.
pub(crate) fn check_key(key: &str) -> Result<(), StubError> {
    if key.is_empty() {
        return Err(StubError::InvalidKey {
            key: String::new(),
            reason: "key must not be empty",
        });
    }
    Ok(())
}

/// A validated key range `[start, end)` for range queries. An empty `end` means unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRange {
    start: String,
    end: String,
}

impl KeyRange {
    /// A range over simple (non-composite) keys. An empty `start` means "from the first simple
    /// key"; an empty `end` means unbounded. Neither may start with U+0000.
    pub fn new(start: &str, end: &str) -> Result<Self, StubError> {
        for k in [start, end] {
            if k.starts_with(NUL) {
                return Err(StubError::InvalidKey {
                    key: k.to_owned(),
                    reason: "a simple-key range bound must not start with U+0000",
                });
            }
        }
        let start = if start.is_empty() {
            EMPTY_KEY_SUBSTITUTE
        } else {
            start
        };
        Ok(Self {
            start: start.to_owned(),
            end: end.to_owned(),
        })
    }

    /// Every simple key.
    pub fn all() -> Self {
        Self {
            start: EMPTY_KEY_SUBSTITUTE.to_owned(),
            end: String::new(),
        }
    }

    /// Every composite key of `object_type` whose first attributes equal `prefix`.
    pub fn composite_prefix(object_type: &str, prefix: &[&str]) -> Result<Self, StubError> {
        let start = composite_key(object_type, prefix)?;
        let mut end = start.clone();
        end.push(MAX_UNICODE);
        Ok(Self { start, end })
    }

    /// Every composite key of any object type.
    pub fn all_composite() -> Self {
        Self {
            start: NUL.to_string(),
            end: format!("{NUL}{MAX_UNICODE}"),
        }
    }

    /// Inclusive lower bound as sent to the peer.
    pub fn start(&self) -> &str {
        &self.start
    }

    /// Exclusive upper bound as sent to the peer (empty = unbounded).
    pub fn end(&self) -> &str {
        &self.end
    }

    /// Whether `key` falls inside the range.
    pub fn contains(&self, key: &str) -> bool {
        key >= self.start.as_str() && (self.end.is_empty() || key < self.end.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_round_trip() {
        let k = composite_key("reading", &["abc", "0001"]).unwrap();
        assert_eq!(k, "\0reading\0abc\x000001\0");
        let (t, a) = split_composite_key(&k).unwrap();
        assert_eq!(t, "reading");
        assert_eq!(a, vec!["abc", "0001"]);
        let k0 = composite_key("meter", &[]).unwrap();
        assert_eq!(split_composite_key(&k0).unwrap(), ("meter".into(), vec![]));
    }

    #[test]
    fn composite_rejects_bad_components() {
        assert!(composite_key("a\0b", &[]).is_err());
        assert!(composite_key("a", &["x\u{10FFFF}"]).is_err());
        assert!(composite_key("", &["x"]).is_err());
        assert!(split_composite_key("plain").is_err());
    }

    #[test]
    fn ranges() {
        let r = KeyRange::new("", "").unwrap();
        assert_eq!(r.start(), "\u{1}");
        assert!(r.contains("a"));
        assert!(!r.contains("\0x\0"));
        assert!(KeyRange::new("\0a", "").is_err());
        let p = KeyRange::composite_prefix("reading", &["m1"]).unwrap();
        assert!(p.contains(&composite_key("reading", &["m1", "5"]).unwrap()));
        assert!(!p.contains(&composite_key("reading", &["m2", "5"]).unwrap()));
        assert_eq!(
            p.end().as_bytes().last_chunk::<4>(),
            Some(&[0xF4, 0x8F, 0xBF, 0xBF])
        );
        assert!(KeyRange::all_composite().contains(&composite_key("x", &[]).unwrap()));
    }
}
