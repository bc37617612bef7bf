//! The C scenarios: the programs of `c-tests/` (built by `make c-tests`, and
//! `make c-tests-asan` for the sanitizer runs) against the relay, each test on its own bus.
//!
//! Every test ends with `Bus::finish`, which stops the relay with SIGTERM and fails if any
//! queue of the bus is left before the harness sweeps: the relay and the library must clean
//! up after exited and killed programs by themselves (SPEC §1 weakness: dead process).
//!
//! Run: `cargo build --release && make c-tests c-tests-asan &&
//!       cargo test -p mipc-relay --test c_scenarios`
//!
//! `make test-cross` runs the same scenarios with the programs of an ARM target under qemu
//! (cross mode, `common::target_command`); the few that cannot work there say why and return.

mod common;

use common::{
    c_build_dir, c_program, gathered, held_and_batched, release_lib_dir, skipped_when_emulated,
    target_command, Bus,
};
use std::collections::BTreeMap;
use std::process::Command;

/// Sanitizer settings for the `asan/` programs: stop at the first report, fail the run.
const ASAN_ENV: [(&str, &str); 2] = [
    (
        "ASAN_OPTIONS",
        "halt_on_error=1:detect_leaks=1:abort_on_error=0:exitcode=86",
    ),
    (
        "UBSAN_OPTIONS",
        "halt_on_error=1:print_stacktrace=1:exitcode=87",
    ),
];

/// Article example 1: main_apm pings alarm_apm (waiting forever) and the relay.
#[test]
fn ping_example() {
    let mut bus = Bus::start("ping_example");
    let server = bus.spawn_ready("alarm_apm", &[]);
    let client = bus.run("main_apm", &[]);
    client
        .assert_success()
        .assert_line("main_apm: ping alarm_apm -> MIPC_OK")
        .assert_line("main_apm: ping mipc_main -> MIPC_OK");
    // The server prints its line after mipc_response_msg returns, which can be after the
    // client has its answer: wait for the line (the watchdog fails the test if it never
    // comes), then stop the server.
    bus.wait_line_starting(server, "alarm_apm: answered ping from main_apm");
    bus.kill(server);
    bus.finish();
}

/// Article example 2: the middleware client stub against the middleware server.
#[test]
fn middleware_example() {
    let mut bus = Bus::start("middleware_example");
    let server = bus.spawn_ready("middleware_server", &[]);
    let client = bus.run("middleware_client", &[]);
    client.assert_success().assert_line("ok 7");
    for size in ["1", "100", "2048"] {
        client.assert_line(&format!("client: echo({size} bytes) -> reversed ok"));
    }
    client.assert_line("client: ping middleware -> MIPC_OK");

    // The server saw the same three inserts the client checked.
    let server = bus.kill(server);
    let inserts: Vec<&String> = server
        .stdout
        .iter()
        .filter(|l| l.starts_with("server: insert_entry"))
        .collect();
    assert_eq!(inserts.len(), 3, "{}", server.describe());
    for line in &client.stdout {
        if let Some(rest) = line.strip_prefix("client: insert_entry") {
            // "(table 1, 4 bytes) -> ret N" on both sides, the server adding "from mw_client".
            let (args, ret) = rest.split_once(" -> ").expect("client line");
            let want = format!("server: insert_entry{args} from mw_client -> {ret}");
            assert!(
                server.has_line(&want),
                "server did not log {want:?}: {}",
                server.describe()
            );
        }
    }
    bus.finish();
}

fn stress(bus: &mut Bus, dir: &str, processes: usize, threads: usize, calls: usize) {
    let env: &[(&str, &str)] = if dir.is_empty() { &[] } else { &ASAN_ENV };
    let server = format!("{dir}middleware_server");
    let client = format!("{dir}stress_client");
    let server_id = bus.spawn_env(&server, &[], env);
    bus.wait_ready(server_id);
    let (threads_s, calls_s) = (threads.to_string(), calls.to_string());
    let ids: Vec<_> = (0..processes)
        .map(|i| {
            let prefix = format!("stress{i}");
            bus.spawn_env(&client, &[&threads_s, &calls_s, &prefix], env)
        })
        .collect();
    let want = format!("ok {}", threads * calls);
    for id in ids {
        bus.wait_exit(id).assert_success().assert_line(&want);
    }
    let server = bus.kill(server_id);
    assert!(!server.stderr.contains("BUG"), "{}", server.describe());
}

