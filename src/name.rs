//! Entry names (SPEC §2: at most `MIPC_NAME_MAX_LEN - 1` bytes, NUL-terminated on the wire).
//!
//! A name is checked once, where it enters (a C string, a wire field), and travels as a
//! [`MipcName`] after that, so no other code has to think about terminators or lengths.

// SPEC §2; `wire` re-exports it with the other constants.
/// Size of a name field, terminator included.
pub const MIPC_NAME_MAX_LEN: usize = 32;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The longest name, in bytes, without its terminating NUL.
pub const NAME_MAX_BYTES: usize = MIPC_NAME_MAX_LEN - 1;

/// Why a byte string is not a valid entry name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// The name has no bytes.
    Empty,
    /// The name has more than [`NAME_MAX_BYTES`] bytes (or no NUL within its wire field).
    TooLong,
    /// The name holds a NUL byte before its end.
    InteriorNul,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "name is empty",
            NameError::TooLong => "name is longer than 31 bytes (MIPC_NAME_MAX_LEN - 1)",
            NameError::InteriorNul => "name contains a NUL byte",
        })
    }
}

impl std::error::Error for NameError {}

/// A valid entry name: 1 to 31 bytes, no NUL, stored inline (no allocation).
///
/// Aligned to a word: a name is moved and compared on every call, and a 33-byte value of
/// byte alignment is moved in pieces of 1, 2, 4 and 8 bytes, where an aligned one takes
/// five word moves (and compares as four words).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub struct MipcName {
    bytes: [u8; MIPC_NAME_MAX_LEN],
    len: u8,
}

impl MipcName {
    /// The relay's own name, `"mipc_main"` (SPEC §2).
    pub const RELAY: MipcName = MipcName::from_static(b"mipc_main");

    /// Checks `bytes` (without a terminator) and keeps them.
    ///
    /// # Errors
    /// [`NameError`] when the bytes are empty, too long, or hold a NUL.
    pub fn new(bytes: &[u8]) -> Result<Self, NameError> {
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes.len() > NAME_MAX_BYTES {
            return Err(NameError::TooLong);
        }
        if bytes.contains(&0) {
            return Err(NameError::InteriorNul);
        }
        let mut out = [0u8; MIPC_NAME_MAX_LEN];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(MipcName {
            bytes: out,
            len: bytes.len() as u8,
        })
    }

    const fn from_static(bytes: &[u8]) -> Self {
        let mut out = [0u8; MIPC_NAME_MAX_LEN];
        let mut i = 0;
        while i < bytes.len() {
            out[i] = bytes[i];
            i += 1;
        }
        MipcName {
            bytes: out,
            len: bytes.len() as u8,
        }
    }

    /// Checks a fixed wire field and returns the length of the name in it: the bytes up to
    /// the first NUL, which must lie within the field.
    ///
    /// The field is read a word (8 bytes) at a time: every message received passes here
    /// twice, so this is on the path of every call.
    ///
    /// # Errors
    /// [`NameError::TooLong`] when the field has no NUL, [`NameError::Empty`] when it starts
    /// with one.
    #[inline]
    pub fn check_field(field: &[u8; MIPC_NAME_MAX_LEN]) -> Result<usize, NameError> {
        for (i, w) in words(field).enumerate() {
            if let Some(k) = first_zero_byte(w) {
                return match i * WORD + k {
                    0 => Err(NameError::Empty),
                    len => Ok(len),
                };
            }
        }
        Err(NameError::TooLong)
    }

    /// Reads a name from a fixed wire field (see [`MipcName::check_field`]).
    ///
    /// One pass over the words of the field: the words before the one holding the NUL are
    /// kept whole, that one is cut at the NUL, and the rest of the name stays zero.
    ///
    /// # Errors
    /// As [`MipcName::check_field`].
    #[inline]
    pub fn from_field(field: &[u8; MIPC_NAME_MAX_LEN]) -> Result<Self, NameError> {
        let mut bytes = [0u8; MIPC_NAME_MAX_LEN];
        for ((i, w), out) in words(field).enumerate().zip(bytes.chunks_exact_mut(WORD)) {
            if let Some(k) = first_zero_byte(w) {
                let len = i * WORD + k;
                if len == 0 {
                    return Err(NameError::Empty);
                }
                // Keep the k bytes before the NUL (k < 8, so the shift is in range).
                out.copy_from_slice(&(w & ((1u64 << (8 * k)) - 1)).to_le_bytes());
                return Ok(MipcName {
                    bytes,
                    len: len as u8,
                });
            }
            out.copy_from_slice(&w.to_le_bytes());
        }
        Err(NameError::TooLong)
    }

    /// A name whose bytes were measured already (a C string read up to its NUL with
    /// `strnlen`): `field` holds `len` bytes without a NUL, then zeros. Only the length is
    /// checked, so the bytes are not scanned a second time.
    ///
    /// # Errors
    /// [`NameError::Empty`] for 0 bytes, [`NameError::TooLong`] past [`NAME_MAX_BYTES`].
    pub(crate) fn from_measured(
        field: [u8; MIPC_NAME_MAX_LEN],
        len: usize,
    ) -> Result<Self, NameError> {
        match len {
            0 => Err(NameError::Empty),
            1..=NAME_MAX_BYTES => {
                debug_assert!(!field[..len].contains(&0) && field[len..].iter().all(|&b| b == 0));
                Ok(MipcName {
                    bytes: field,
                    len: len as u8,
                })
            }
            _ => Err(NameError::TooLong),
        }
    }

