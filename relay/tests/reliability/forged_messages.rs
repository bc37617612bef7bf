//! Guarantee 7 (docs/RELIABILITY.md), by hand: forged HELLOs, PINGs and a registration flood
//! on the root queue.

use crate::common::{skipped_when_emulated, Bus};
use crate::raw::{notice, send_raw};
use crate::support::{next_outcome, outcomes, probe, saved_entries, serial, OwnedQueue};
use mipc::wire::{MIPC_MSG_TYPE_HELLO, MIPC_MSG_TYPE_PING};
use std::time::{Duration, Instant};

/// A HELLO that names the queue of a live entry (under a new name, or under the entry's
/// own name with another pid) is refused or ignored, and the relay puts no answer on that
/// entry's queue: the daemon's handler never sees a message it did not ask for.
#[test]
fn hello_claiming_an_entrys_queue_puts_nothing_on_it() {
    let _serial = serial();
    let mut bus = Bus::start("hello_claim");
    let (victim, q) = probe(&mut bus, "hello_victim", &[]);
    let hello = |pid: i32| {
        let mut p = Vec::new();
        p.extend_from_slice(&1u32.to_ne_bytes());
        p.extend_from_slice(&pid.to_ne_bytes());
        p.extend_from_slice(&q.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        p
    };
    send_raw(
        &bus,
        "hello_thief",
        "mipc_main",
        MIPC_MSG_TYPE_HELLO,
        500,
        &hello(1),
    );
    send_raw(
        &bus,
        "hello_victim",
        "mipc_main",
        MIPC_MSG_TYPE_HELLO,
        500,
        &hello(1),
    );
    let check = bus.run(
        "caller",
        &["hello_cli", "call", "hello_victim", "1", "2000", "mine"],
    );
    assert!(outcomes(&check)[0].ok, "{}", check.describe());
    let out = bus.kill(victim);
    let got: Vec<&String> = out.stdout.iter().filter(|l| l.starts_with("got")).collect();
    assert_eq!(
        got,
        ["got 1 from hello_cli"],
        "the relay put messages on the queue of an entry that did not ask for them: {}",
        out.describe()
    );
    bus.finish();
}

/// A PING to the relay in the name of a live entry (any process that can write to the root
/// queue can send one) makes the relay answer on that entry's queue; the daemon's handler
/// answers that PING back to "mipc_main" as it answers any PING, and nothing may turn this
/// into an endless exchange: afterwards the relay is idle (under 25 ms of CPU over 500 ms).
#[test]
fn forged_ping_in_an_entrys_name_does_not_bounce_forever() {
    let _serial = serial();
    let mut bus = Bus::start("forged_ping");
    let (victim, _) = probe(&mut bus, "ping_victim", &[]);
    let mw = bus.spawn_ready("middleware_server", &["ping_victim_mw"]);
    send_raw(
        &bus,
        "ping_victim",
        "mipc_main",
        MIPC_MSG_TYPE_PING,
        1000,
        &[],
    );
    send_raw(
        &bus,
        "ping_victim_mw",
        "mipc_main",
        MIPC_MSG_TYPE_PING,
        -1,
        &[],
    );
    // A ping through the root queue: the forged ones have been handled when it is answered.
    let sync = bus.run("caller", &["ping_cli", "ping", "mipc_main", "2000"]);
    assert!(outcomes(&sync)[0].ok, "{}", sync.describe());
    let cpu0 = bus.relay_cpu();
    let idle = bus.run(
        "caller",
        &["idle_cli", "call", "ping_victim", "4", "500", "x"],
    );
    let cpu = bus.relay_cpu() - cpu0;
    assert!(!outcomes(&idle)[0].ok, "{}", idle.describe());
    let out = bus.kill(victim);
    let pongs = out
        .stdout
        .iter()
        .filter(|l| l.as_str() == format!("got {MIPC_MSG_TYPE_PING} from mipc_main"))
        .count();
    bus.kill(mw);
    eprintln!("forged PING: the relay used {cpu:?} of CPU over 500 ms afterwards; ping_victim answered {pongs} PINGs from mipc_main");
    assert!(
        cpu < Duration::from_millis(25),
        "the relay is busy after two forged PINGs ({cpu:?} of CPU over 500 ms; ping_victim got {pongs} PINGs from mipc_main)"
    );
    bus.finish();
}

/// A flood of registrations (NOTICEs for new names on one queue, 1.2 times the table's
/// bound) stops at the bound ("name table full": then a new daemon cannot register); the
/// relay's memory stays within the table's size, and unregistering them all brings the table
/// back. The relay runs with `-n 512` to keep the test short; `MIPC_FULL_TABLE=1` runs it with
/// the default bound of 4096 entries.
#[test]
fn registration_flood_stops_at_the_table_bound() {
    let _serial = serial();
    let full = std::env::var("MIPC_FULL_TABLE").is_ok_and(|v| v == "1");
    let bound: usize = if full { 4096 } else { 512 };
    let flood = bound * 6 / 5;
    let n = bound.to_string();
    let args: &[&str] = if full { &[] } else { &["-n", &n] };
    let mut bus = Bus::builder("registration_flood").relay_args(args).start();
    let (srv, _) = probe(&mut bus, "reg_srv", &[]);
    let cli = bus.spawn_stdin(
        "caller",
        &[
            "reg_cli",
            "line",
            "ping",
            "mipc_main",
            "60000",
            "line",
            "ping",
            "mipc_main",
            "60000",
            "call",
            "reg_srv",
            "1",
            "2000",
            "fine",
        ],
        &[],
    );
    bus.wait_ready(cli);
    let rss0 = bus.relay_rss_kib();
    let q = OwnedQueue::new();
    let t0 = Instant::now();
    for i in 0..flood {
        notice(&bus, &format!("reg{i}"), true, &format!("reg{i}"), q.0 .0);
    }
    // A ping through the root queue: when it is answered, the NOTICEs have been handled.
    bus.write_line(cli, "go");
    let o = next_outcome(&mut bus, cli);
    let spent = t0.elapsed();
    assert!(o.ok, "{o:?}");
    let rss1 = bus.relay_rss_kib();
    // While the table is full, a new daemon cannot register.
    let late = bus.run("caller", &["late_cli", "ping", "mipc_main", "1000"]);
    eprintln!("registering with a full table: {}", late.stdout.join(" | "));
    assert!(
        late.stdout.iter().any(|l| l.starts_with("init failed")),
        "{}",
        late.describe()
    );
    let saved = saved_entries(&bus);
    eprintln!(
        "{flood} registrations handled in {spent:?}; table {} entries (bound {bound}); VmRSS {rss0} -> {rss1} KiB",
        saved.len()
    );
    bus.wait_log("refused: name table full");
    assert_eq!(saved.len(), bound, "{} entries", saved.len());
    assert!(saved.contains_key("reg_srv"));
    if !skipped_when_emulated(
        "the relay's memory bound",
        "VmRSS counts the emulator's own",
    ) {
        assert!(
            rss1 <= rss0 + bound as u64 / 2 + 1024,
            "VmRSS {rss0} -> {rss1} KiB for {bound} entries"
        );
    }
    let t1 = Instant::now();
    for i in 0..flood {
        notice(&bus, &format!("reg{i}"), false, &format!("reg{i}"), q.0 .0);
    }
    bus.write_line(cli, "go");
    let o = next_outcome(&mut bus, cli);
    assert!(o.ok, "{o:?}");
    eprintln!("{flood} unregistrations handled in {:?}", t1.elapsed());
    let o = next_outcome(&mut bus, cli);
    assert!(o.ok && o.text == "fine", "{o:?}");
    bus.wait_exit(cli).assert_success();
    // reg_cli unregisters as it exits; the relay logs that after saving the table.
    bus.wait_log("unregistered reg_cli");
    let saved = saved_entries(&bus);
    assert_eq!(saved.keys().collect::<Vec<_>>(), ["reg_srv"], "{saved:?}");
    drop(q);
    bus.kill(srv);
    bus.finish();
}