/// 4 processes x 4 threads x 200 sync calls of 12 to 2048 bytes, every answer checked.
#[test]
fn stress_4_processes_4_threads_200_calls() {
    let mut bus = Bus::start("stress");
    stress(&mut bus, "", 4, 4, 200);
    bus.finish();
}

/// 1000 fire-and-forget messages of 8 to 2048 bytes arrive complete and in order.
#[test]
fn async_messages_arrive_complete_and_in_order() {
    let mut bus = Bus::start("async_order");
    async_order(&mut bus);
    bus.finish();
}

/// `async_order` sends 1000 messages to its receiver, which checks every byte and the order.
fn async_order(bus: &mut Bus) {
    let receiver = bus.spawn_ready("async_order", &["receive", "1000"]);
    let sender = bus.run("async_order", &["send", "async_rx", "1000"]);
    sender.assert_success().assert_line("sent 1000");
    bus.wait_exit(receiver)
        .assert_success()
        .assert_line("ok 1000");
}

/// A receiver stopped (SIGSTOP) while 600 messages of 8 to 2048 bytes are sent to it: the
/// sender is not held up (the relay keeps what its queue cannot hold), and once the receiver
/// continues, its backlog's drainer, backed off meanwhile, delivers all 600 complete and in
/// order.
#[test]
fn a_stopped_receiver_gets_its_backlog_in_order_once_continued() {
    let mut bus = Bus::start("stopped_receiver");
    let receiver = bus.spawn_ready("async_order", &["receive", "600"]);
    bus.signal(receiver, libc::SIGSTOP);
    let sender = bus.run("async_order", &["send", "async_rx", "600"]);
    sender.assert_success().assert_line("sent 600");
    let log = bus.relay_log();
    assert!(
        log.contains("async_rx: queue full, holding its messages until it reads"),
        "the relay parked messages for the stopped receiver: {log}"
    );
    bus.signal(receiver, libc::SIGCONT);
    bus.wait_exit(receiver)
        .assert_success()
        .assert_line("ok 600");
    bus.finish();
}

/// What a receiver that fell behind gets of its backlog: 1 000 messages of 8 to 200 bytes
/// are sent to a stopped receiver (its queue holds about 85, the relay keeps the rest), which
/// then checks each, byte for byte and in order. The relay sends what it kept in batches
/// (several messages in one SysV message, taken apart by the receiver's library; the exit
/// line counts them), to a receiver that receives with a timeout or waits without one (the
/// library's two receive paths), and to one whose queue holds less than a whole batch
/// (smaller batches); to one that asks for none, or from a relay told to send none
/// (`MIPC_BATCH=0` for either), one by one.
#[test]
fn a_receiver_behind_gets_its_backlog_in_batches_complete_and_in_order() {
    let no_batches = [("MIPC_BATCH", "0")];
    for (label, receive, env, relay_env) in [
        ("batched", &["receive", "1000", "200"][..], &[][..], &[][..]),
        (
            "batched_forever",
            &["receive", "1000", "200", "forever"][..],
            &[][..],
            &[][..],
        ),
        (
            "unbatched",
            &["receive", "1000", "200"][..],
            &no_batches[..],
            &[][..],
        ),
        (
            "relay_unbatched",
            &["receive", "1000", "200"][..],
            &[][..],
            &no_batches[..],
        ),
        // A queue that holds 1 500 bytes, less than a whole batch: smaller batches.
        (
            "small_queue",
            &["receive", "1000", "200", "qbytes=1500"][..],
            &[][..],
            &[][..],
        ),
    ] {
        let mut bus = Bus::builder(label).relay_env(relay_env).start();
        let receiver = bus.spawn_env("async_order", receive, env);
        bus.wait_ready(receiver);
        bus.signal(receiver, libc::SIGSTOP);
        bus.run("async_order", &["send", "async_rx", "1000", "200"])
            .assert_success()
            .assert_line("sent 1000");
        bus.signal(receiver, libc::SIGCONT);
        bus.wait_exit(receiver)
            .assert_success()
            .assert_line("ok 1000");
        let log = bus.finish_with_log();
        let (held, batched) = held_and_batched(&log);
        eprintln!("{label}: {held} held for the receiver, {batched} of them sent in batches");
        assert!(
            held >= 800,
            "{label}: the relay held what the queue could not: {held}"
        );
        if env.is_empty() && relay_env.is_empty() {
            // Each batch carries 2 or more; only the tail of a backlog may go alone.
            assert!(
                batched * 10 >= held * 9,
                "{label}: {batched} of {held} batched"
            );
        } else {
            assert_eq!(
                batched, 0,
                "{label}: a receiver that asked for none got batches"
            );
        }
    }
}

