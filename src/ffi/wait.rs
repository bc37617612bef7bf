//! `mipc_wait_for`: wait until a name is registered (boot-order races), a mipc-rs addition.

use super::{args, guard};
use crate::bus::ControlLink;
use crate::timeout::CallTimeout;
use crate::wire::MIPC_OK;
use std::os::raw::{c_char, c_int};

/// Waits until an entry named `name` is registered with the relay, at most `timeout` ms
/// (-1: forever). Returns at once when it is registered already. The calling thread needs no
/// entry of its own (it uses a private queue, removed before returning). The wait goes on
/// across a relay restart, clean or not (it asks the new relay).
///
/// # Returns
/// `MIPC_OK` once `name` is registered; `MIPC_ERROR` on a bad argument, when no relay runs,
/// or when the timeout passed (`errno` `ETIMEDOUT`, `mipc_last_error()` says which).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_wait_for(name: *const c_char, timeout: c_int) -> c_int {
    guard("mipc_wait_for", || {
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { args::name(name, "name") }?;
        let wait = CallTimeout::from_ms(timeout)?.duration();
        let mut link = ControlLink::open()?;
        link.wait_for_across_restarts(&[name], wait)
            .map(|()| MIPC_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MIPC_ERROR;

    #[test]
    fn bad_arguments_are_errors_not_crashes() {
        // SAFETY: NULL is allowed by the contract.
        assert_eq!(unsafe { mipc_wait_for(std::ptr::null(), 10) }, MIPC_ERROR);
        // SAFETY: a NUL-terminated literal.
        assert_eq!(unsafe { mipc_wait_for(c"x".as_ptr(), 0) }, MIPC_ERROR);
        // SAFETY: a NUL-terminated literal.
        assert_eq!(unsafe { mipc_wait_for(c"x".as_ptr(), -7) }, MIPC_ERROR);
        let long = [b'a' as c_char; 64];
        // SAFETY: unterminated within 32 bytes; read only within MIPC_NAME_MAX_LEN.
        assert_eq!(unsafe { mipc_wait_for(long.as_ptr(), 10) }, MIPC_ERROR);
    }
}
