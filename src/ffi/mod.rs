//! The C ABI (SPEC §3): every export checks its arguments, calls the safe core, and turns
//! the result into the legacy return convention. Nothing else lives here.
//!
//! Each export runs inside `guard`, which catches panics (none may cross into C), records
//! the reason of a failure for `mipc_last_error()` and sets `errno`.
#![allow(non_camel_case_types, non_snake_case)]

mod args;
mod calls;
mod events;
mod handlers;
mod queues;
mod wait;

pub use calls::*;
pub use events::*;
pub use handlers::*;
pub use queues::*;
pub use wait::*;

use crate::error::MipcError;
use crate::wire::MIPC_ERROR;
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::from(c"no error"));
}

fn record(func: &str, reason: &str, errno: i32) {
    let text = format!("{func}: {reason}").replace('\0', " ");
    LAST_ERROR.with(|l| {
        if let Ok(c) = CString::new(text) {
            *l.borrow_mut() = c;
        }
    });
    // SAFETY: __errno_location returns this thread's errno slot, always valid to write.
    unsafe { *libc::__errno_location() = errno };
}

/// Runs an export's body: returns its value, or `MIPC_ERROR` with the reason recorded.
pub(crate) fn guard(func: &'static str, body: impl FnOnce() -> Result<c_int, MipcError>) -> c_int {
    finish(func, catch_unwind(AssertUnwindSafe(body)))
}

/// What an export returns for what its body gave (or the panic it was caught in).
#[inline(always)]
fn finish(func: &'static str, got: std::thread::Result<Result<c_int, MipcError>>) -> c_int {
    match got {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            record(func, &e.to_string(), e.errno());
            MIPC_ERROR
        }
        Err(_) => {
            record(
                func,
                "internal error (a panic was caught; nothing was sent)",
                libc::EFAULT,
            );
            MIPC_ERROR
        }
    }
}

/// What a step of a blocking export gave: its return value, or a wait to make.
pub(crate) enum Step<W> {
    /// Return this.
    Done(c_int),
    /// Make this wait (from the export's own frame: a cancellation point there), then go on.
    Wait(W),
}

/// [`guard`] for one step of an export that makes its blocking wait itself, between steps
/// (`mipc_mq_receive`, `mipc_send_sync_msg`): the step's panics and errors end the export as
/// `guard` ends it.
///
/// A cancellation in the wait unwinds through the export's frame, whose unwind entry then
/// names the library's personality routine (this step's `catch_unwind` is inline there): the
/// C library's unwinder (libgcc_s) calls it, so `libmipc.so` must use that same unwinder.
/// It does in a native build; the ARM release builds, linked by zig, link the library
/// against the target's libgcc_s for this (`scripts/cross/zig-cc`: with zig's LLVM libunwind
/// inside, the routine crashed on libgcc's context).
#[inline(always)]
pub(crate) fn guard_step<W>(
    func: &'static str,
    body: impl FnOnce() -> Result<Step<W>, MipcError>,
) -> Step<W> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(step)) => step,
        Ok(Err(e)) => Step::Done(finish(func, Ok(Err(e)))),
        Err(p) => Step::Done(finish(func, Err(p))),
    }
}

/// The reason for the calling thread's last failed `mipc_*` call, e.g.
/// `"mipc_send_sync_msg: no such destination"`. Calls that succeed do not change it.
///
/// # Returns
/// A NUL-terminated string owned by the library, valid until this thread's next failing
/// call; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn mipc_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|l| l.borrow().as_ptr()))
        .unwrap_or(c"mipc_last_error: unavailable".as_ptr())
}

/// The library's version: the legacy API level it implements and the mipc-rs version.
///
/// # Returns
/// A static NUL-terminated string, e.g. `"MIPC 1.0 (mipc-rs 0.1.0)"`.
#[unsafe(no_mangle)]
pub extern "C" fn mipc_version() -> *const c_char {
    VERSION.as_ptr()
}

const VERSION: &CStr = {
    const TEXT: &str = concat!("MIPC 1.0 (mipc-rs ", env!("CARGO_PKG_VERSION"), ")\0");
    match CStr::from_bytes_with_nul(TEXT.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("version string has an interior NUL"),
    }
};

#[cfg(test)]
mod tests;
