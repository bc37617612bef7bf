//! Where the programs under test are (the C build folder, the release library) and how to
//! run them: directly, or under an emulator in cross mode (`target_command`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `c-tests/build/`, where `make c-tests` puts the C programs (`MIPC_TEST_C_BUILD` in cross
/// mode, see `target_command`).
pub fn c_build_dir() -> PathBuf {
    cross_path("MIPC_TEST_C_BUILD").unwrap_or_else(|| repo_root().join("c-tests").join("build"))
}

/// The directory of the release library the C programs link (`cargo build --release`;
/// `MIPC_TEST_LIB_DIR` in cross mode).
pub fn release_lib_dir() -> PathBuf {
    cross_path("MIPC_TEST_LIB_DIR").unwrap_or_else(|| repo_root().join("target").join("release"))
}

/// The top of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Cross mode (`make test-cross`, cross.mk): the C programs and the relay are built for
/// another architecture and run under an emulator, the kernel of this machine being unable to
/// start them (no binfmt_misc). The environment says where they are and how to run them:
/// `MIPC_TEST_C_BUILD` (the C build folder), `MIPC_TEST_LIB_DIR` (the library's folder),
/// `MIPC_TEST_RELAY_BIN` (`mipc_main`), and `MIPC_TEST_EXEC`, the command put in front of
/// every program (words split at spaces, e.g. `qemu-arm -L /usr/arm-linux-gnueabihf`).
/// Relative paths are relative to the top of the repository.
///
/// This returns the command that starts `program` (through `exec`, else `MIPC_TEST_EXEC`,
/// else directly).
pub fn target_command(program: &Path, exec: Option<&str>) -> Command {
    let exec = exec
        .map(str::to_string)
        .or_else(|| std::env::var("MIPC_TEST_EXEC").ok())
        .unwrap_or_default();
    let mut words = exec.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut cmd = Command::new(first);
            cmd.args(words).arg(program);
            // cargo's LD_LIBRARY_PATH names host libraries (a host libmipc.so among them),
            // which musl's loader would try and fail on instead of skipping.
            cmd.env_remove("LD_LIBRARY_PATH");
            cmd
        }
        None => Command::new(program),
    }
}

/// The reason the programs cannot do what a test needs (ASan, valgrind, host measurements)
/// when they run under an emulator (`MIPC_TEST_EXEC` set), printed by tests that skip then.
pub fn emulated() -> Option<String> {
    std::env::var("MIPC_TEST_EXEC")
        .ok()
        .filter(|e| !e.trim().is_empty())
}

/// In cross mode, prints why `test` does not run under the emulator and returns true (a
/// sanitizer build of the host, valgrind, a host measurement).
pub fn skipped_when_emulated(test: &str, why: &str) -> bool {
    match emulated() {
        Some(exec) => {
            eprintln!("{test}: skipped under `{exec}`: {why}");
            true
        }
        None => false,
    }
}

/// Whether `msg_lrpid` (the queue's last reader, from `IPC_STAT`) reads 0 here: qemu-user 7.2
/// returns 0 there for 64-bit targets (its target_msqid_ds has 8-byte pid fields), so an
/// emulated aarch64 program cannot learn who reads a queue, unlike one on real hardware.
/// What rests on it: the relay finding a legacy peer's pid, the library telling a stopped
/// relay at `mipc_init`.
pub fn last_reader_unknown() -> bool {
    emulated().is_some_and(|e| e.starts_with("qemu-aarch64"))
}

/// A path from the environment (cross mode), relative to the top of the repository.
pub(super) fn cross_path(var: &str) -> Option<PathBuf> {
    let v = std::env::var_os(var).filter(|v| !v.is_empty())?;
    Some(repo_root().join(v))
}

/// A C program (or file) under `c-tests/build/`; panics with what to run when it is missing.
pub fn c_program(rel: &str) -> PathBuf {
    let path = c_build_dir().join(rel);
    if !path.exists() {
        let make = if rel.starts_with("asan/") {
            "make c-tests-asan"
        } else {
            "make c-tests"
        };
        panic!(
            "{} is missing: build the C programs first (`cargo build --release && {make}`)",
            path.display()
        );
    }
    path
}
