//! Death notices without polling: one thread blocks in `poll` on a pidfd per watched
//! process (Linux 5.3+) and tells the router when one exits. On a kernel without pidfd it
//! falls back to checking the watched processes once a second.

use crate::daemon::Shared;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// How often the fallback checks processes when pidfd is missing.
const FALLBACK_PERIOD: Duration = Duration::from_secs(1);

/// The handle the router's port uses to ask for a process to be watched.
#[derive(Debug)]
pub struct Watcher {
    tx: Sender<i32>,
    wake: OwnedFd,
}

impl Watcher {
    /// Starts the watcher thread; it reports deaths to the relay's router and saves the
    /// table when that changes it.
    ///
    /// # Errors
    /// When the eventfd or the thread cannot be made.
    pub fn spawn(shared: Arc<Shared>) -> io::Result<Arc<Watcher>> {
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor that nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        let (tx, rx) = channel();
        let watcher = Arc::new(Watcher { tx, wake });
        let w = watcher.clone();
        std::thread::Builder::new()
            .name("mipc-watch".into())
            .spawn(move || watch_loop(&w, rx, &shared))?;
        Ok(watcher)
    }

    /// Asks for `pid` to be watched.
    pub fn watch(&self, pid: i32) {
        if self.tx.send(pid).is_ok() {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd.
            unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

fn report(shared: &Arc<Shared>, pid: i32) {
    let Ok(mut r) = shared.router.lock() else {
        return;
    };
    let mut port = shared.port();
    let names = r.peer_died(&mut port, pid);
    crate::daemon::persist(&mut r, shared);
    if !names.is_empty() {
        let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        logln!(
            Info,
            "process {pid} died: dropped {} and removed its queues",
            list.join(", ")
        );
    }
}

fn watch_loop(watcher: &Arc<Watcher>, rx: Receiver<i32>, shared: &Arc<Shared>) {
    let mut fds: HashMap<i32, OwnedFd> = HashMap::new();
    let mut fallback: Vec<i32> = Vec::new();
    loop {
        let mut polls = vec![libc::pollfd {
            fd: watcher.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let pids: Vec<i32> = fds.keys().copied().collect();
        polls.extend(pids.iter().map(|p| libc::pollfd {
            fd: fds[p].as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        let timeout = if fallback.is_empty() {
            -1
        } else {
            FALLBACK_PERIOD.as_millis() as i32
        };
        // SAFETY: polls is a live array of polls.len() pollfd structs.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            logln!(
                Error,
                "death watcher stopped: {}",
                io::Error::last_os_error()
            );
            return;
        }
        if polls[0].revents != 0 {
            let mut count = 0u64;
            // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
            unsafe { libc::read(watcher.wake.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
            for pid in rx.try_iter() {
                match pidfd_open(pid) {
                    Ok(fd) => {
                        fds.insert(pid, fd);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => report(shared, pid),
                    Err(_) => fallback.push(pid),
                }
            }
        }
        for (i, pid) in pids.iter().enumerate() {
            if polls[i + 1].revents != 0 {
                fds.remove(pid);
                report(shared, *pid);
            }
        }
        let (dead, alive): (Vec<i32>, Vec<i32>) = fallback.iter().partition(|&&p| !pid_alive(p));
        fallback = alive;
        for pid in dead {
            report(shared, pid);
        }
    }
}