/// One-way requests the relay reads one after another for one receiver reach it together
/// (`router/gather.rs`), complete and in order, byte for byte. The sender sends 60 of 8 to 100
/// bytes while the relay is stopped, so that it finds them in a row when it goes on: the
/// first goes alone, the rest in batches. With the receiver's library asking for no batches
/// (`MIPC_BATCH=0`), or the relay told to gather none (`MIPC_GATHER=0`), they go one by
/// one, and arrive the same.
#[test]
fn requests_read_in_a_row_reach_their_receiver_together_complete_and_in_order() {
    const COUNT: &str = "60";
    let no_batches = [("MIPC_BATCH", "0")];
    let no_gathering = [("MIPC_GATHER", "0")];
    for (label, receiver_env, relay_env) in [
        ("gathered", &[][..], &[][..]),
        ("receiver_unbatched", &no_batches[..], &[][..]),
        ("relay_ungathered", &[][..], &no_gathering[..]),
    ] {
        let mut bus = Bus::builder(label).relay_env(relay_env).start();
        let receiver = bus.spawn_env("async_order", &["receive", COUNT, "100"], receiver_env);
        bus.wait_ready(receiver);
        let sender = bus.spawn_stdin(
            "async_order",
            &["send", "async_rx", COUNT, "100", "wait"],
            &[],
        );
        bus.wait_ready(sender);
        bus.stop_relay();
        bus.write_line(sender, "go");
        // Every send returns once its message is on the root queue (60 of at most 184
        // bytes fit in its 16 KiB).
        bus.wait_line(sender, |l| l == "sent 60");
        bus.continue_relay();
        bus.wait_exit(sender).assert_success();
        bus.wait_exit(receiver)
            .assert_success()
            .assert_line("ok 60");
        let log = bus.finish_with_log();
        let gathered = gathered(&log);
        eprintln!("{label}: {gathered} requests gathered into batches");
        if receiver_env.is_empty() && relay_env.is_empty() {
            // All but the first, unless the receiver's read of the first cut the run.
            assert!(gathered >= 50, "{label}: {gathered} of 60 gathered");
        } else {
            assert_eq!(
                gathered, 0,
                "{label}: batches to a receiver that takes none"
            );
        }
    }
}

/// A relay that polls its root queue before sleeping (`mipc_main -p`) relays as one that
/// does not: 4 processes x 4 threads of checked sync calls, then 1000 async messages complete
/// and in order (the poll's window opens under the calls, and closes in the quiet spells).
#[test]
fn polling_relay_relays_the_same() {
    let mut bus = Bus::builder("polling_relay")
        .relay_args(&["-p", "50"])
        .start();
    stress(&mut bus, "", 4, 4, 200);
    async_order(&mut bus);
    bus.finish();
}

/// A binary linked against another libmipc.so fails with it and works once our library is
/// preloaded in front of it.
#[test]
fn ld_preload_replaces_the_vendor_library() {
    let stub_dir = c_build_dir().join("stub");
    c_program("stub/libmipc.so");
    let real = release_lib_dir().join("libmipc.so");
    assert!(
        real.exists(),
        "{} is missing: run `cargo build --release`",
        real.display()
    );
    let stub_dir = stub_dir.to_str().expect("utf-8 path");
    let real = real.to_str().expect("utf-8 path");

    let mut bus = Bus::start("ld_preload");
    let plain = bus.spawn_env("preload_probe", &[], &[("LD_LIBRARY_PATH", stub_dir)]);
    let plain = bus.wait_exit(plain);
    assert!(
        !plain.status.success(),
        "the stub run should fail: {}",
        plain.describe()
    );
    assert!(plain.has_line("version stub"), "{}", plain.describe());
    assert!(
        plain.stderr.contains("stub: mipc_init"),
        "{}",
        plain.describe()
    );

    let preloaded = bus.spawn_env(
        "preload_probe",
        &[],
        &[("LD_LIBRARY_PATH", stub_dir), ("LD_PRELOAD", real)],
    );
    let preloaded = bus.wait_exit(preloaded);
    preloaded
        .assert_success()
        .assert_line("ping mipc_main -> MIPC_OK");
    assert!(
        !preloaded.has_line("version stub"),
        "{}",
        preloaded.describe()
    );
    assert!(
        !preloaded.stderr.contains("stub:"),
        "{}",
        preloaded.describe()
    );
    bus.finish();
}

