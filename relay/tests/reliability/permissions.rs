//! Guarantee 9 (docs/RELIABILITY.md): queues are private by default, another user is kept out
//! unless the group mode lets it in, and a live name cannot be taken over.

use crate::common::{all_queues, c_program, emulated, target_command, Bus};
use crate::raw::notice;
use crate::support::{outcomes, probe, serial, OwnedQueue};
use std::os::unix::process::CommandExt;

fn mode_of(q: i32) -> u32 {
    all_queues()
        .iter()
        .find(|x| x.msqid == q)
        .map(|x| x.perms & 0o777)
        .unwrap_or_else(|| panic!("no queue {q}"))
}

fn root_mode(bus: &Bus) -> u32 {
    all_queues()
        .iter()
        .find(|x| x.key == bus.key())
        .map(|x| x.perms & 0o777)
        .expect("root queue")
}

/// Queues are 0600 by default; MIPC_QUEUE_MODE gives group bits but never world bits
/// (0666 becomes 0660), for the relay's root queue and the daemons' queues alike.
#[test]
fn queues_are_private_by_default_and_never_world_accessible() {
    let _serial = serial();
    let mut bus = Bus::start("modes_default");
    let (srv, q) = probe(&mut bus, "mode_srv", &[]);
    assert_eq!(root_mode(&bus), 0o600);
    assert_eq!(mode_of(q), 0o600);
    bus.kill(srv);
    bus.finish();

    for (asked, want) in [
        ("0660", 0o660),
        ("0666", 0o660),
        ("0777", 0o770),
        ("0", 0o600),
    ] {
        let mut bus = Bus::builder("modes_env")
            .relay_env(&[("MIPC_QUEUE_MODE", asked)])
            .start();
        assert_eq!(root_mode(&bus), want, "relay with MIPC_QUEUE_MODE={asked}");
        let id = bus.spawn_env(
            "probe_server",
            &["mode_srv", "-v"],
            &[("MIPC_QUEUE_MODE", asked)],
        );
        let line = bus.wait_line_starting(id, "ready");
        let q: i32 = line[6..].parse().unwrap();
        assert_eq!(mode_of(q), want, "daemon with MIPC_QUEUE_MODE={asked}");
        bus.kill(id);
        bus.finish();
    }
}

/// Another user cannot use a bus whose queues are 0600 (its mipc_init fails: permission
/// denied); with MIPC_QUEUE_MODE=0660, a user of the relay's group can.
#[test]
fn another_user_is_kept_out_unless_the_group_mode_lets_it_in() {
    let _serial = serial();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot start a program as another user; not run");
        return;
    }
    if let Some(dir) = emulator_prefix_closed_to_others() {
        eprintln!(
            "the emulator's loader prefix {} is not open to other users; not run",
            dir.display()
        );
        return;
    }
    for (mode, gid, allowed) in [
        ("0600", 65534u32, false),
        ("0660", 0, true),
        ("0660", 65534, false),
    ] {
        let mut bus = Bus::builder("other_user")
            .relay_env(&[("MIPC_QUEUE_MODE", mode)])
            .start();
        let mut cmd = target_command(&c_program("caller"), None);
        cmd.args(["stranger", "ping", "mipc_main", "1000"])
            .env("MIPC_INIT_TIMEOUT_MS", "1000")
            .env("MIPC_QUEUE_MODE", mode)
            .uid(65534)
            .gid(gid);
        let id = bus.spawn_command("caller as nobody", cmd);
        let out = bus.wait_exit(id);
        if allowed {
            out.assert_success();
            assert!(outcomes(&out)[0].ok, "{}", out.describe());
        } else {
            assert!(
                out.stdout
                    .iter()
                    .any(|l| l.starts_with("init failed") && l.contains("permission denied")),
                "mode {mode}, gid {gid}: {}",
                out.describe()
            );
        }
        eprintln!(
            "root queue {mode}, user 65534 group {gid}: {}",
            out.stdout.first().map(String::as_str).unwrap_or("")
        );
        bus.finish();
    }
}

/// A live entry's name cannot be registered by another process ("name in use"), its queue
/// cannot be claimed under another name, and it cannot be unregistered by a NOTICE that does
/// not name its queue; it keeps serving through all of it.
#[test]
fn live_name_cannot_be_taken_over_or_unregistered_by_another() {
    let _serial = serial();
    let mut bus = Bus::start("takeover");
    let (srv, q) = probe(&mut bus, "owned_srv", &[]);
    // Another daemon with the same name.
    let rival = bus.run("probe_server", &["owned_srv"]);
    assert!(
        rival.stdout.iter().any(|l| l.contains("name in use")),
        "{}",
        rival.describe()
    );
    // Hand-built NOTICEs: unregister with another queue, claim its queue under a new name,
    // register its name on another queue.
    let other = OwnedQueue::new();
    notice(&bus, "owned_srv", false, "owned_srv", other.0 .0);
    bus.wait_log("unregistration of owned_srv refused: not from its owner");
    notice(&bus, "thief", true, "thief", q);
    bus.wait_log("registration of thief refused: its queue belongs to owned_srv");
    notice(&bus, "owned_srv", true, "owned_srv", other.0 .0);
    bus.wait_log("registration of owned_srv refused: name in use");
    drop(other);
    let out = bus.run(
        "caller",
        &["check_cli", "call", "owned_srv", "1", "2000", "still mine"],
    );
    let o = outcomes(&out);
    assert!(o[0].ok && o[0].text == "still mine", "{}", out.describe());
    let thief = bus.run("caller", &["check_cli", "call", "thief", "1", "2000", "x"]);
    assert!(
        outcomes(&thief)[0].text.contains("no such destination"),
        "{}",
        thief.describe()
    );
    bus.kill(srv);
    bus.finish();
}

/// Under an emulator whose `-L` prefix (the target's loader and C library) lies where other
/// users cannot reach it (the musl targets' prefix under root's cache), that prefix.
fn emulator_prefix_closed_to_others() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exec = emulated()?;
    let mut words = exec.split_whitespace();
    words.find(|w| *w == "-L")?;
    let prefix = std::path::PathBuf::from(words.next()?);
    let open = prefix
        .ancestors()
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    (!open).then_some(prefix)
}
