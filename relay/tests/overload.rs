//! A relay that stops draining its root queue (SIGSTOP here; a debugger or a hang alike):
//! every API call of a daemon returns within its bound instead of hanging with the relay,
//! with "relay not draining its queue" where the send was what could not finish; once the
//! relay runs again, traffic flows and every message reported sent is delivered, byte for
//! byte (c-tests/stall.c checks each one's sequence number and pattern).
//!
//! The bus's `shutdown` (also on a failing test) continues the relay before it stops it, so
//! no stopped relay or queue outlives a test.

mod common;

use common::{Bus, ProcId};
use mipc::sysv::{self, QueueId, RecvFlags};
use mipc::wire::{Build, MsgBuf, MTYPE_LEN};
use mipc::MipcName;
use std::time::{Duration, Instant};

/// The send bound the programs of these tests use (`MIPC_SEND_TIMEOUT_MS`).
const SEND_MS: u64 = 400;
/// How late a bounded call may return on a machine busy with other builds.
const SLACK_MS: u64 = 3000;

/// One result line of c-tests/stall.c: `WORD RC MS REASON`.
struct Outcome {
    rc: i32,
    ms: u64,
    reason: String,
}

fn command(bus: &mut Bus, id: ProcId, line: &str) -> Outcome {
    bus.write_line(id, line);
    let word = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let got = bus.wait_line(id, |l| {
        l.starts_with(&format!("{word} ")) || l.starts_with("FAIL")
    });
    let f: Vec<&str> = got.split_whitespace().collect();
    assert!(
        f.len() == 4 && f[0] == word,
        "{line}: unexpected answer {got:?}"
    );
    Outcome {
        rc: f[1].parse().expect("rc"),
        ms: f[2].parse().expect("ms"),
        reason: f[3].replace('_', " "),
    }
}

/// Asserts that a call failed with `reason` after about `bound_ms`, not much later.
fn assert_bounded(what: &str, o: &Outcome, reason: &str, bound_ms: u64) {
    assert_eq!(
        o.rc, -1,
        "{what}: expected MIPC_ERROR, got {} ({})",
        o.rc, o.reason
    );
    assert!(
        o.reason.contains(reason),
        "{what}: reason {:?}, expected {reason:?}",
        o.reason
    );
    assert!(
        o.ms + 5 >= bound_ms && o.ms <= bound_ms + SLACK_MS,
        "{what}: returned after {} ms, bound {bound_ms} ms",
        o.ms
    );
}

const STALLED: &str = "relay not draining its queue";

/// The root queue's byte capacity.
fn root_capacity(bus: &Bus) -> u64 {
    let q = mipc::sysv::open_key(bus.key(), false, 0).expect("root queue");
    mipc::sysv::stat(q).expect("stat root queue").capacity
}

/// Whether this process (and so the relay it starts) has `CAP_SYS_RESOURCE`.
fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0) // bit 24: CAP_SYS_RESOURCE
}

