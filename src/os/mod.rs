//! The few operating-system calls of the library and the relay, in one place (the model is
//! sudo-rs `src/system/`). Each is a small safe function or type; `nix` makes the call where it
//! covers it, `libc` where it does not (`pidfd_open`, `atexit`, `pthread_self`). System V
//! queues are not here: they live in [`crate::sysv`].
//!
//! - [`process`]: process and thread ids ([`ThreadId`]), liveness, exit hooks;
//! - [`fd`]: eventfd, timerfd, pidfd and poll, for the library's waker and the relay's watcher;
//! - [`signals`]: blocking and waiting for SIGTERM/SIGINT (the relay), and SIGTERM through a
//!   self-pipe for `mipc_serve`;
//! - [`mapped`]: a file mapped shared into memory (the relay's pending calls).

pub mod fd;
pub mod mapped;
pub mod process;
pub mod signals;

pub use process::{current_thread, getpid, pid_alive, pid_exited, ThreadId};
