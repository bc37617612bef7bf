//! `mipc`: see and drive a live MIPC bus: list, ping, call, send, wait, monitor, capture,
//! stats. Argument definitions are in `cli.rs`, the verbs in `command.rs`; the bus is
//! reached through the library's safe API (`mipc::bus`, `mipc::client`), never the C exports.

#![forbid(unsafe_code)]

mod cli;
mod command;
mod events;
mod hexdump;
mod json;
mod pcapng;
mod tables;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mipc: {e}");
            return ExitCode::from(command::Exit::Usage as u8);
        }
    };
    match command::run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("mipc: {}", f.message);
            }
            ExitCode::from(f.exit as u8)
        }
    }
}

#[cfg(test)]
mod dissector_tests;