/// The relay is stopped while a sender fills its root queue: the sender's async sends,
/// answers, sync calls (with and without a timeout), pings and a new registration all return
/// within their bounds. Continued, the relay delivers every message reported sent, and sync
/// and async traffic flow again.
#[test]
fn a_stopped_relay_bounds_every_call() {
    let mut bus = Bus::start("overload_stop");
    // The relay raises its root queue to 256 KiB when it may (CAP_SYS_RESOURCE), and says
    // so when it may not (a container without that capability).
    let capacity = root_capacity(&bus);
    if has_cap_sys_resource() {
        assert_eq!(capacity, 256 * 1024, "root queue not raised");
    } else {
        assert!(
            bus.relay_log().contains("root queue keeps"),
            "{}",
            bus.relay_log()
        );
    }
    let env = [("MIPC_SEND_TIMEOUT_MS", "400")];
    let rx = bus.spawn_stdin("stall", &["ovl_rx"], &env);
    let tx = bus.spawn_stdin("stall", &["ovl_tx"], &env);
    bus.wait_ready(rx);
    bus.wait_ready(tx);

    bus.stop_relay();
    // Messages go on the root queue until it is full (full-size ones, then the smallest, so
    // that not even a short answer fits); then the bound ends the send.
    let mut sent = 0;
    let mut bytes = 0;
    for size in [2000, 4] {
        bus.write_line(tx, &format!("fill ovl_rx 1000000 {size}"));
        let fill = bus.wait_line(tx, |l| l.starts_with("fill ") || l.starts_with("FAIL"));
        let f: Vec<&str> = fill.split_whitespace().collect();
        assert_eq!(f.len(), 5, "{fill}");
        sent += f[1].parse::<u64>().expect("sent");
        bytes += f[2].parse::<u64>().expect("bytes");
        let ms: u64 = f[3].parse().expect("ms");
        assert!(f[4].replace('_', " ").contains(STALLED), "{fill}");
        assert!(ms + 5 >= SEND_MS && ms <= SEND_MS + SLACK_MS, "{fill}");
    }
    assert!(
        sent > 0 && bytes <= capacity,
        "sent {sent} messages, {bytes} bytes"
    );

    let o = command(&mut bus, tx, "async ovl_rx 2000");
    assert_bounded("mipc_send_msg", &o, STALLED, SEND_MS);
    let o = command(&mut bus, tx, "respond ovl_rx");
    assert_bounded("mipc_response_msg", &o, STALLED, SEND_MS);
    // A call's own timeout ends it when it is the shorter bound...
    let o = command(&mut bus, tx, "sync ovl_rx 150");
    assert_bounded("mipc_send_sync_msg (150 ms)", &o, "timeout", 150);
    let o = command(&mut bus, tx, "ping mipc_main 150");
    assert_bounded("mipc_ping (150 ms)", &o, "timeout", 150);
    // ...the send bound when the call waits forever for its answer.
    let o = command(&mut bus, tx, "sync ovl_rx -1");
    assert_bounded("mipc_send_sync_msg (-1)", &o, STALLED, SEND_MS);
    let o = command(&mut bus, tx, "init ovl_new");
    assert_bounded("mipc_init", &o, STALLED, SEND_MS);
    // mipc_wait_for sends its request to the root queue too: the same two bounds.
    for (timeout, reason, bound) in [("150", "timeout", 150), ("-1", STALLED, SEND_MS)] {
        let started = std::time::Instant::now();
        let id = bus.spawn_env("wait_for", &["ovl_nobody", timeout], &env);
        let out = bus.wait_exit(id);
        let ms = started.elapsed().as_millis() as u64;
        assert!(
            out.last_line().contains("MIPC_ERROR") && out.last_line().contains(reason),
            "mipc_wait_for ({timeout}): {}",
            out.describe()
        );
        assert!(
            ms >= bound && ms <= bound + SLACK_MS,
            "mipc_wait_for ({timeout}) returned after {ms} ms"
        );
    }

    bus.continue_relay();
    // Everything reported sent arrives, in order and intact.
    bus.write_line(rx, &format!("recv {sent}"));
    let got = bus.wait_line(rx, |l| l.starts_with("recv ") || l.starts_with("FAIL"));
    assert_eq!(
        got,
        format!("recv {sent} {bytes}"),
        "delivered after SIGCONT"
    );
    // And traffic flows again, both ways.
    bus.write_line(rx, "serve 1");
    let o = command(&mut bus, tx, "sync ovl_rx 10000");
    assert_eq!(
        (o.rc, o.reason.as_str()),
        (0, "-"),
        "sync call after SIGCONT"
    );
    bus.wait_line(rx, |l| l == "serve 1");
    let o = command(&mut bus, tx, "async ovl_rx 2000");
    assert_eq!(o.rc, 0, "async send after SIGCONT: {}", o.reason);
    bus.write_line(rx, "recv 1");
    bus.wait_line(rx, |l| l == "recv 1 2000");

    // The stall was logged once, on stderr, however many calls met it.
    bus.signal(tx, libc::SIGTERM);
    let out = bus.wait_exit(tx);
    assert_eq!(
        out.stderr.matches(STALLED).count(),
        1,
        "the stall must be logged once:\n{}",
        out.stderr
    );
    bus.kill(rx);
    bus.finish();
}

