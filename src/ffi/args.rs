//! Argument checks shared by the exports: every pointer and length is checked at run time,
//! and C names are read only within `MIPC_NAME_MAX_LEN` bytes.

use crate::error::MipcError;
use crate::name::MipcName;
use crate::wire::{MIPC_MSG_MAX_LEN, MIPC_NAME_MAX_LEN};
use std::os::raw::{c_char, c_void};

/// Reads a C name. The legacy library overflowed on long names; here a name without a NUL
/// in its first 32 bytes is an error (the return value is still `MIPC_ERROR`).
///
/// # Safety
/// `p` is NULL or points to readable bytes up to its NUL or its 32nd byte, whichever is first.
pub(crate) unsafe fn name(p: *const c_char, arg: &'static str) -> Result<MipcName, MipcError> {
    if p.is_null() {
        return Err(MipcError::NullPointer(arg));
    }
    // SAFETY: strnlen reads up to the NUL or the 32nd byte, as the caller guarantees.
    let len = unsafe { libc::strnlen(p, MIPC_NAME_MAX_LEN) };
    let mut field = [0u8; MIPC_NAME_MAX_LEN];
    // SAFETY: len <= 32 bytes at p are readable (above) and field has 32.
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), field.as_mut_ptr(), len) };
    // strnlen found no NUL in the first len bytes, and the rest of field is zero.
    MipcName::from_measured(field, len).map_err(|e| MipcError::BadName(arg, e))
}

/// An input payload: `len` bytes at `p` (NULL is allowed with `len` 0). The size is checked
/// before the pointer, so a payload over 2048 bytes is refused without being read.
///
/// # Safety
/// When `len` is in range and `p` is not NULL, `p` points to `len` readable bytes.
pub(crate) unsafe fn input<'a>(
    p: *const c_void,
    len: u64,
    arg: &'static str,
) -> Result<&'a [u8], MipcError> {
    if len > MIPC_MSG_MAX_LEN as u64 {
        return Err(MipcError::PayloadTooLarge(len));
    }
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(MipcError::NullPointer(arg));
    }
    // SAFETY: p is not NULL and the caller guarantees len (at most 2048) readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast(), len as usize) })
}

/// An output buffer of `len` bytes at `p`. Only as much as an answer can hold (2048 bytes)
/// is ever written, so a slice longer than that is never made.
///
/// # Safety
/// When `p` is not NULL, it points to `len` writable bytes.
pub(crate) unsafe fn output<'a>(
    p: *mut c_void,
    len: u64,
    arg: &'static str,
) -> Result<&'a mut [u8], MipcError> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(MipcError::NullPointer(arg));
    }
    let len = len.min(MIPC_MSG_MAX_LEN as u64) as usize;
    // SAFETY: p is not NULL and the caller guarantees at least len writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast(), len) })
}

/// Writes a name with its NUL into a caller's buffer of `MIPC_NAME_MAX_LEN` bytes.
///
/// # Safety
/// `out` points to `MIPC_NAME_MAX_LEN` writable bytes.
pub(crate) unsafe fn write_name(out: *mut c_char, name: &MipcName) {
    let b = name.as_bytes();
    // SAFETY: b has at most 31 bytes, so b and its NUL fit the 32 bytes the caller provides.
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr().cast::<c_char>(), out, b.len());
        *out.add(b.len()) = 0;
    }
}
