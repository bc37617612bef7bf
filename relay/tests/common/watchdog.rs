//! The time limit of one test's bus: a thread that SIGKILLs every live process of the bus
//! when it runs out, and `reap`, which keeps that kill from reaching a recycled pid.

use super::bus::Bus;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Default limit for one test's bus; `MIPC_TEST_WATCHDOG_SECS` overrides it.
const WATCHDOG_SECS: u64 = 60;

/// The watchdog limit: `MIPC_TEST_WATCHDOG_SECS`, else `WATCHDOG_SECS`.
pub fn default_limit() -> Duration {
    let secs = std::env::var("MIPC_TEST_WATCHDOG_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WATCHDOG_SECS);
    Duration::from_secs(secs)
}

/// Live (not yet reaped) pids the watchdog may kill. A pid leaves this set before it is
/// reaped, so a kill never reaches a recycled pid.
pub(super) type LivePids = Arc<Mutex<Vec<i32>>>;

pub(super) struct Watchdog {
    cancel: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    pub(super) fired: Arc<AtomicBool>,
}

impl Watchdog {
    pub(super) fn start(label: String, limit: Duration, live: LivePids) -> Watchdog {
        let (cancel, wait) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let thread = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                flag.store(true, Ordering::SeqCst);
                eprintln!("watchdog: {label} still running after {limit:?}: killing its processes");
                let pids = live.lock().unwrap_or_else(|e| e.into_inner());
                for &pid in pids.iter() {
                    // SAFETY: `pid` is one of our children that has not been reaped (see
                    // `LivePids`), so it cannot name another process.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        });
        Watchdog {
            cancel: Some(cancel),
            thread: Some(thread),
            fired,
        }
    }

    pub(super) fn stop(&mut self) {
        self.cancel.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until `child` has exited without reaping it, then takes its pid out of `live`,
/// then reaps it. See `LivePids`.
pub(super) fn reap(child: &mut Child, live: &LivePids) -> ExitStatus {
    let pid = child.id() as i32;
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value for waitid to overwrite.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`; WNOWAIT leaves the child waitable.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            // Already reaped (ECHILD): child.wait() below returns the stored status.
            break;
        }
    }
    live.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
    child.wait().expect("wait for a child")
}

impl Bus {
    /// A note for failure messages when the watchdog killed the bus.
    pub fn watchdog_note(&self) -> String {
        if self.watchdog.fired.load(Ordering::SeqCst) {
            " (the watchdog killed it: the test ran too long)".to_string()
        } else {
            String::new()
        }
    }
}
