//! Mixed 32/64-bit userlands on one bus: a relay of one architecture and peers of another,
//! as on a 64-bit ARM SoC running 32-bit vendor daemons beside 64-bit ones. The peers are a
//! legacy-style raw peer (`legacy_peer`: its NOTICE carries its own `MIPC_THREAD_INFO_T`, 44
//! bytes on armv7, 56 on 64-bit) and mipc-rs C programs; every pair registers, calls both
//! ways (also to a peer of the relay's own architecture), gets a backlog in batches,
//! unregisters, and dies with the relay removing what it left.
//!
//! The ARM programs are those of `make cross` (c-tests/build-<triple>/, target/<triple>/
//! release/mipc_main), run under qemu-user; the host's are those of `make`. Missing ARM builds
//! skip the test with a note, unless `MIPC_TEST_REQUIRE_CROSS=1` (make test-cross) is set.
//! Run: `make test-cross-mixed`.

mod common;

use common::{answered_back, default_limit, repo_root, target_command, Bus, ProcId};
use std::path::PathBuf;

/// One architecture's programs and how to start them.
struct Arch {
    name: &'static str,
    build: PathBuf,
    relay: PathBuf,
    exec: &'static str,
}

/// The programs of `name` ("host", "armv7", "aarch64"), or `None` (with a note) when they
/// are not built.
fn arch(name: &'static str) -> Option<Arch> {
    let root = repo_root();
    let (build, relay, exec) = match name {
        "host" => (
            root.join("c-tests/build"),
            PathBuf::from(env!("CARGO_BIN_EXE_mipc_main")),
            "",
        ),
        "armv7" => (
            root.join("c-tests/build-armv7-unknown-linux-gnueabihf"),
            root.join("target/armv7-unknown-linux-gnueabihf/release/mipc_main"),
            "qemu-arm -L /usr/arm-linux-gnueabihf",
        ),
        "aarch64" => (
            root.join("c-tests/build-aarch64-unknown-linux-gnu"),
            root.join("target/aarch64-unknown-linux-gnu/release/mipc_main"),
            "qemu-aarch64 -L /usr/aarch64-linux-gnu",
        ),
        other => panic!("no architecture {other}"),
    };
    let missing: Vec<PathBuf> = ["legacy_peer", "middleware_server", "middleware_client"]
        .iter()
        .map(|p| build.join(p))
        .chain([relay.clone()])
        .filter(|p| !p.exists())
        .collect();
    if !missing.is_empty() {
        let note = format!("{name} programs are not built ({missing:?}): run `make cross`");
        if std::env::var_os("MIPC_TEST_REQUIRE_CROSS").is_some() {
            panic!("{note}");
        }
        eprintln!("mixed_arch: skipped: {note}");
        return None;
    }
    Some(Arch {
        name,
        build,
        relay,
        exec,
    })
}

/// Starts `program` of `arch` on the bus.
fn spawn(bus: &mut Bus, arch: &Arch, program: &str, args: &[&str]) -> ProcId {
    let mut cmd = target_command(&arch.build.join(program), Some(arch.exec));
    cmd.args(args);
    bus.spawn_command(&format!("{} {program}", arch.name), cmd)
}

fn spawn_ready(bus: &mut Bus, arch: &Arch, program: &str, args: &[&str]) -> ProcId {
    let id = spawn(bus, arch, program, args);
    bus.wait_ready(id);
    id
}

