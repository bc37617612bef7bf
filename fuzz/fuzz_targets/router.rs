//! The relay's state machine: a sequence of messages from several fake peers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mipc_relay::fuzzing::router(data));
