//! Descriptors that wake a poll: an eventfd (a thread's doorbell), a timerfd (a deadline), a
//! pidfd (a process's death), and `poll` over them.

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A non-blocking eventfd: other threads ring it, a polling thread drains it.
#[derive(Debug)]
pub struct Doorbell(EventFd);

impl Doorbell {
    /// A new doorbell.
    ///
    /// # Errors
    /// When the kernel cannot make an eventfd.
    pub fn new() -> io::Result<Doorbell> {
        EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map(Doorbell)
            .map_err(io::Error::from)
    }

    /// Rings it (a poll on it wakes). A plain system call: the C library's `write` is a
    /// cancellation point, and a program's thread rings it from inside the library
    /// (`process::no_cancel` says why that must not act on a cancellation).
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of a live local to this eventfd.
        unsafe {
            libc::syscall(
                libc::SYS_write,
                self.0.as_fd().as_raw_fd(),
                (&one as *const u64).cast::<libc::c_void>(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Takes the rings so far (after a poll saw it readable).
    pub fn drain(&self) {
        let _ = self.0.read();
    }
}

impl AsFd for Doorbell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A non-blocking one-shot timer on the monotonic clock.
#[derive(Debug)]
pub struct Timer(TimerFd);

impl Timer {
    /// A new, disarmed timer.
    ///
    /// # Errors
    /// When the kernel cannot make a timerfd.
    pub fn new() -> io::Result<Timer> {
        TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )
        .map(Timer)
        .map_err(io::Error::from)
    }

    /// Arms it to fire once after `after`, or disarms it with `None`.
    pub fn set(&self, after: Option<Duration>) {
        let _ = match after {
            // Zero would disarm it.
            Some(d) => self.0.set(
                Expiration::OneShot(TimeSpec::from_duration(d.max(Duration::from_nanos(1)))),
                TimerSetTimeFlags::empty(),
            ),
            None => self.0.unset(),
        };
    }

    /// Takes the expiry (after a poll saw it readable).
    pub fn drain(&self) {
        let _ = self.0.wait();
    }
}

impl AsFd for Timer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A descriptor that becomes readable when process `pid` ends (Linux 5.3 and later).
///
/// # Errors
/// `ESRCH` when there is no such process; `ENOSYS` and others when the kernel has no pidfd.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until one of `fds` is readable or `timeout` passes (`None`: no limit). Returns
/// which are readable (or hung up), in the order given; all false on timeout.
///
/// # Errors
/// What `poll` returns (`EINTR` when a signal came).
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let timeout = match timeout {
        None => PollTimeout::NONE,
        Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
    };
    nix::poll::poll(&mut polls, timeout).map_err(io::Error::from)?;
    Ok(polls
        .iter()
        .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doorbell_timer_and_pidfd() {
        let bell = Doorbell::new().unwrap();
        let timer = Timer::new().unwrap();
        assert_eq!(
            poll_readable(&[bell.as_fd()], Some(Duration::ZERO)).unwrap(),
            [false]
        );
        bell.ring();
        timer.set(Some(Duration::from_millis(1)));
        let r = poll_readable(&[bell.as_fd()], None).unwrap();
        assert_eq!(r, [true]);
        bell.drain();
        assert_eq!(poll_readable(&[timer.as_fd()], None).unwrap(), [true]);
        timer.drain();
        timer.set(None);
        let me = super::super::getpid();
        if let Ok(fd) = pidfd_open(me) {
            let r = poll_readable(&[fd.as_fd()], Some(Duration::ZERO)).unwrap();
            assert_eq!(r, [false]);
        }
    }
}
