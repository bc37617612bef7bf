//! Guarantee 10 (docs/RELIABILITY.md): nested calls get their own answers; a call cycle ends
//! in a deadlock error.

use crate::common::Bus;
use crate::support::{next_outcome, outcomes, probe, serial};

/// A server (A) that makes a sync call to a third daemon (B) while serving a request gets
/// B's answer, although a request of the same api id for A arrives while it waits (it is
/// kept and served next, not taken for B's answer); both callers get their own answers.
#[test]
fn nested_call_gets_its_answer_while_requests_queue_up() {
    let _serial = serial();
    let mut bus = Bus::start("nested");
    let (a, _) = probe(&mut bus, "outer_srv", &[]);
    let (b, _) = probe(&mut bus, "inner_srv", &[]);
    // outer_srv's NESTED: calls inner_srv's WAIT (api 6) with "300:inner answer".
    let first = bus.spawn(
        "caller",
        &[
            "nest_cli",
            "nested",
            "outer_srv",
            "5000",
            "6",
            "3000",
            "inner_srv",
            "300:inner answer",
        ],
    );
    bus.wait_line(b, |l| l == "got 6 from outer_srv");
    // outer_srv now waits for inner_srv; a request of the same api id reaches it.
    let second = bus.spawn(
        "caller",
        &[
            "queued_cli",
            "call",
            "outer_srv",
            "6",
            "5000",
            "0:queued answer",
        ],
    );
    let o1 = next_outcome(&mut bus, first);
    let o2 = next_outcome(&mut bus, second);
    assert!(
        o1.ok && o1.text == "ok:inner answer",
        "outer call got {o1:?}"
    );
    assert!(
        o2.ok && o2.text == "queued answer",
        "queued call got {o2:?}"
    );
    let a_out = bus.kill(a);
    let order: Vec<&String> = a_out
        .stdout
        .iter()
        .filter(|l| l.starts_with("got"))
        .collect();
    assert_eq!(
        order,
        ["got 3 from nest_cli", "got 6 from queued_cli"],
        "{}",
        a_out.describe()
    );
    bus.kill(b);
    bus.finish();
}

/// Two servers that call each other (A calls B, whose handler calls A back): with a timeout,
/// and with -1 too, the cycle ends in a "deadlock" error from the relay (or a timeout), never
/// a hang, and both servers serve again afterwards.
#[test]
fn call_cycle_ends_in_deadlock_error_not_a_hang() {
    let _serial = serial();
    let mut bus = Bus::start("cycle");
    let (a, _) = probe(&mut bus, "cycle_a", &[]);
    let (b, _) = probe(&mut bus, "cycle_b", &[]);
    for inner in ["2000", "-1"] {
        let out = bus.run(
            "caller",
            &["cycle_cli", "cycle", "cycle_a", "5000", inner, "cycle_b"],
        );
        out.assert_success();
        let o = outcomes(&out);
        eprintln!("cycle with inner timeout {inner}: {:?}", o[0]);
        assert!(
            o[0].ok && (o[0].text.contains("deadlock") || o[0].text.contains("timeout")),
            "{}",
            out.describe()
        );
        assert!(o[0].ms < 5000.0);
    }
    for srv in ["cycle_a", "cycle_b"] {
        let out = bus.run("caller", &["after_cli", "call", srv, "1", "2000", "alive"]);
        assert!(outcomes(&out)[0].ok, "{}", out.describe());
    }
    bus.kill(a);
    bus.kill(b);
    bus.finish();
}