/// A legacy peer (raw msgsnd/msgrcv, SPEC §2 bytes only) calls a library server.
#[test]
fn legacy_peer_calls_a_library_server() {
    let mut bus = Bus::start("legacy_caller");
    let server = bus.spawn_ready("middleware_server", &[]);
    bus.run("legacy_peer", &["call", "legacy_caller"])
        .assert_success()
        .assert_line("ok 9");
    let server = bus.kill(server);
    let inserts = server
        .stdout
        .iter()
        .filter(|l| l.contains(" from legacy_caller -> ret "))
        .count();
    assert_eq!(inserts, 2, "{}", server.describe());
    bus.finish();
}

/// A library client calls a legacy server, which then exits on SIGTERM and removes its
/// own queue.
#[test]
fn library_client_calls_a_legacy_server() {
    let mut bus = Bus::start("legacy_server");
    let server = bus.spawn_ready("legacy_peer", &["serve", "legacy_srv"]);
    bus.run("middleware_client", &["legacy_srv", "lib_client"])
        .assert_success()
        .assert_line("ok 7");
    bus.signal(server, libc::SIGTERM);
    bus.wait_exit(server)
        .assert_success()
        .assert_line("served 7");
    bus.finish();
}

/// Every error case of the C API, from C (needs a middleware server for the good calls).
#[test]
fn errors_from_c() {
    errors(Bus::start("errors"), "");
}

fn errors(mut bus: Bus, dir: &str) {
    let env: &[(&str, &str)] = if dir.is_empty() { &[] } else { &ASAN_ENV };
    let server = bus.spawn_env(&format!("{dir}middleware_server"), &[], env);
    bus.wait_ready(server);
    let id = bus.spawn_env(&format!("{dir}errors"), &[], env);
    let out = bus.wait_exit(id);
    out.assert_errors_passed();
    let server = bus.kill(server);
    assert!(!server.stderr.contains("BUG"), "{}", server.describe());
    bus.finish();
}

/// c-tests/cancel.c: threads blocked in `mipc_mq_receive` and `mipc_send_sync_msg` without
/// timeout are cancelled there with `pthread_cancel` and joined while the process goes on
/// (the library once aborted it); a timed sync call gets its answer and is cancelled after;
/// a signal during a sync call does not end it (the answer arrives byte for byte); a timed
/// receive hit by a signal every 10 ms still ends at its timeout; a thread that gets an
/// ended thread's `pthread_t` does not inherit its entry.
#[test]
fn cancel_and_signals() {
    let mut bus = Bus::start("cancel");
    let id = bus.spawn("cancel", &[]);
    let out = bus.wait_exit(id);
    out.assert_errors_passed().assert_line("ok 6");
    bus.finish();
}

/// The error cases again, built with ASan + UBSan.
#[test]
fn errors_under_asan() {
    if skipped_when_emulated("errors_under_asan", "ASan needs the host's runtime") {
        return;
    }
    errors(Bus::start("errors_asan"), "asan/");
}

/// The error cases again, under valgrind (skipped, with a note, where it is not installed).
#[test]
fn errors_under_valgrind() {
    if skipped_when_emulated("errors_under_valgrind", "valgrind runs host programs only") {
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("errors_under_valgrind: valgrind is not installed, not run");
        return;
    }
    let mut bus = Bus::start("errors_valgrind");
    let server = bus.spawn_ready("middleware_server", &[]);
    let mut cmd = Command::new("valgrind");
    cmd.args(["-q", "--error-exitcode=99", "--track-origins=yes"])
        .arg(c_program("errors"));
    let id = bus.spawn_command("valgrind errors", cmd);
    let out = bus.wait_exit(id);
    out.assert_success();
    assert!(out.last_line().starts_with("ok "), "{}", out.describe());
    bus.kill(server);
    bus.finish();
}

/// A smaller stress run, built with ASan + UBSan.
#[test]
fn stress_under_asan() {
    if skipped_when_emulated("stress_under_asan", "ASan needs the host's runtime") {
        return;
    }
    let mut bus = Bus::start("stress_asan");
    stress(&mut bus, "asan/", 2, 4, 50);
    bus.finish();
}

