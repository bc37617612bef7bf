//! The wire decoder: any bytes, parse / encode / parse.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mipc_relay::fuzzing::wire(data));
