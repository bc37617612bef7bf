//! mipc-rs: a drop-in Rust rebuild of MIPC, the System V message-queue IPC library of the
//! Marvell OMCI SDK (see `MIPC-SPEC.md`).
//!
//! The crate is a safe Rust core with a thin C ABI over it:
//! - [`wire`]: the SPEC §2 structs, constants and codec (no I/O), and in [`wire::control`]
//!   every control message of the reserved range;
//! - [`name`]: checked entry names;
//! - [`sysv`]: the only module that touches System V queues;
//! - [`os`]: every other OS call (pids, thread ids, eventfd, timerfd, pidfd, poll, signals,
//!   the mapped file); with `sysv` and `ffi` the only places with `unsafe`;
//! - [`table`]: the per-process table of entries;
//! - [`timer`]: timeouts without polling; [`timeout`]: the two readings of a legacy timeout;
//! - [`link`]: the link to the relay (root queue, sends, buffer, call tags);
//! - [`wait`]: the one receive-until-deadline loop, and the wait for a call's answer;
//! - [`client`]: registration, sends and sync calls;
//! - [`direct`]: the opt-in direct path (two queue hops instead of four);
//! - [`server`]: receiving, answering, the handler table;
//! - [`events`]: events and broadcast on the wire (names, patterns, payloads; no I/O);
//! - [`origin`]: the sender's process of received messages, as the relay reports it;
//! - [`pubsub`]: subscribing, publishing and broadcasting for the calling thread's entry;
//! - [`endpoint`]: the native Rust API ([`Endpoint`], [`Timeout`], [`Error`]);
//! - [`ffi`]: the C exports of SPEC §3 (`libmipc.so`, `include/mipc.h`).
//!
//! The functions a sync call and a served request run through (the four exports and what
//! they call that is not inlined) are placed with `#[link_section]` in three sections that
//! the linker keeps together: `.text.mipc_hot.call` (the caller's), `.text.mipc_hot.serve`
//! (the server's) and `.text.mipc_hot.both` (the entry lookup and the sends to the relay; the receive loop is inlined into its callers).
//! A call then touches a few pages of code instead of a dozen scattered ones (after each
//! context switch the TLB is cold). Only a layout hint: any linker merges `.text.*` into
//! `.text`.

/// cbindgen:ignore
mod answer_back;
pub mod bus;
mod cancellable;
pub mod client;
pub mod config;
pub mod direct;
pub mod endpoint;
pub mod error;
pub mod fasthash;
pub mod ffi;
pub mod link;
mod local;
pub mod name;
pub mod origin;
pub mod os;
pub mod pubsub;
pub mod server;
mod serving;
pub mod sysv;
pub mod table;
pub mod timeout;
pub mod timer;
pub mod wait;
pub mod wire;

pub use endpoint::{
    Dispatched, Endpoint, Error, Event, Handlers, Message, Request, Stopper, Timeout,
};
pub use error::{MipcError, RelayErrorCode};
pub use events::{EventName, EventPattern};
pub use name::MipcName;
pub use wire::events;

#[cfg(test)]
mod header_tests {
    /// The committed header must be what cbindgen makes of the current sources.
    #[test]
    fn committed_header_is_current() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/mipc.h"));
        let committed = include_str!("../include/mipc.h");
        assert!(
            generated == committed,
            "include/mipc.h is out of date: run `make header` and commit it"
        );
    }

    /// Every name `include/mipc.h` defines: `#define`s, types and functions.
    fn defined_names(header: &str) -> Vec<String> {
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut names = Vec::new();
        for line in header.lines() {
            if let Some(rest) = line.strip_prefix("#define ") {
                names.push(ident(rest));
            } else if let Some(rest) = line.strip_prefix("} ") {
                names.push(ident(rest));
            } else if let Some(rest) = line.strip_prefix("typedef ") {
                if let Some(ptr) = rest.split_once("(*") {
                    names.push(ident(ptr.1));
                } else if !rest.ends_with('{') {
                    let last = rest.trim_end_matches(';').rsplit(' ').next().unwrap_or("");
                    names.push(ident(last));
                }
            } else if line.ends_with(");") && !line.starts_with([' ', '/', '*']) {
                let head = line.split('(').next().unwrap_or("");
                let name = head.rsplit([' ', '*']).next().unwrap_or("");
                names.push(ident(name));
            }
        }
        names.retain(|n| !n.is_empty()); // `}  // extern "C"`
        names.sort();
        names
    }

    /// The header holds the public API only: the legacy API, its constants and the
    /// documented additions (docs/PROTOCOL.md), nothing internal.
    /// The exported C functions (src/ffi/exports.txt).
    fn exported_functions() -> impl Iterator<Item = &'static str> {
        include_str!("ffi/exports.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    #[test]
    fn header_defines_only_the_public_api() {
        let mut expected = vec![
            // Include guard.
            "MIPC_H",
            // Constants (SPEC §2) and the documented additions.
            "MIPC_DEFAULT_MAX_MSG_SIZE",
            "MIPC_MAIN_NAME",
            "MIPC_NAME_MAX_LEN",
            "MIPC_MSG_MAX_LEN",
            "MIPC_MSG_ROOT_KEY",
            "MIPC_OK",
            "MIPC_ERROR",
            "MIPC_TRUE",
            "MIPC_FALSE",
            "MIPC_MSG_SYNC_WAIT_FOREVER",
            "MIPC_USER_INFO_NUM",
            "MIPC_MSG_TYPE_NOTICE",
            "MIPC_MSG_TYPE_PING",
            "MIPC_MSG_TYPE_HELLO",
            "MIPC_MSG_TYPE_ERROR",
            "MIPC_MSG_TYPE_WAKE",
            "MIPC_MSG_TYPE_LOOKUP",
            "MIPC_MSG_TYPE_RESERVED_MIN",
            "MIPC_MSG_TYPE_RESERVED_MAX",
            "MIPC_API_ID_MAX",
            // Events, broadcast and the handler-table API (docs/PROTOCOL.md §8).
            "MIPC_MSG_TYPE_EVENT",
            "MIPC_EVENT_DATA_MAX",
            "MIPC_BROADCAST_DATA_MAX",
            "MIPC_EXIT_UNREGISTERED",
            "MIPC_EXIT_SIGNAL",
            "MIPC_DISPATCH_IDLE",
            "MIPC_DISPATCH_HANDLED",
            "MIPC_DISPATCH_STOPPED",
            // Types (SPEC §2, §3).
            "sysV_msg_t",
            "sysV_msg_payload_t",
            "mipc_msg_handler_t",
            "MIPC_MSG_HDR_T",
            "sysV_msg_payload",
            "sysV_msg",
            "MIPC_THREAD_INFO_T",
            "mipc_request_t",
            "mipc_handler_t",
            "mipc_exit_handler_t",
        ];
        // Functions: the one list of exports.
        expected.extend(exported_functions());
        expected.sort();
        assert_eq!(
            defined_names(include_str!("../include/mipc.h")),
            expected,
            "include/mipc.h defines something outside the public API (or lost part of it)"
        );
    }
}
