//! Stop signals: the relay blocks SIGTERM and SIGINT in every thread and waits for them in
//! one.

use nix::sys::signal::{SigSet, Signal};

/// SIGTERM and SIGINT, blocked in the calling thread (and the threads it starts later).
#[derive(Debug, Clone, Copy)]
pub struct StopSignals(SigSet);

impl StopSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread, so that only
    /// [`StopSignals::wait`] takes them.
    ///
    /// # Errors
    /// When the signal mask cannot be set.
    pub fn block() -> std::io::Result<StopSignals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        set.thread_block().map_err(std::io::Error::from)?;
        Ok(StopSignals(set))
    }

    /// Waits for one of them; returns its number.
    pub fn wait(&self) -> i32 {
        match self.0.wait() {
            Ok(sig) => sig as i32,
            Err(e) => -(e as i32),
        }
    }
}

/// Write end of the self-pipe of [`on_sigterm`]'s handler (-1: none).
static SIGTERM_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn sigterm_to_pipe(_sig: libc::c_int) {
    let fd = SIGTERM_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; it reads one byte from a live local.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Runs `f` in a thread of its own each time the process gets SIGTERM, if SIGTERM still has
/// its default action (a program that handles it itself keeps its handler; returns `false`
/// then). The signal handler only writes a byte to a pipe (async-signal-safe); `f` runs in
/// the thread that reads it, where anything may be done. Installs once per process; later
/// calls return whether the first one installed.
pub fn on_sigterm(f: fn()) -> bool {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler};
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: a zeroed sigaction is a valid value for sigaction(2) to overwrite; a NULL
        // new action only reads the current one.
        let current = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            (libc::sigaction(libc::SIGTERM, std::ptr::null(), &mut old) == 0).then_some(old)
        };
        if current.is_none_or(|old| old.sa_sigaction != libc::SIG_DFL) {
            return false;
        }
        let mut fds = [-1; 2];
        // SAFETY: pipe2 writes two descriptors into the live array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return false;
        }
        let reader = fds[0];
        SIGTERM_PIPE.store(fds[1], std::sync::atomic::Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("mipc-sigterm".into())
            .spawn(move || loop {
                let mut b = 0u8;
                // SAFETY: reads one byte into a live local from our own pipe.
                match unsafe { libc::read(reader, (&mut b as *mut u8).cast(), 1) } {
                    1 => f(),
                    0 => return,
                    _ => {}
                }
            });
        if spawned.is_err() {
            return false;
        }
        let act = SigAction::new(
            SigHandler::Handler(sigterm_to_pipe),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only calls write(2) on a descriptor it loads atomically.
        unsafe { sigaction(Signal::SIGTERM, &act) }.is_ok()
    })
}
