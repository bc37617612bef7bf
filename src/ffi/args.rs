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
    unsafe { copy_short(p.cast::<u8>(), field.as_mut_ptr(), len) };
    // strnlen found no NUL in the first len bytes, and the rest of field is zero.
    MipcName::from_measured(field, len).map_err(|e| MipcError::BadName(arg, e))
}

/// [`name`] into `out`, a [`MipcName::BLANK`] of the caller's: the name is made where it is
/// used, not moved out through a `Result` (an export that takes two names made each of them
/// twice over on the stack).
///
/// # Safety
/// As for [`name`].
#[inline(always)]
pub(crate) unsafe fn name_into(
    p: *const c_char,
    arg: &'static str,
    out: &mut MipcName,
) -> Result<(), MipcError> {
    if p.is_null() {
        return Err(MipcError::NullPointer(arg));
    }
    // SAFETY: strnlen reads up to the NUL or the 32nd byte, as the caller guarantees.
    let len = unsafe { libc::strnlen(p, MIPC_NAME_MAX_LEN) };
    // strnlen found no NUL in the first len bytes, and the rest of the field stays zero.
    out.fill_measured(len, |field| {
        // SAFETY: fill_measured calls this only for len <= 31: that many bytes at p are
        // readable (above), and field has 32.
        unsafe { copy_short(p.cast::<u8>(), field.as_mut_ptr(), len) }
    })
    .map_err(|e| MipcError::BadName(arg, e))
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
        copy_short(b.as_ptr(), out.cast::<u8>(), b.len());
        *out.add(b.len()) = 0;
    }
}

/// Copies `len` bytes (a name: at most 32) from `src` to `dst` without calling `memcpy`: two
/// overlapping loads and stores of the largest of 16, 8, 4 or 2 bytes that fits in `len`,
/// both within the `len` bytes. A call to the C library's `memcpy` for a dozen bytes costs
/// more than the copy, and every name an export takes or gives back is copied once.
///
/// # Safety
/// `src` points to `len` readable bytes and `dst` to `len` writable ones, not overlapping,
/// and `len <= 32`.
#[inline(always)]
pub(crate) unsafe fn copy_short(src: *const u8, dst: *mut u8, len: usize) {
    /// The first and the last `N` of the `len` bytes (`N <= len <= 2 * N`).
    ///
    /// # Safety
    /// As for `copy_short`, with `N <= len`.
    #[inline(always)]
    unsafe fn ends<const N: usize>(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: [0, N) and [len - N, len) lie within the len bytes of both (N <= len);
        // unaligned reads and writes of byte arrays need no alignment.
        unsafe {
            let head = std::ptr::read_unaligned(src.cast::<[u8; N]>());
            let tail = std::ptr::read_unaligned(src.add(len - N).cast::<[u8; N]>());
            std::ptr::write_unaligned(dst.cast::<[u8; N]>(), head);
            std::ptr::write_unaligned(dst.add(len - N).cast::<[u8; N]>(), tail);
        }
    }
    debug_assert!(len <= 32);
    // SAFETY: each arm's N is at most len, and len <= 2 * N since len <= 32; the caller
    // guarantees the len bytes.
    unsafe {
        match len {
            16.. => ends::<16>(src, dst, len),
            8.. => ends::<8>(src, dst, len),
            4.. => ends::<4>(src, dst, len),
            2.. => ends::<2>(src, dst, len),
            1 => *dst = *src,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copy_short;

    #[test]
    fn short_copies_every_length() {
        let src: Vec<u8> = (1..=32).collect();
        for len in 0..=32 {
            let mut dst = [0xEEu8; 34];
            // SAFETY: src has 32 readable bytes, dst 34 writable ones, len <= 32.
            unsafe { copy_short(src.as_ptr(), dst.as_mut_ptr().add(1), len) };
            assert_eq!(&dst[1..=len], &src[..len], "len {len}");
            assert_eq!(dst[0], 0xEE, "len {len}: wrote before");
            assert!(
                dst[len + 1..].iter().all(|&b| b == 0xEE),
                "len {len}: wrote after"
            );
        }
    }
}
