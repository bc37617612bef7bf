//! Serves and calls with the native Rust API: a server thread answers two apis and
//! publishes an event; the main thread subscribes, calls, and stops the server.
//!
//! Needs a running relay on the bus (`MIPC_ROOT_KEY` chooses it):
//!
//! ```sh
//! cargo build --release && target/release/mipc_main &
//! cargo run --example serve_and_call
//! ```

use mipc::{Endpoint, Error, Handlers, Message, Timeout};
use std::sync::mpsc;

const API_ADD: u32 = 1;
const API_UPPER: u32 = 2;
const API_QUIT: u32 = 3;

fn server(ready: mpsc::Sender<()>) -> Result<(), Error> {
    let ep = Endpoint::new("calc")?;
    let stopper = ep.stopper();
    ready.send(()).ok();
    ep.run(
        Handlers::new()
            .on(API_ADD, |req| {
                let sum: u32 = req
                    .payload()
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .sum();
                sum.to_ne_bytes().to_vec()
            })
            .on(API_UPPER, |req| req.payload().to_ascii_uppercase())
            .on(API_QUIT, |req| {
                println!("calc: {} asked me to stop", req.sender());
                stopper.stop().ok();
                b"bye".to_vec()
            }),
    )?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let (ready_tx, ready_rx) = mpsc::channel();
    // An endpoint belongs to its thread: the server makes its own.
    let calc = std::thread::spawn(move || server(ready_tx));
    ready_rx.recv().expect("the server thread started");

    let me = Endpoint::new("calc_client")?;
    let t = Timeout::millis(2000);

    let args: Vec<u8> = [2u32, 3, 37].iter().flat_map(|n| n.to_ne_bytes()).collect();
    let sum = me.call("calc", API_ADD, &args, t)?;
    println!(
        "2 + 3 + 37 = {}",
        u32::from_ne_bytes(sum[..4].try_into().unwrap())
    );

    let up = me.call("calc", API_UPPER, b"hello, bus", t)?;
    println!("upper: {}", String::from_utf8_lossy(&up));

    match me.call("nobody", API_ADD, &args, t) {
        Err(Error::NoSuchDestination) => println!("nobody: no such destination, at once"),
        other => println!("nobody: unexpected {other:?}"),
    }

    // Events need a mipc-rs relay; a legacy one says so.
    match me.subscribe("calc.*") {
        Ok(()) => {
            me.publish("calc.done", b"three calls")?;
            if let Message::Event(ev) = me.receive(t)? {
                println!(
                    "event {} from {}: {}",
                    ev.name(),
                    ev.publisher(),
                    String::from_utf8_lossy(ev.data())
                );
            }
        }
        Err(e) => println!("events: {e}"),
    }

    println!(
        "quit: {}",
        String::from_utf8_lossy(&me.call("calc", API_QUIT, b"", t)?)
    );
    calc.join().expect("server thread")?;
    Ok(())
}
