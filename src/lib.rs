//! mipc-rs: a drop-in Rust rebuild of MIPC, the System V message-queue IPC library of the
//! Marvell OMCI SDK (see `MIPC-SPEC.md`).
//!
//! The crate is a safe Rust core with a thin C ABI over it:
//! - [`wire`]: the SPEC §2 structs, constants and codec (no I/O);
//! - [`name`]: checked entry names;
//! - [`sysv`]: the only module that touches System V queues;
//! - [`table`]: the per-process table of entries;
//! - [`timer`]: timeouts without polling;
//! - [`client`]: registration, sends and sync calls;
//! - [`direct`]: the opt-in direct path (two queue hops instead of four);
//! - [`server`]: receiving, answering, the handler table;
//! - [`events`]: events and broadcast on the wire (names, patterns, payloads; no I/O);
//! - [`origin`]: the sender's process of received messages, as the relay reports it;
//! - [`pubsub`]: subscribing, publishing and broadcasting for the calling thread's entry;
//! - [`endpoint`]: the native Rust API ([`Endpoint`], [`Timeout`], [`Error`]);
//! - [`ffi`]: the C exports of SPEC §3 (`libmipc.so`, `include/mipc.h`).

pub mod client;
pub mod config;
pub mod direct;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod fasthash;
pub mod ffi;
pub mod name;
pub mod origin;
pub mod pubsub;
pub mod server;
pub mod sysv;
pub mod table;
pub mod timer;
pub mod wire;

pub use endpoint::{
    Dispatched, Endpoint, Error, Event, Handlers, Message, Request, Stopper, Timeout,
};
pub use error::{MipcError, RelayErrorCode};
pub use events::{EventName, EventPattern};
pub use name::MipcName;

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
}
