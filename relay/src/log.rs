//! The relay's log: one line per event on stderr, `mipc_main: LEVEL: text`, or to syslog
//! with `--syslog` (`syslog.rs`). The level comes
//! from `MIPC_LOG` (`error`, `warn`, `info`, `debug`; default `info`). Lines about hostile or
//! broken traffic are rate-limited so a flood cannot fill a disk or slow the relay.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Importance of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// The relay cannot go on, or lost something it should not have.
    Error = 0,
    /// Something is wrong outside the relay (bad input, a full peer); the relay goes on.
    Warn = 1,
    /// Life-cycle events: start, stop, registrations, deaths.
    Info = 2,
    /// Every routing decision.
    Debug = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the level from `MIPC_LOG`, or from `text` when given.
pub fn init(text: Option<&str>) {
    let from_env = std::env::var("MIPC_LOG").ok();
    let level = match text.or(from_env.as_deref()).map(str::trim) {
        Some("error") => Level::Error,
        Some("warn") | Some("warning") => Level::Warn,
        Some("debug") | Some("trace") => Level::Debug,
        _ => Level::Info,
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether lines of `level` are written.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line.
pub fn line(level: Level, text: std::fmt::Arguments<'_>) {
    if enabled(level) {
        let tag = match level {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        };
        if crate::syslog::active() {
            let severity = match level {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug => 7,
            };
            crate::syslog::send(severity, &format!("{tag}: {text}"));
            return;
        }
        // One write(2) per line: formatting straight into unbuffered stderr would write
        // piece by piece (a name's escaping writes per character).
        let mut line = format!("mipc_main: {tag}: {text}");
        line.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
}

/// A counter that lets the first ten lines of a kind through, then every power of two.
#[derive(Debug, Default)]
pub struct Limiter(AtomicU64);

impl Limiter {
    /// A new limiter.
    pub const fn new() -> Self {
        Limiter(AtomicU64::new(0))
    }

    /// Counts one event; returns its number when its line should be written.
    pub fn hit(&self) -> Option<u64> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        (n <= 10 || n.is_power_of_two()).then_some(n)
    }
}

/// Logs at a level with `format!` arguments.
#[macro_export]
macro_rules! logln {
    ($level:ident, $($arg:tt)*) => {
        $crate::log::line($crate::log::Level::$level, format_args!($($arg)*))
    };
}
