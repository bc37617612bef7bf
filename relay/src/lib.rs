//! `mipc_main`, the MIPC relay, as a library: the binary is a thin `main` over [`daemon::run`],
//! and tests and fuzzers drive [`router::Router`] directly.
//!
//! - [`router`]: the name table and routing rules, with no I/O;
//! - [`backlog`]: messages waiting for room on a full queue ([`few_map`]: its look-ups);
//! - [`daemon`]: root queue, signals, the receive loop;
//! - [`poll`]: how long the receive loop polls its root queue before sleeping;
//! - [`port`]: the SysV port, what the relay's threads share, the drainer thread;
//! - [`watcher`]: death notices of registered processes (pidfd);
//! - [`state`]: the name table on disk, for a relay restarted after SIGKILL;
//! - [`pending`]: pending calls in mapped memory, for the same;
//! - [`log`]: the relay's log lines;
//!
//! With the `testing` feature (the fuzz crate and the relay's own tests turn it on):
//! - `mem`: an in-memory port for tests and fuzzers;
//! - `fuzzing`: the bodies of the fuzz targets, with the invariants they check.

#![forbid(unsafe_code)]

#[macro_use]
pub mod log;
pub mod backlog;
pub mod daemon;
pub mod few_map;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
#[cfg(any(test, feature = "testing"))]
pub mod mem;
pub mod monitor;
pub mod notify;
pub mod pending;
pub mod poll;
pub mod port;
pub mod router;
pub mod routes_page;
pub mod state;
pub mod syslog;
pub mod tools;
pub mod watcher;