/// With room on the root queue but the relay stopped: a new daemon's `mipc_init` gives up
/// after its greeting timeout with a clear reason (it used to fall back to the legacy
/// protocol silently), sync calls end at their timeout, and an async message is accepted and
/// delivered once the relay runs again.
#[test]
fn a_stopped_relay_with_room_left() {
    let mut bus = Bus::start("overload_room");
    let env = [
        ("MIPC_SEND_TIMEOUT_MS", "400"),
        ("MIPC_HELLO_TIMEOUT_MS", "300"),
    ];
    let rx = bus.spawn_stdin("stall", &["room_rx"], &env);
    let tx = bus.spawn_stdin("stall", &["room_tx"], &env);
    bus.wait_ready(rx);
    bus.wait_ready(tx);

    bus.stop_relay();
    // mipc_init tells a stopped relay by its root queue's last reader (msg_lrpid).
    let init_sees_stop = !common::last_reader_unknown();
    if init_sees_stop {
        late_init_gives_up(&mut bus, &env);
    } else {
        eprintln!("mipc_init against the stopped relay: not checked, msg_lrpid reads 0 here");
    }

    let o = command(&mut bus, tx, "sync room_rx 200");
    assert_bounded("mipc_send_sync_msg (200 ms)", &o, "timeout", 200);
    let o = command(&mut bus, tx, "async room_rx 1500");
    assert_eq!(o.rc, 0, "async send with room on the queue: {}", o.reason);
    assert!(o.ms < SLACK_MS, "async send took {} ms", o.ms);
    if init_sees_stop {
        let o = command(&mut bus, tx, "init room_new");
        assert_bounded("mipc_init (room left)", &o, STALLED, 300);
    }

    bus.continue_relay();
    bus.write_line(rx, "recv 1");
    let got = bus.wait_line(rx, |l| l.starts_with("recv ") || l.starts_with("FAIL"));
    assert_eq!(got, "recv 1 1500");
    // The registrations that gave up were taken back: a new one of the same name works.
    let o = command(&mut bus, tx, "init room_new");
    assert_eq!(o.rc, 0, "mipc_init after SIGCONT: {}", o.reason);
    bus.kill(tx);
    bus.kill(rx);
    bus.finish();
}

/// A daemon started while the relay is stopped: its `mipc_init` gives up within its greeting
/// timeout, saying the relay is stopped.
fn late_init_gives_up(bus: &mut Bus, env: &[(&str, &str)]) {
    let started = std::time::Instant::now();
    let late = bus.spawn_env("stall", &["room_late"], env);
    let out = bus.wait_exit(late);
    let took = started.elapsed();
    assert!(
        out.last_line().starts_with("FAIL mipc_init") && out.last_line().contains(STALLED),
        "{}",
        out.describe()
    );
    assert!(
        out.last_line().contains("stopped"),
        "the reason names the stopped relay: {}",
        out.describe()
    );
    assert!(
        took < Duration::from_millis(300 + SLACK_MS),
        "mipc_init took {took:?} against a stopped relay"
    );
}