/// The whole scenario for a relay of `relay_arch` and peers of `peer_arch`.
fn mixed(relay_arch: &'static str, peer_arch: &'static str) {
    let (Some(r), Some(p)) = (arch(relay_arch), arch(peer_arch)) else {
        return;
    };
    let label = format!("mixed_{relay_arch}_relay_{peer_arch}_peers");
    let relay_bin = r.relay.to_str().expect("utf-8 path").to_string();
    let mut bus = Bus::start_with(
        &label,
        default_limit(),
        &[
            ("MIPC_TEST_RELAY_BIN", &relay_bin),
            ("MIPC_TEST_RELAY_EXEC", r.exec),
            // Answers straight back to a lone caller too (the answer_back step below).
            ("MIPC_ANSWER_BACK", "always"),
        ],
    );

    // Registration by a raw NOTICE of the other word size, then calls to it from a mipc-rs
    // client of its own architecture and from one of the relay's.
    let legacy_srv = spawn_ready(&mut bus, &p, "legacy_peer", &["serve", "legacy_srv"]);
    for (a, name) in [(&p, "peer_client"), (&r, "relay_client")] {
        let id = spawn(&mut bus, a, "middleware_client", &["legacy_srv", name]);
        bus.wait_exit(id).assert_success().assert_line("ok 7");
    }

    // The other way: raw legacy callers of both architectures call a mipc-rs server of the
    // peers' architecture.
    let server = spawn_ready(&mut bus, &p, "middleware_server", &[]);
    for (a, name) in [(&p, "legacy_caller_p"), (&r, "legacy_caller_r")] {
        let id = spawn(&mut bus, a, "legacy_peer", &["call", name]);
        bus.wait_exit(id).assert_success().assert_line("ok 9");
    }

    // Batches across word sizes: a receiver of the peers' architecture falls behind (stopped)
    // while a sender of the relay's sends it 300 messages of 8 to 200 bytes. The relay holds
    // what its queue cannot and sends it in batches (the relay's `long` mtype first, the
    // receiver's once received), which the receiver's library takes apart: all 300 arrive,
    // each checked byte for byte, in order.
    let rx = spawn_ready(&mut bus, &p, "async_order", &["receive", "300", "200"]);
    bus.signal(rx, libc::SIGSTOP);
    let tx = spawn(
        &mut bus,
        &r,
        "async_order",
        &["send", "async_rx", "300", "200"],
    );
    bus.wait_exit(tx).assert_success().assert_line("sent 300");
    bus.signal(rx, libc::SIGCONT);
    bus.wait_exit(rx).assert_success().assert_line("ok 300");

    // Answers straight back across word sizes: a mipc-rs server of the peers' architecture
    // answers a mipc-rs caller of the relay's straight to its queue (the kernel gives each
    // side its own `long` mtype), byte for byte, and after the message it sent before the
    // answer (`c-tests/answer_back.c`): 50 rounds, each one call answered straight back, then
    // the call back, its answer and the last call.
    let ab_srv = spawn_ready(&mut bus, &p, "answer_back", &["serve"]);
    let ab_call = spawn(&mut bus, &r, "answer_back", &["call", "50"]);
    bus.wait_exit(ab_call).assert_success().assert_line("ok 50");
    bus.wait_exit(ab_srv)
        .assert_success()
        .assert_line("served 101");

    // Unregistration: the legacy server's NOTICE with flag_is_hold 0, then its name is gone.
    bus.signal(legacy_srv, libc::SIGTERM);
    bus.wait_exit(legacy_srv)
        .assert_success()
        .assert_line("served 14");
    let late = spawn(&mut bus, &p, "middleware_client", &["legacy_srv", "late"]);
    let late = bus.wait_exit(late);
    assert!(
        !late.status.success() && !late.has_line("ok 7"),
        "{label}: legacy_srv still answers after unregistering: {}",
        late.describe()
    );

    // Death: a registered legacy peer and the library server killed with SIGKILL; the relay
    // must drop their entries and remove their queues (Bus::finish checks none is left).
    // (Not on an aarch64 relay under qemu-user 7.2, whose IPC_STAT returns 0 as msg_lrpid
    // on 64-bit targets: the relay learns a legacy peer's pid from it. See c_scenarios.rs.)
    if relay_arch == "aarch64" {
        eprintln!("{label}: legacy peer death not checked: qemu-aarch64's msg_lrpid reads 0");
    } else {
        let dead = spawn_ready(&mut bus, &p, "legacy_peer", &["serve", "legacy_dead"]);
        bus.kill(dead);
    }
    bus.kill(server);
    let log = bus.relay_log();
    assert!(
        !log.contains("bad NOTICE"),
        "{label}: the relay refused a NOTICE:\n{log}"
    );
    let log = bus.finish_with_log();
    assert_eq!(
        answered_back(&log),
        53,
        "{label}: answered straight back\n{log}"
    );
}

/// armv7 (32-bit) daemons on a 64-bit ARM relay.
#[test]
fn armv7_peers_on_an_aarch64_relay() {
    mixed("aarch64", "armv7");
}

/// 64-bit ARM daemons on a 32-bit relay.
#[test]
fn aarch64_peers_on_an_armv7_relay() {
    mixed("armv7", "aarch64");
}

/// armv7 daemons on the host's (x86_64) relay.
#[test]
fn armv7_peers_on_a_host_relay() {
    mixed("host", "armv7");
}

/// aarch64 daemons on the host's (x86_64) relay.
#[test]
fn aarch64_peers_on_a_host_relay() {
    mixed("host", "aarch64");
}

/// Host daemons on an armv7 relay.
#[test]
fn host_peers_on_an_armv7_relay() {
    mixed("armv7", "host");
}
