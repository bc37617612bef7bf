//! Death notices without polling: one thread blocks in `poll` on a pidfd per watched
//! process (Linux 5.3+) and tells the router when one exits. On a kernel without pidfd it
//! falls back to checking the watched processes once a second.

use mipc::os::fd::{self, Doorbell};
use mipc::os::pid_alive;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

/// How often the fallback checks processes when pidfd is missing.
const FALLBACK_PERIOD: Duration = Duration::from_secs(1);

/// The handle the router's port uses to ask for a process to be watched.
#[derive(Debug)]
pub struct Watcher {
    tx: Sender<i32>,
    wake: Doorbell,
}

impl Watcher {
    /// Starts the watcher thread; it calls `died` with the pid of each watched process that
    /// ends (the daemon tells its router).
    ///
    /// # Errors
    /// When the eventfd or the thread cannot be made.
    pub fn spawn(died: impl Fn(i32) + Send + 'static) -> io::Result<Arc<Watcher>> {
        let wake = Doorbell::new()?;
        let (tx, rx) = channel();
        let watcher = Arc::new(Watcher { tx, wake });
        let w = watcher.clone();
        std::thread::Builder::new()
            .name("mipc-watch".into())
            .spawn(move || watch_loop(&w, rx, &died))?;
        Ok(watcher)
    }

    /// Asks for `pid` to be watched.
    pub fn watch(&self, pid: i32) {
        if self.tx.send(pid).is_ok() {
            self.wake.ring();
        }
    }
}

fn watch_loop(watcher: &Arc<Watcher>, rx: Receiver<i32>, report: &impl Fn(i32)) {
    let mut fds: HashMap<i32, OwnedFd> = HashMap::new();
    let mut fallback: Vec<i32> = Vec::new();
    loop {
        let pids: Vec<i32> = fds.keys().copied().collect();
        let mut polled = vec![watcher.wake.as_fd()];
        polled.extend(pids.iter().map(|p| fds[p].as_fd()));
        let timeout = (!fallback.is_empty()).then_some(FALLBACK_PERIOD);
        let ready = match fd::poll_readable(&polled, timeout) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                logln!(Error, "death watcher stopped: {e}");
                return;
            }
        };
        if ready[0] {
            watcher.wake.drain();
            for pid in rx.try_iter() {
                match fd::pidfd_open(pid) {
                    Ok(fd) => {
                        fds.insert(pid, fd);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => report(pid),
                    Err(_) => fallback.push(pid),
                }
            }
        }
        for (i, pid) in pids.iter().enumerate() {
            if ready[i + 1] {
                fds.remove(pid);
                report(*pid);
            }
        }
        let (dead, alive): (Vec<i32>, Vec<i32>) = fallback.iter().partition(|&&p| !pid_alive(p));
        fallback = alive;
        for pid in dead {
            report(pid);
        }
    }
}
