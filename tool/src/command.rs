//! The verbs. (Phase B: filled in once the relay's side exists.)

use crate::cli::{self, Command, Verb};

/// Exit codes (README table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The verb failed (a lost ping, a bad answer, an I/O error).
    Failed = 1,
    /// The command line makes no sense.
    Usage = 2,
    /// No relay serves the chosen bus.
    NoRelay = 3,
    /// The timeout passed.
    Timeout = 4,
    /// The destination failed: no such entry, died, busy, deadlock.
    Destination = 5,
}

/// Why a verb failed: its exit code and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What to print on stderr (empty: nothing).
    pub message: String,
}

/// Runs a parsed command.
///
/// # Errors
/// [`Failure`] with the exit code and message to print.
pub fn run(cmd: Command) -> Result<(), Failure> {
    match cmd.verb {
        Verb::Help(v) => {
            println!("{}", cli::help(v));
            Ok(())
        }
        Verb::Version => {
            println!("mipc {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => Err(Failure {
            exit: Exit::Failed,
            message: "not implemented yet".into(),
        }),
    }
}
