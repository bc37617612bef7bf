//! Answers that skip the relay. The opt-in direct path (`MIPC_DIRECT=1`, src/direct.rs): calls
//! go straight to the server's queue and back, and keep the relay's guarantees: every answer
//! is the caller's own, one sender's messages stay in order across the switch from the relay
//! to the direct path. Answers straight back (docs/PROTOCOL.md §11, on by default): the
//! server answers straight to the caller's queue when the relay offers it, and nothing it
//! sent before is overtaken.

mod common;

use common::Bus;
use std::time::Duration;

const DIRECT: [(&str, &str); 1] = [("MIPC_DIRECT", "1")];

/// How many messages the relay forwarded, from its last log line ("... N messages
/// forwarded ...").
fn forwarded(relay_log: &str) -> u64 {
    relay_log
        .lines()
        .rev()
        .find_map(|l| {
            l.split(" messages forwarded")
                .next()
                .filter(|s| s.len() < l.len())
        })
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stop line with stats in the relay log:\n{relay_log}"))
}

/// Shuts the bus down and checks it like `Bus::finish`, returning the relay's log.
fn finish(mut bus: Bus) -> String {
    let s = bus.shutdown();
    assert!(
        s.relay_status.success() && !s.watchdog_fired,
        "relay did not stop cleanly:\n{}",
        s.relay_log
    );
    assert!(
        s.leftovers.is_empty(),
        "queues left behind: {:?}\n{}",
        s.leftovers,
        s.relay_log
    );
    s.relay_log
}

/// One caller, 600 direct calls of 12 to 2048 bytes, every answer checked byte for byte by
/// the client: the relay forwards none of them (only registrations and the lookup pass it).
#[test]
fn an_uncontended_caller_goes_direct() {
    let mut bus = Bus::start("direct_single");
    let server = bus.spawn_ready("middleware_server", &[]);
    let client = bus.spawn_env("stress_client", &["1", "600", "direct"], &DIRECT);
    bus.wait_exit(client).assert_success().assert_line("ok 600");
    bus.kill(server);
    let log = finish(bus);
    let relayed = forwarded(&log);
    assert!(
        relayed < 10,
        "600 direct calls, but the relay forwarded {relayed} messages:\n{log}"
    );
}

/// 4 processes x 4 threads x 200 direct sync calls, every answer checked byte for byte. Sixteen
/// callers of up to 2 KiB keep the server's 16 KiB queue full, and a direct send to a full
/// queue goes through the relay (which holds it in order), so how many calls go direct
/// depends on timing: the test checks correctness, and reports the share.
#[test]
fn direct_calls_under_load_get_their_own_answers() {
    let mut bus = Bus::start("direct_stress");
    let server = bus.spawn_ready("middleware_server", &[]);
    let clients: Vec<_> = (0..4)
        .map(|i| {
            bus.spawn_env(
                "stress_client",
                &["4", "200", &format!("direct{i}")],
                &DIRECT,
            )
        })
        .collect();
    for c in clients {
        bus.wait_exit(c).assert_success().assert_line("ok 800");
    }
    let server = bus.kill(server);
    assert!(!server.stderr.contains("BUG"), "{}", server.describe());
    let log = finish(bus);
    eprintln!(
        "direct under load: the relay forwarded {} of 3200 calls",
        forwarded(&log)
    );
}

/// Async messages and sync calls of one sender, numbered 1..=600, arrive in order at the
/// receiver: through the relay, and with the sender switching to the direct path at its
/// first sync call (the lookup is answered after the relay passed on what came before).
#[test]
fn one_senders_messages_stay_in_order_across_the_switch_to_direct() {
    for env in [&[][..], &DIRECT[..]] {
        let mut bus = Bus::start("direct_order");
        let rx = bus.spawn_ready("direct_order", &["serve", "600"]);
        let tx = bus.spawn_env("direct_order", &["send", "600"], env);
        bus.wait_exit(tx).assert_success().assert_line("sent 600");
        bus.wait_exit(rx).assert_success().assert_line("ok 600");
        finish(bus);
    }
}

/// Sync calls answered straight back (docs/PROTOCOL.md §11): every answer is the caller's own,
/// byte for byte; a one-way message the server sent before answering is on the caller's queue
/// when the call returns (that answer goes through the relay, behind it); a server that calls
/// its caller back after answering is not refused as a deadlock (its library reported the
/// call answered first); and the relay counts what was answered straight back: every api 1
/// call, the call back, its answer and the last call (`c-tests/answer_back.c`), with the
/// relay offering to every caller (`MIPC_ANSWER_BACK=always`). By default it offers only
/// while callers share it: here only the call back (another caller than the last) and the
/// call after it. Turned off on the relay, everything is the same but nothing goes straight
/// back; turned off on the server only, only the caller's answer to the call back does.
#[test]
fn answers_straight_back_are_the_callers_own_and_overtake_nothing() {
    const ROUNDS: u32 = 300;
    let off = [("MIPC_ANSWER_BACK", "0")];
    let always = [("MIPC_ANSWER_BACK", "always")];
    for (relay_env, server_env, straight_back) in [
        (&always[..], &[][..], u64::from(ROUNDS) + 3),
        (&[][..], &[][..], 2),
        (&off[..], &[][..], 0),
        (&always[..], &off[..], 1),
    ] {
        let mut bus = Bus::start_with("answer_back", Duration::from_secs(60), relay_env);
        let srv = bus.spawn_env("answer_back", &["serve"], server_env);
        bus.wait_ready(srv);
        let caller = bus.spawn("answer_back", &["call", &ROUNDS.to_string()]);
        bus.wait_exit(caller)
            .assert_success()
            .assert_line(&format!("ok {ROUNDS}"));
        bus.wait_exit(srv)
            .assert_success()
            .assert_line("called back: 44")
            .assert_line(&format!("served {}", 2 * ROUNDS + 1));
        let log = finish(bus);
        assert_eq!(
            common::answered_back(&log),
            straight_back,
            "relay env {relay_env:?}, server env {server_env:?}:\n{log}"
        );
    }
}
