//! Generates the C header `mipc.h` with cbindgen (configuration in `cbindgen.toml`).
//!
//! The header is written to `$OUT_DIR/mipc.h` on every build; the committed copy in
//! `include/mipc.h` is what C programs use, and a test fails when the two differ. Run
//! `make header` (or set `MIPC_WRITE_HEADER=1`) to refresh the committed copy.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("mipc.h");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=MIPC_WRITE_HEADER");
    // A versioned soname, so programs linked against this library record NEEDED libmipc.so.1.
    // Legacy binaries, linked against the vendor library (no SONAME), record NEEDED
    // libmipc.so: `make install` also installs that name, a link to libmipc.so.1, and the
    // Makefile's `lib` rule links target/<...>/release/libmipc.so.1 to cargo's libmipc.so.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmipc.so.1");
    raw_ipc_cfg();

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&out);
            if std::env::var_os("MIPC_WRITE_HEADER").is_some() {
                bindings.write_to_file(crate_dir.join("include/mipc.h"));
            }
        }
        // A half-edited source tree must not stop `cargo check`; the header test catches it.
        Err(e) => println!("cargo:warning=cbindgen could not generate mipc.h: {e}"),
    }
}

/// Sets `cfg(mipc_raw_ipc)` where `msgsnd` and `msgrcv` are system calls of their own
/// (Linux on x86_64, aarch64 and arm, whatever the C library), so `src/sysv.rs` can make
/// them without the C library's cancellation bookkeeping; elsewhere (i386, whose SysV calls
/// go through `ipc()`; x32) it calls the C library's functions.
fn raw_ipc_cfg() {
    println!("cargo::rustc-check-cfg=cfg(mipc_raw_ipc)");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let arch = var("CARGO_CFG_TARGET_ARCH");
    let raw = var("CARGO_CFG_TARGET_OS") == "linux"
        && match arch.as_str() {
            "x86_64" => var("CARGO_CFG_TARGET_POINTER_WIDTH") == "64",
            "aarch64" | "arm" => true,
            _ => false,
        };
    if raw {
        println!("cargo:rustc-cfg=mipc_raw_ipc");
    }
}