/// A relay killed outright (the OOM killer, a crash) leaves its root queue behind, which
/// nobody reads until it is started again. A daemon that starts meanwhile, in the same second
/// as the relay's last read, must not take that silence for a legacy relay's (msg_rtime counts
/// whole seconds, so that read cannot be told from one of its greeting by the field alone):
/// its `mipc_init` gives up with "read nothing" instead of running on the legacy wire, and
/// succeeds once a relay runs again.
#[test]
fn a_dead_relay_is_not_taken_for_a_legacy_one() {
    let mut bus = Bus::start("overload_dead");
    let env = [
        ("MIPC_SEND_TIMEOUT_MS", "400"),
        ("MIPC_HELLO_TIMEOUT_MS", "300"),
    ];
    let tx = bus.spawn_stdin("stall", &["dead_tx"], &env);
    bus.wait_ready(tx);
    // Early in a second, but not at its very start (not a synchronisation: the steps below
    // take a few milliseconds, and must fall in one second of the kernel's msg_rtime, which
    // is the coarse clock: it turns over up to a tick after the precise one).
    let frac = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_millis();
    if !(100..=300).contains(&frac) {
        std::thread::sleep(Duration::from_millis(u64::from((1100 - frac) % 1000)));
    }
    // The relay's last read: a message to the daemon itself, which it forwarded.
    let o = command(&mut bus, tx, "async dead_tx 100");
    assert_eq!(o.rc, 0, "async: {}", o.reason);
    bus.write_line(tx, "recv 1");
    bus.wait_line(tx, |l| l == "recv 1 100");
    bus.kill_relay();
    let started = std::time::Instant::now();
    let late = bus.spawn_env("stall", &["dead_late"], &env);
    let out = bus.wait_exit(late);
    let took = started.elapsed();
    eprintln!("mipc_init against a dead relay's queue: returned after {took:?}");
    assert!(
        out.last_line().starts_with("FAIL mipc_init")
            && out.last_line().contains(STALLED)
            && out.last_line().contains("read nothing"),
        "mipc_init with a dead relay's root queue: {}",
        out.describe()
    );
    assert!(
        took < Duration::from_millis(1000 + 400 + SLACK_MS),
        "mipc_init took {took:?} against a dead relay's queue"
    );

    bus.restart_relay();
    let again = bus.spawn_stdin("stall", &["dead_late"], &env);
    bus.wait_ready(again);
    // A message to itself, through the new relay.
    let o = command(&mut bus, again, "async dead_late 100");
    assert_eq!(o.rc, 0, "async through the new relay: {}", o.reason);
    bus.write_line(again, "recv 1");
    bus.wait_line(again, |l| l == "recv 1 100");
    bus.kill(again);
    bus.kill(tx);
    bus.finish();
}

/// The greeting tests play a slow relay: the relay is stopped, a backlog of [`BACKLOG`]
/// messages of type [`JUNK`] waits on its root queue, and the test takes them off one by one,
/// [`PER_MESSAGE`] apart (the relay's work on each, simulated), while a new daemon's greeting
/// ([`HELLO_MS`]) goes unanswered.
const HELLO_MS: u64 = 200;
const BACKLOG: u64 = 12;
const PER_MESSAGE: Duration = Duration::from_millis(HELLO_MS * 3 / BACKLOG);
/// The backlog's SysV type: nothing else on these buses sends it.
const JUNK: std::os::raw::c_long = 4242;

/// Stops the relay, queues the backlog, starts the daemon `name` and waits until its NOTICE
/// and greeting are queued behind the backlog. Returns the root queue and the daemon.
fn greeting_behind_a_backlog(bus: &mut Bus, name: &str) -> (QueueId, ProcId) {
    let root = sysv::open_key(bus.key(), false, 0).expect("root queue");
    bus.stop_relay();
    let mut buf = MsgBuf::boxed();
    buf.build(Build {
        mtype: JUNK,
        src: &MipcName::new(b"behind_junk").unwrap(),
        dst: &MipcName::new(b"behind_nobody").unwrap(),
        msg_type: JUNK as u32,
        sync_flag: 0,
        payload: &[0x5a; 100],
        tag: None,
    });
    for _ in 0..BACKLOG {
        sysv::send(root, buf.as_sendable(), true).expect("queue the backlog");
    }
    let hello = HELLO_MS.to_string();
    let env = [
        ("MIPC_SEND_TIMEOUT_MS", "5000"),
        ("MIPC_HELLO_TIMEOUT_MS", hello.as_str()),
    ];
    let daemon = bus.spawn_stdin("stall", &[name], &env);
    while sysv::stat(root).expect("root queue").messages < BACKLOG + 2 {
        std::thread::yield_now();
    }
    (root, daemon)
}

/// Takes the first message of SysV type `mtype` off the root queue, as a relay would.
fn take(root: QueueId, mtype: std::os::raw::c_long) {
    let mut buf = vec![0u8; MTYPE_LEN + 8192];
    let flags = RecvFlags {
        nowait: true,
        ..Default::default()
    };
    sysv::recv(root, &mut buf, mtype, flags).expect("a queued message");
}

