//! Guarantee 8 (docs/RELIABILITY.md): hostile arguments to every C function fail cleanly
//! (c-tests/errors.c under ASan and valgrind).

use crate::common::{c_program, emulated, skipped_when_emulated, target_command, Bus};
use crate::support::{serial, ASAN_ENV};
use std::process::Command;

fn run_errors(bus: &mut Bus, cmd: Command, label: &str) {
    let id = bus.spawn_command(label, cmd);
    let out = bus.wait_exit(id);
    out.assert_errors_passed();
    eprintln!("{label}: {}", out.last_line());
}

/// Every exported C function with NULL pointers, names of 31, 32 and 4000 bytes and
/// unterminated ones, payloads of 2048, 2049 and 2^31 bytes, out_size smaller than the answer,
/// closed, foreign and negative queue ids (c-tests/errors.c): MIPC_ERROR with its reason, no
/// crash; plain, with ASan + UBSan, and under valgrind (when installed; under an emulator, the
/// target's plain build only).
#[test]
fn hostile_arguments_from_c_fail_cleanly_under_asan_and_valgrind() {
    let _serial = serial();
    let mut bus = Bus::start("hostile_args");
    let server = bus.spawn_ready("middleware_server", &[]);
    run_errors(
        &mut bus,
        target_command(&c_program("errors"), None),
        "errors",
    );
    if !skipped_when_emulated(
        "errors under ASan and valgrind",
        "both need the host's programs",
    ) {
        let mut asan = Command::new(c_program("asan/errors"));
        asan.envs(ASAN_ENV);
        run_errors(&mut bus, asan, "errors (ASan+UBSan)");
        if Command::new("valgrind").arg("--version").output().is_ok() {
            let mut vg = Command::new("valgrind");
            vg.args(["-q", "--error-exitcode=99", "--track-origins=yes"])
                .arg(c_program("errors"));
            run_errors(&mut bus, vg, "errors (valgrind)");
        } else {
            eprintln!("valgrind is not installed: the valgrind run is skipped");
        }
    }
    let server = bus.kill(server);
    assert!(!server.stderr.contains("BUG"), "{}", server.describe());
    bus.finish();
}

/// `errors strict`: closed and foreign queue ids given to the two functions that only record
/// a queue (mthread_register_mq, mipc_user_thread_info_register) must fail too.
#[test]
fn hostile_arguments_closed_queue_ids_are_refused_by_every_function() {
    let _serial = serial();
    let mut bus = Bus::start("hostile_args_strict");
    let server = bus.spawn_ready("middleware_server", &[]);
    // Under an emulator, the target's plain build: ASan needs the host's runtime.
    let (mut cmd, label) = match emulated() {
        Some(_) => (
            target_command(&c_program("errors"), None),
            "errors strict (emulated)",
        ),
        None => {
            let mut cmd = Command::new(c_program("asan/errors"));
            cmd.envs(ASAN_ENV);
            (cmd, "errors strict (ASan+UBSan)")
        }
    };
    cmd.arg("strict");
    run_errors(&mut bus, cmd, label);
    bus.kill(server);
    bus.finish();
}