    /// A place to read a name into with [`MipcName::fill_measured`]: no name (0 bytes)
    /// until then, and never handed out as one.
    pub(crate) const BLANK: MipcName = MipcName {
        bytes: [0; MIPC_NAME_MAX_LEN],
        len: 0,
    };

    /// [`MipcName::from_measured`] in place, into this [`BLANK`] name: `fill` writes the
    /// `len` measured bytes (no NUL among them) at the start of its all-zero field. For an
    /// export that takes two names: returned ones are moved through a `Result` on the way.
    ///
    /// [`BLANK`]: MipcName::BLANK
    ///
    /// # Errors
    /// As [`MipcName::from_measured`]; `fill` is not called then and the name stays blank.
    #[inline(always)]
    pub(crate) fn fill_measured(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8; MIPC_NAME_MAX_LEN]),
    ) -> Result<(), NameError> {
        debug_assert!(self.bytes.iter().all(|&b| b == 0));
        match len {
            0 => Err(NameError::Empty),
            1..=NAME_MAX_BYTES => {
                fill(&mut self.bytes);
                debug_assert!(!self.bytes[..len].contains(&0));
                self.len = len as u8;
                Ok(())
            }
            _ => Err(NameError::TooLong),
        }
    }

    /// The name's bytes, without a terminator.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The name as a NUL-padded wire field.
    pub fn field(&self) -> &[u8; MIPC_NAME_MAX_LEN] {
        &self.bytes
    }

    /// Whether this is the relay's name.
    pub fn is_relay(&self) -> bool {
        *self == MipcName::RELAY
    }
}

const WORD: usize = 8;

/// The words of a field, little-endian whatever the target: byte k is bits 8k..8k+8.
fn words(field: &[u8; MIPC_NAME_MAX_LEN]) -> impl Iterator<Item = u64> + '_ {
    field
        .chunks_exact(WORD)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of one word")))
}

/// The index of the first zero byte of `w` read little-endian (byte 0 in bits 0..8).
fn first_zero_byte(w: u64) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The lowest bit set is exact: a false positive only appears above a true zero byte.
    let zeros = w.wrapping_sub(LOW) & !w & HIGH;
    (zeros != 0).then(|| zeros.trailing_zeros() as usize / 8)
}

impl PartialEq for MipcName {
    fn eq(&self, other: &Self) -> bool {
        // Every constructor zeroes the bytes after the name, so the whole fields compare
        // (a fixed 32-byte compare, no call to memcmp).
        self.len == other.len && self.bytes == other.bytes
    }
}

impl Eq for MipcName {}

impl Hash for MipcName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Display for MipcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            String::from_utf8_lossy(self.as_bytes()).escape_debug()
        )
    }
}

impl fmt::Debug for MipcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_at_the_edges() {
        assert!(MipcName::new(&[b'a'; 31]).is_ok());
        assert_eq!(MipcName::new(&[b'a'; 32]), Err(NameError::TooLong));
        assert_eq!(MipcName::new(b""), Err(NameError::Empty));
        assert_eq!(MipcName::new(b"a\0b"), Err(NameError::InteriorNul));
    }

    #[test]
    fn field_needs_a_terminator() {
        let mut field = [b'x'; MIPC_NAME_MAX_LEN];
        assert_eq!(MipcName::from_field(&field), Err(NameError::TooLong));
        field[31] = 0;
        assert_eq!(MipcName::from_field(&field).unwrap().as_bytes().len(), 31);
        field[0] = 0;
        assert_eq!(MipcName::from_field(&field), Err(NameError::Empty));
    }

    #[test]
    fn bytes_after_the_terminator_do_not_matter() {
        let mut a = *MipcName::new(b"alarm_apm").unwrap().field();
        a[20] = 0x55;
        assert_eq!(
            MipcName::from_field(&a).unwrap(),
            MipcName::new(b"alarm_apm").unwrap()
        );
        assert!(MipcName::RELAY.is_relay());
    }

    #[test]
    fn field_read_by_words_matches_bytes() {
        // Every length, with junk after the NUL and high bytes (0x80, 0xFF) in the name.
        for len in 0..=MIPC_NAME_MAX_LEN {
            for fill in [b'a', 0x80, 0xFF, 0x01] {
                let mut field = [0x55u8; MIPC_NAME_MAX_LEN];
                field[..len].fill(fill);
                if len < MIPC_NAME_MAX_LEN {
                    field[len] = 0;
                }
                let expect = if len == MIPC_NAME_MAX_LEN {
                    Err(NameError::TooLong)
                } else {
                    MipcName::new(&field[..len])
                };
                let got = MipcName::from_field(&field);
                assert_eq!(got, expect, "len {len} fill {fill:#x}");
                if let Ok(n) = got {
                    assert_eq!(n.as_bytes(), &field[..len]);
                    assert!(n.field()[len..].iter().all(|&b| b == 0));
                }
            }
        }
        assert_ne!(
            MipcName::new(b"ab").unwrap(),
            MipcName::new(b"abc").unwrap()
        );
    }
}