/// Takes the backlog off slowly, watching the daemon's output between two messages. Returns
/// the daemon's `ready` (or `FAIL`) line if it printed one meanwhile, with the number of
/// messages taken by then.
fn read_backlog_slowly(bus: &mut Bus, root: QueueId, daemon: ProcId) -> Option<(u64, String)> {
    for i in 0..BACKLOG {
        if i > 0 {
            let line = bus.wait_line_for(
                daemon,
                |l| l == "ready" || l.starts_with("FAIL"),
                Some(PER_MESSAGE),
            );
            if let Some(line) = line {
                return Some((i, line));
            }
        }
        take(root, JUNK);
    }
    None
}

/// A relay that is behind (it reads its root queue, but messages still wait there when a
/// daemon's greeting times out: a firmware boot where every daemon registers at once) is
/// waited for, not taken for a legacy relay: the daemon ends up on the mipc-rs wire, where a
/// call to a name nobody holds fails at once with the relay's "no such destination" (on the
/// legacy wire it would wait out its timeout). The test plays the slow relay (see
/// [`HELLO_MS`]) for three greeting timeouts, then the relay runs again and reads the
/// greeting.
#[test]
fn a_relay_behind_is_waited_for_not_taken_for_a_legacy_one() {
    let mut bus = Bus::start("overload_behind");
    let started = Instant::now();
    let (root, rx) = greeting_behind_a_backlog(&mut bus, "behind_rx");
    assert_eq!(
        read_backlog_slowly(&mut bus, root, rx),
        None,
        "mipc_init returned while its greeting still waited on the root queue"
    );
    bus.continue_relay();
    bus.wait_ready(rx);
    let took = started.elapsed();
    eprintln!("mipc_init behind a slow relay: returned after {took:?}");
    assert!(
        took < Duration::from_millis(5000 + SLACK_MS),
        "mipc_init took {took:?}"
    );
    let o = command(&mut bus, rx, "sync behind_nobody 3000");
    assert_eq!(o.rc, -1, "a call to a name nobody holds succeeded");
    assert!(
        o.reason.contains("no such destination"),
        "the daemon is not on the mipc-rs wire: a call to a name nobody holds ended with {:?} \
         after {} ms",
        o.reason,
        o.ms
    );
    bus.kill(rx);
    bus.finish();
}

/// A legacy relay that is busy (messages wait on its queue, and it reads them) took the
/// greeting and did not answer: the daemon settles for the legacy wire soon after its
/// greeting timeout, not after `MIPC_SEND_TIMEOUT_MS` as for a relay that is behind. The
/// library tells the two apart by looking for its greeting on the root queue without taking it
/// (`MSG_COPY`). The test plays the busy legacy relay: it takes the greeting, then the
/// backlog slowly.
#[test]
fn a_busy_legacy_relay_is_told_from_one_that_is_behind() {
    let mut bus = Bus::start("overload_busy_legacy");
    let started = Instant::now();
    let (root, rx) = greeting_behind_a_backlog(&mut bus, "busy_rx");
    take(root, mipc::wire::Kind::Hello.mtype());
    let ready = read_backlog_slowly(&mut bus, root, rx);
    let took = started.elapsed();
    eprintln!("mipc_init against a busy legacy relay: {ready:?} after {took:?}");
    let Some((taken, line)) = ready else {
        panic!(
            "mipc_init still waited after {BACKLOG} messages ({took:?}) for a greeting the \
             relay had taken"
        );
    };
    assert_eq!(line, "ready", "mipc_init: {line}");
    assert!(taken < BACKLOG, "{taken}");
    bus.continue_relay();
    // On the legacy wire: a call to a name nobody holds waits out its timeout.
    let o = command(&mut bus, rx, "sync busy_nobody 300");
    assert_eq!(o.rc, -1, "a call to a name nobody holds succeeded");
    assert!(o.reason.contains("timeout"), "{}", o.reason);
    // A clean exit: a legacy entry's death is seen only where the relay can learn its pid
    // from its queue (not under qemu-aarch64, which reads msg_lrpid as 0).
    bus.end_input(rx).assert_success();
    bus.finish();
}
