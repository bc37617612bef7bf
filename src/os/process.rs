//! Process and thread ids.

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// The calling process's id.
pub fn getpid() -> i32 {
    nix::unistd::getpid().as_raw()
}

/// Whether process `pid` exists (a process of another user counts: it is alive).
pub fn pid_alive(pid: i32) -> bool {
    matches!(kill(Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM))
}

/// A thread, as the C API names one (`pthread_t`), kept as an integer inside the crate.
///
/// `pthread_t` is an integer on glibc but a pointer on musl; only
/// [`ThreadId::from_pthread`] and [`ThreadId::to_pthread`] (used at the C boundary and by the
/// wire codec of `MIPC_THREAD_INFO_T`) see it. Two ids are the same thread when they are
/// equal (on Linux `pthread_equal` compares the values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ThreadId(pub u64);

impl ThreadId {
    /// The id of a C `pthread_t`.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    pub fn from_pthread(t: libc::pthread_t) -> ThreadId {
        ThreadId(t as usize as u64)
    }

    /// Back to a C `pthread_t` (the value a caller gave, or `pthread_self` made).
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    pub fn to_pthread(self) -> libc::pthread_t {
        self.0 as usize as libc::pthread_t
    }
}

/// The calling thread.
pub fn current_thread() -> ThreadId {
    // SAFETY: pthread_self has no preconditions and always succeeds.
    ThreadId::from_pthread(unsafe { libc::pthread_self() })
}

/// Runs `f` when the process exits normally (`exit`, or return from `main`). `f` must not
/// unwind.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: f is an extern "C" fn with no arguments; the caller promises it does not
    // unwind (atexit handlers run from C).
    unsafe { libc::atexit(f) };
}

/// Nanoseconds of the monotonic clock (counts across processes of one boot, unlike
/// `Instant`, whose value cannot be stored).
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => (ts.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec() as u64),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(getpid() as u32, std::process::id());
        assert!(pid_alive(getpid()));
        assert!(pid_alive(1));
        let me = current_thread();
        assert_eq!(ThreadId::from_pthread(me.to_pthread()), me);
        let other = std::thread::spawn(current_thread).join().unwrap();
        assert_ne!(me, other);
        assert!(monotonic_ns() > 0);
    }
}
