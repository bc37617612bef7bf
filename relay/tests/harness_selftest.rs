//! Checks of the scenario harness itself (`common/`): a hung program is killed by the
//! watchdog instead of hanging the suite, and the sweep removes what a killed relay leaves.

mod common;

use common::{all_queues, Bus};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

#[test]
fn watchdog_kills_a_hung_bus_and_the_sweep_cleans_up() {
    let mut bus = Bus::start_with_limit("watchdog_selftest", Duration::from_secs(2));
    let key = bus.key();
    // alarm_apm serves forever: waiting for its exit only ends by the watchdog.
    let server = bus.spawn_ready("alarm_apm", &[]);
    let finished = bus.wait_exit(server);
    assert_eq!(
        finished.status.signal(),
        Some(libc::SIGKILL),
        "{}",
        finished.describe()
    );
    assert!(!bus.watchdog_note().is_empty());

    // The relay was SIGKILLed too, so it could not remove its root queue: the sweep does.
    let s = bus.shutdown();
    assert!(s.watchdog_fired);
    assert_eq!(s.relay_status.signal(), Some(libc::SIGKILL));
    assert!(
        s.leftovers.iter().any(|q| q.key == key),
        "root queue not found: {:?}",
        s.leftovers
    );
    let remaining: Vec<_> = all_queues()
        .into_iter()
        .filter(|q| s.leftovers.iter().any(|l| l.msqid == q.msqid))
        .collect();
    assert!(remaining.is_empty(), "the sweep left {remaining:?}");
}
