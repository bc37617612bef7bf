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
#[derive(Clone, Copy)]
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

    /// Reads a name from a fixed wire field: the bytes up to the first NUL, which must lie
    /// within the field.
    ///
    /// # Errors
    /// [`NameError::TooLong`] when the field has no NUL, [`NameError::Empty`] when it starts
    /// with one.
    pub fn from_field(field: &[u8; MIPC_NAME_MAX_LEN]) -> Result<Self, NameError> {
        match field.iter().position(|&b| b == 0) {
            Some(0) => Err(NameError::Empty),
            Some(end) => {
                // Bytes before the first NUL hold no NUL: keep them, zero the tail.
                let mut bytes = *field;
                bytes[end..].fill(0);
                Ok(MipcName {
                    bytes,
                    len: end as u8,
                })
            }
            None => Err(NameError::TooLong),
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

impl PartialEq for MipcName {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
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
}
