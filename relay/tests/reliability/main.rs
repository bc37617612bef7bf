//! The reliability guarantees of docs/RELIABILITY.md, one test (or two) per guarantee, each
//! multi-process through a real relay: C programs of `c-tests/` (caller, probe_server,
//! middleware_server, stress_client, errors) on a bus of their own, and raw SysV messages
//! written from Rust where a test plays a hostile sender.
//!
//! One test binary (`--test reliability`), one module per guarantee (two for 7), named after
//! it; the helpers they share are in `support.rs` and `raw.rs`, the bus in `../common/`.
//!
//! The tests run one at a time (a lock, `support::serial`): several assert time bounds that
//! the issue states (a timeout within T + 20 ms, no CPU while waiting, death seen within 2 s,
//! an unrelated pair keeping its rate), and the machine has two cores.
//!
//! Run: `make all c-tests-asan && cargo test -p mipc-relay --test reliability`
//! (`make soak` runs the long soak).

#[path = "../common/mod.rs"]
mod common;
mod raw;
mod support;

/// 2. Timeouts: the 30 s one, first (see its module).
mod a_long_timeout;
/// 6. Back-pressure.
mod back_pressure;
/// 5. Relay restart: a clean stop.
mod clean_stop;
/// 4. Dead peers.
mod dead_peers;
/// 7. Hostile bytes on the root queue: forged messages by hand.
mod forged_messages;
/// 8. Hostile arguments.
mod hostile_arguments;
/// 7. Hostile bytes on the root queue: generated ones.
mod hostile_bytes;
/// 1. Late answers are never returned.
mod late_answers;
/// 10. Nested calls.
mod nested_calls;
/// 0. Every sync call ends in exactly one outcome.
mod one_outcome;
/// 9. Permissions.
mod permissions;
/// 5. Relay restart.
mod relay_restart;
/// 11. Soak.
mod soak;
/// 2. Timeouts within T + 20 ms, without CPU.
mod timeouts;
/// 3. Unknown destination fails fast.
mod unknown_destination;
