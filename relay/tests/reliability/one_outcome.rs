//! Guarantee 0 (docs/RELIABILITY.md): every sync call ends in exactly one outcome.

use crate::common::Bus;
use crate::support::{field, probe, serial, FAST_FAIL_MS, TIMEOUT_SLACK_MS};

/// Three callers, each with its own probe_server, make rounds of calls whose one right
/// outcome is known: an echo (its own answer), a SLOW call past its timeout (a timeout, not
/// earlier, at most 20 ms later), a SLOW call of the same api right after (its own answer,
/// though the late answer of the previous call arrives while it waits), a call to a name
/// nobody has ("no such destination", fast), a call that is never answered (a timeout), and a
/// ping of the relay. Every outcome must be the right one: never another call's answer,
/// never an error where an answer was due, never a hang.
#[test]
fn every_sync_call_ends_in_exactly_one_outcome() {
    let _serial = serial();
    let mut bus = Bus::start("one_outcome");
    let mut callers = Vec::new();
    for i in 0..3 {
        let srv = format!("mix_srv{i}");
        probe(&mut bus, &srv, &[]);
        let name = format!("mix_cli{i}");
        callers.push(bus.spawn("caller", &[&name, "mix", &srv, "mix_nobody", "25"]));
    }
    let mut total = 0.0;
    for c in callers {
        let out = bus.wait_exit(c);
        out.assert_success();
        let line = out
            .stdout
            .iter()
            .find(|l| l.starts_with("mix "))
            .unwrap_or_else(|| panic!("no mix line: {}", out.describe()));
        eprintln!("outcomes: {line}");
        assert_eq!(field(line, "wrong"), 0.0, "{}", out.describe());
        assert_eq!(
            field(line, "right"),
            field(line, "calls"),
            "{}",
            out.describe()
        );
        assert!(
            field(line, "over_max_ms") <= TIMEOUT_SLACK_MS,
            "a timeout came more than {TIMEOUT_SLACK_MS} ms late: {}",
            out.describe()
        );
        assert!(
            field(line, "fast_fail_max_ms") <= FAST_FAIL_MS,
            "a refused call took more than {FAST_FAIL_MS} ms: {}",
            out.describe()
        );
        total += field(line, "calls");
    }
    assert_eq!(total, 3.0 * 25.0 * 6.0);
    bus.finish();
}
