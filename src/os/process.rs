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

/// Whether process `pid` has exited: gone, or a zombie its parent has not reaped yet (which
/// [`pid_alive`] still counts, as `kill(pid, 0)` does).
pub fn pid_exited(pid: i32) -> bool {
    if !pid_alive(pid) {
        return true;
    }
    let Ok(stat) = no_cancel(|| std::fs::read_to_string(format!("/proc/{pid}/stat"))) else {
        return true;
    };
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .is_some_and(|c| matches!(c, 'Z' | 'X' | 'x'))
}

/// Whether process `pid` is stopped (SIGSTOP, a job-control stop, or a debugger): state `T`
/// or `t` in `/proc/<pid>/stat`. `false` when that cannot be read.
pub fn is_stopped(pid: i32) -> bool {
    let Ok(stat) = no_cancel(|| std::fs::read_to_string(format!("/proc/{pid}/stat"))) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold anything.
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .is_some_and(|c| c == 'T' || c == 't')
}

/// Gives memory the allocator keeps but does not use back to the system (glibc's
/// `malloc_trim`; a no-op with other C libraries). For a daemon after a burst: the relay
/// calls it when its backlogs have emptied, so their peak does not stay in its RSS.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many CPUs the calling thread may run on now (its affinity mask, which a `taskset` or
/// a cpuset can change while it runs); 0 when the mask cannot be read.
pub fn cpus_allowed() -> usize {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; sched_getaffinity writes at most
    // the size given into it, and CPU_COUNT only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 0;
        }
        usize::try_from(libc::CPU_COUNT(&set)).unwrap_or(0)
    }
}

/// Lowers the calling thread's timer slack to 1 us while it lives (short sleeps then last
/// what they ask for, not 50 us more), and puts the old slack back when dropped.
#[derive(Debug)]
pub struct FineTimer(Option<u64>);

impl FineTimer {
    /// Lowers the slack (a no-op where `prctl` refuses).
    pub fn new() -> FineTimer {
        let old = nix::sys::prctl::get_timerslack().ok().map(|v| v as u64);
        if old.is_some() && nix::sys::prctl::set_timerslack(1_000).is_err() {
            return FineTimer(None);
        }
        FineTimer(old)
    }
}

impl Default for FineTimer {
    fn default() -> Self {
        FineTimer::new()
    }
}

impl Drop for FineTimer {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            let _ = nix::sys::prctl::set_timerslack(old);
        }
    }
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

/// Runs `f` with the calling thread's cancellation held off. The library's own frames must
/// never see a cancellation acted on (a pending `pthread_cancel` acts at the next
/// cancellation point: `open`, `close`, `read`, `write`, `nanosleep`...), because its forced
/// unwind would meet the guard's `catch_unwind` and abort the process, or, in the ARM builds
/// (whose `libmipc.so` carries LLVM's unwinder), crash in the personality routine. So the few
/// such calls the library makes on a program's thread (rare paths: the routes page, the
/// stall log line, `/proc`, its polling sleeps) go through this; the hot ones are plain
/// system calls (`sysv.rs`, [`crate::os::fd::Doorbell::ring`]). A cancellation that comes
/// meanwhile is acted on at the program's next cancellation point.
pub fn no_cancel<R>(f: impl FnOnce() -> R) -> R {
    extern "C" {
        fn pthread_setcancelstate(state: libc::c_int, old: *mut libc::c_int) -> libc::c_int;
    }
    /// `PTHREAD_CANCEL_DISABLE` in glibc, musl and uClibc alike.
    const DISABLE: libc::c_int = 1;
    let mut old = 0;
    // SAFETY: sets this thread's cancelability and writes the old one to a local; neither
    // call is a cancellation point.
    let held = unsafe { pthread_setcancelstate(DISABLE, &mut old) } == 0;
    let r = f();
    if held {
        // SAFETY: as above; puts back the state it had.
        unsafe { pthread_setcancelstate(old, &mut old) };
    }
    r
}

/// Sleeps for `d` with the thread's cancellation held off ([`no_cancel`]): the library's
/// short polls.
pub fn nap(d: std::time::Duration) {
    no_cancel(|| std::thread::sleep(d));
}

/// The seconds of the kernel's coarse wall clock (`CLOCK_REALTIME_COARSE`): the clock that
/// stamps a queue's `msg_rtime` and `msg_stime`, which can lag the precise one by a tick
/// around a second's turn. 0 if it cannot be read.
// time_t is 32 bits on armv7, 64 here.
#[allow(clippy::useless_conversion)]
pub fn coarse_wall_secs() -> i64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE)
        .map_or(0, |t| i64::from(t.tv_sec()))
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
        assert!(!is_stopped(getpid()));
    }
}
