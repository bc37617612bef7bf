//! Guarantee 3 (docs/RELIABILITY.md): a call or ping to a name nobody registered fails fast.

use crate::common::Bus;
use crate::support::{next_outcome, outcomes, serial, FAST_FAIL_MS};

/// A sync call or a ping to a name nobody registered fails at once with "no such
/// destination", with a 5 s timeout and with -1 (wait forever).
#[test]
fn unknown_destination_fails_fast_even_when_waiting_forever() {
    let _serial = serial();
    let mut bus = Bus::start("unknown_dst");
    let caller = bus.spawn(
        "caller",
        &[
            "nobody_cli",
            "call",
            "nobody_here",
            "1",
            "5000",
            "x",
            "call",
            "nobody_here",
            "1",
            "-1",
            "x",
            "ping",
            "nobody_here",
            "5000",
            "ping",
            "nobody_here",
            "-1",
        ],
    );
    let out = bus.wait_exit(caller);
    out.assert_success();
    let o = outcomes(&out);
    assert_eq!(o.len(), 4, "{}", out.describe());
    for got in &o {
        eprintln!("unknown destination: failed after {:.2} ms", got.ms);
        assert!(
            !got.ok && got.text.contains("no such destination"),
            "{got:?}"
        );
        assert!(got.ms < FAST_FAIL_MS, "took {:.1} ms: {got:?}", got.ms);
    }
    bus.finish();
}

/// A sync call to "mipc_main" with an api the relay does not serve (only PING is) is refused
/// at once, like a call to a name nobody registered: it must not wait for its timeout, and
/// with -1 it must not wait forever.
#[test]
fn sync_call_to_the_relay_with_an_api_it_does_not_serve_fails_fast() {
    let _serial = serial();
    let mut bus = Bus::start("relay_api");
    let caller = bus.spawn(
        "caller",
        &["relay_api_cli", "call", "mipc_main", "1", "2000", "x"],
    );
    let o = next_outcome(&mut bus, caller);
    eprintln!("sync call of api 1 to mipc_main: {o:?}");
    assert!(
        !o.ok && !o.text.contains("timeout") && o.ms < FAST_FAIL_MS,
        "a call the relay cannot answer waited for its timeout ({o:?}); with -1 it would hang"
    );
    bus.finish();
}