/// Programs killed in the middle of their calls, a server among them: the relay keeps
/// serving, and on exit it removes every queue they left (SPEC §1 weakness: dead process).
#[test]
fn dead_process_queues_are_removed() {
    let mut bus = Bus::start("dead_process");
    let server = bus.spawn_ready("middleware_server", &[]);
    let alarm = bus.spawn_ready("alarm_apm", &[]);
    let busy = bus.spawn_ready("stress_client", &["4", "1000000", "dead"]);
    bus.kill(busy);
    bus.kill(alarm);
    bus.run("middleware_client", &[])
        .assert_success()
        .assert_line("ok 7");
    bus.kill(server);
    bus.finish();
}

/// A legacy peer killed with SIGKILL cannot remove its queue: the relay must.
#[test]
fn dead_legacy_peer_queue_is_removed() {
    // The relay learns a legacy peer's pid from its queue's msg_lrpid (IPC_STAT).
    if common::last_reader_unknown() {
        eprintln!(
            "dead_legacy_peer_queue_is_removed: skipped under qemu-aarch64: msg_lrpid reads 0"
        );
        return;
    }
    let mut bus = Bus::start("dead_legacy");
    let peer = bus.spawn_ready("legacy_peer", &["serve", "legacy_dead"]);
    bus.kill(peer);
    bus.finish();
}

