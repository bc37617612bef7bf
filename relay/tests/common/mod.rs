//! Harness for the C scenarios: one relay per test on its own `MIPC_ROOT_KEY`, the C
//! programs of `c-tests/build/` on that bus, and a `Drop` guard that leaves nothing behind.
//!
//! Each bus also gets its own `MIPC_STATE_DIR` (a temporary directory removed at the end), so
//! no test leaves a relay state file in `/dev/shm`; a test may kill the relay with SIGKILL and
//! start a new one on the same key and state (`kill_relay`, `restart_relay`).
//!
//! Synchronisation is by what the programs print (`ready` lines, results), never by sleeping.
//! A watchdog thread SIGKILLs every process of the bus when a test runs too long, so a hung
//! test fails (its reads see end-of-file) instead of hanging the suite.
//!
//! One file per concept; `Bus` is defined in `bus.rs` and each file adds its own methods:
//!
//! | file | what |
//! |---|---|
//! | `bus.rs` | `Bus`, `Bus::builder`, shutdown, `finish` and `Drop` |
//! | `relay.rs` | starting, killing and restarting the relay; its log |
//! | `process.rs` | programs started on the bus, their lines and exit (`Finished`) |
//! | `queues.rs` | the SysV queues of the system and of a bus; fresh keys |
//! | `watchdog.rs` | the time limit of a test, and reaping children safely |
//! | `target.rs` | where the C programs are, and the cross/qemu exec wrapper |
#![allow(dead_code)] // each test binary uses its own part of the harness
#![allow(unused_imports)] // the same for the re-exports below

mod bus;
mod process;
mod queues;
mod relay;
mod target;
mod watchdog;

pub use bus::{Bus, BusBuilder, Shutdown};
pub use process::{proc_status_field, process_cpu, Finished, ProcId};
pub use queues::{all_queues, unique_key, QueueInfo};
pub use relay::{answered_back, gathered, held_and_batched, make_state_dir, relay_command};
pub use target::{
    c_build_dir, c_program, emulated, last_reader_unknown, release_lib_dir, repo_root,
    skipped_when_emulated, target_command,
};
pub use watchdog::default_limit;
