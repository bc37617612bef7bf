//! The shared library's ABI as a linker sees it: exactly the C functions of SPEC §3 plus our
//! additions are exported (nothing of Rust's leaks), and the SONAME is the versioned
//! `libmipc.so.1` (binaries linked against the vendor library, which has no SONAME, ask for
//! `libmipc.so`: `make install` installs that name too, scripts/test-install.sh checks it).

use std::path::PathBuf;
use std::process::Command;

fn lib() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libmipc.so");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release` (make all) first",
        p.display()
    );
    p
}

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .arg(lib())
        .output()
        .unwrap_or_else(|e| panic!("{name} (binutils) is needed: {e}"));
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn exports_exactly_the_c_api() {
    let mut got: Vec<String> = tool("nm", &["-D", "--defined-only"])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    got.sort();
    // The one list of exports, shared with the header test.
    let mut want: Vec<&str> = include_str!("../../src/ffi/exports.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    want.sort();
    assert_eq!(
        got, want,
        "the dynamic symbol table must hold the C API and nothing else"
    );
}

#[test]
fn soname_is_versioned() {
    let dump = tool("objdump", &["-p"]);
    let soname = dump
        .lines()
        .find(|l| l.trim_start().starts_with("SONAME"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string());
    assert_eq!(soname.as_deref(), Some("libmipc.so.1"));
}