/// The C compiler's view of mipc.h equals Rust's `mipc::wire` and the numbers of SPEC §2.
#[test]
fn layout_matches_rust_and_spec() {
    use core::mem::{offset_of, size_of};
    use mipc::wire::{self, sysV_msg, sysV_msg_payload, MIPC_MSG_HDR_T, MIPC_THREAD_INFO_T};

    // In cross mode the C side is the target's: only the target's own test binary (run
    // under qemu by cargo's runner, make test-cross) has the Rust side to compare with.
    if let Ok(triple) = std::env::var("MIPC_TEST_TARGET") {
        let arch = triple.split('-').next().unwrap_or("");
        let own = std::env::consts::ARCH;
        if arch != own && !(own == "arm" && arch.starts_with("arm")) {
            eprintln!(
                "layout_matches_rust_and_spec: skipped for {triple} in this {own} binary: \
                 the {triple} test binary checks it"
            );
            return;
        }
    }
    let out = target_command(&c_program("layout"), None)
        .output()
        .expect("run layout");
    assert!(out.status.success(), "layout failed: {out:?}");
    let printed: BTreeMap<String, i64> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("number"))
        })
        .collect();

    let n = |v: usize| v as i64;
    let rust: BTreeMap<String, i64> = [
        ("sizeof(long)", n(size_of::<libc::c_long>())),
        ("sizeof(pthread_t)", n(size_of::<libc::pthread_t>())),
        ("sizeof(MIPC_MSG_HDR_T)", n(size_of::<MIPC_MSG_HDR_T>())),
        (
            "offsetof(MIPC_MSG_HDR_T,msg_type)",
            n(offset_of!(MIPC_MSG_HDR_T, msg_type)),
        ),
        (
            "offsetof(MIPC_MSG_HDR_T,msg_size)",
            n(offset_of!(MIPC_MSG_HDR_T, msg_size)),
        ),
        (
            "offsetof(MIPC_MSG_HDR_T,sync_flag)",
            n(offset_of!(MIPC_MSG_HDR_T, sync_flag)),
        ),
        (
            "sizeof(sysV_msg_payload_t)",
            n(size_of::<sysV_msg_payload>()),
        ),
        (
            "offsetof(sysV_msg_payload_t,src_name)",
            n(offset_of!(sysV_msg_payload, src_name)),
        ),
        (
            "offsetof(sysV_msg_payload_t,dst_name)",
            n(offset_of!(sysV_msg_payload, dst_name)),
        ),
        (
            "offsetof(sysV_msg_payload_t,msg_hdr)",
            n(offset_of!(sysV_msg_payload, msg_hdr)),
        ),
        (
            "offsetof(sysV_msg_payload_t,payload)",
            n(offset_of!(sysV_msg_payload, payload)),
        ),
        ("sizeof(sysV_msg_t)", n(size_of::<sysV_msg>())),
        ("offsetof(sysV_msg_t,type)", n(offset_of!(sysV_msg, r#type))),
        (
            "offsetof(sysV_msg_t,msg_payload)",
            n(offset_of!(sysV_msg, msg_payload)),
        ),
        (
            "sizeof(MIPC_THREAD_INFO_T)",
            n(size_of::<MIPC_THREAD_INFO_T>()),
        ),
        (
            "offsetof(MIPC_THREAD_INFO_T,flag_is_hold)",
            n(offset_of!(MIPC_THREAD_INFO_T, flag_is_hold)),
        ),
        (
            "offsetof(MIPC_THREAD_INFO_T,thread_id)",
            n(offset_of!(MIPC_THREAD_INFO_T, thread_id)),
        ),
        (
            "offsetof(MIPC_THREAD_INFO_T,name)",
            n(offset_of!(MIPC_THREAD_INFO_T, name)),
        ),
        (
            "offsetof(MIPC_THREAD_INFO_T,mqd)",
            n(offset_of!(MIPC_THREAD_INFO_T, mqd)),
        ),
        ("MIPC_NAME_MAX_LEN", n(wire::MIPC_NAME_MAX_LEN)),
        ("MIPC_MSG_MAX_LEN", n(wire::MIPC_MSG_MAX_LEN)),
        ("MIPC_MSG_ROOT_KEY", i64::from(wire::MIPC_MSG_ROOT_KEY)),
        ("MIPC_OK", i64::from(wire::MIPC_OK)),
        ("MIPC_ERROR", i64::from(wire::MIPC_ERROR)),
        ("MIPC_TRUE", i64::from(wire::MIPC_TRUE)),
        ("MIPC_FALSE", i64::from(wire::MIPC_FALSE)),
        (
            "MIPC_MSG_SYNC_WAIT_FOREVER",
            i64::from(wire::MIPC_MSG_SYNC_WAIT_FOREVER),
        ),
        ("MIPC_USER_INFO_NUM", i64::from(wire::MIPC_USER_INFO_NUM)),
        ("MIPC_DEFAULT_MAX_MSG_SIZE", n(size_of::<sysV_msg>())),
        (
            "MIPC_MSG_TYPE_NOTICE",
            i64::from(wire::MIPC_MSG_TYPE_NOTICE),
        ),
        ("MIPC_MSG_TYPE_PING", i64::from(wire::MIPC_MSG_TYPE_PING)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        printed, rust,
        "C (left) and Rust (right) disagree on the wire layout"
    );

    // SPEC §2 numbers, independent of both implementations.
    let w = size_of::<libc::c_long>() as i64;
    let spec: &[(&str, i64)] = &[
        ("sizeof(sysV_msg_payload_t)", 2124),
        ("offsetof(sysV_msg_payload_t,payload)", 76),
        ("sizeof(sysV_msg_t)", if w == 8 { 2136 } else { 2128 }),
        ("sizeof(MIPC_THREAD_INFO_T)", if w == 8 { 56 } else { 44 }),
        ("offsetof(MIPC_THREAD_INFO_T,thread_id)", w),
        ("offsetof(MIPC_THREAD_INFO_T,name)", 2 * w),
        ("offsetof(MIPC_THREAD_INFO_T,mqd)", 2 * w + 32),
        ("MIPC_MSG_ROOT_KEY", 0x4D49_5043),
        ("MIPC_MSG_TYPE_NOTICE", 0x7FFF_FF00),
        ("MIPC_MSG_TYPE_PING", 0x7FFF_FF01),
    ];
    for (name, value) in spec {
        assert_eq!(printed[*name], *value, "{name} differs from SPEC §2");
    }
}

/// SPEC §2: a program relinked against this library works with a legacy relay that forwards
/// exactly the SPEC bytes (here the bench's minimal C relay). `mipc_init` gets no greeting,
/// so the entries speak only the legacy bytes, and the article's middleware example runs
/// through it with every answer checked byte for byte. A legacy relay does not clean up after
/// a killed daemon, so the harness's sweep removes the server's queue, not the relay.
#[test]
fn library_works_with_a_legacy_relay() {
    let limit = std::time::Duration::from_secs(60);
    let mut bus = Bus::start_with("legacy_relay", limit, &[("MIPC_TEST_RELAY", "crelay")]);
    let env = [("MIPC_HELLO_TIMEOUT_MS", "200")];
    let server = bus.spawn_env("middleware_server", &[], &env);
    bus.wait_ready(server);
    let client = bus.spawn_env("middleware_client", &[], &env);
    bus.wait_exit(client).assert_success().assert_line("ok 7");
    let server = bus.kill(server);
    assert!(!server.stderr.contains("BUG"), "{}", server.describe());
    let s = bus.shutdown();
    assert!(!s.watchdog_fired, "{}", s.relay_log);
}
