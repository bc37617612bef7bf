//! Run-time settings read from the environment (SPEC §2: `MIPC_ROOT_KEY`).

use crate::wire::MIPC_MSG_ROOT_KEY;

/// Parses a key written in decimal or `0x` hex (SPEC §2), e.g. `1296650307` or `0x4D495043`.
pub fn parse_key(text: &str) -> Option<i32> {
    let t = text.trim();
    let value = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else {
        t.parse::<i64>().ok()?
    };
    // key_t is an int; accept the unsigned spelling of negative keys too.
    if (i32::MIN as i64..=u32::MAX as i64).contains(&value) && value != 0 {
        Some(value as u32 as i32)
    } else {
        None
    }
}

/// The root queue's key: `MIPC_ROOT_KEY` when set and valid, else `MIPC_MSG_ROOT_KEY`.
pub fn root_key() -> i32 {
    std::env::var("MIPC_ROOT_KEY")
        .ok()
        .and_then(|v| parse_key(&v))
        .unwrap_or(MIPC_MSG_ROOT_KEY)
}

/// Permission bits for the queues we create: `MIPC_QUEUE_MODE` (octal, e.g. `0660`) when
/// set, else `0600`. Bits for "others" are never granted: no queue of ours is world-writable.
pub fn queue_mode() -> u32 {
    std::env::var("MIPC_QUEUE_MODE")
        .ok()
        .and_then(|v| u32::from_str_radix(v.trim().trim_start_matches("0o"), 8).ok())
        .map(|m| m & 0o770)
        .unwrap_or(0o600)
        | 0o600
}

/// Whether this process may use the mipc-rs extensions (call tags, error answers). Set
/// `MIPC_LEGACY_WIRE=1` to speak only the exact SPEC §2 bytes, e.g. for a program that reads
/// its queue with raw `msgrcv`.
pub fn extensions_enabled() -> bool {
    !matches!(
        std::env::var("MIPC_LEGACY_WIRE").as_deref(),
        Ok("1") | Ok("yes") | Ok("true")
    )
}

/// Whether this process asks the relay for batches (`MIPC_BATCH=0`: no; docs/PROTOCOL.md
/// §10). The library takes them apart, so only a program that bypasses it on its own queue
/// (which needs `MIPC_LEGACY_WIRE=1` anyway) could tell.
pub fn batches_enabled() -> bool {
    !matches!(
        std::env::var("MIPC_BATCH").as_deref(),
        Ok("0") | Ok("no") | Ok("false")
    )
}

/// Whether this process's servers answer a sync call straight to its caller's queue when the
/// relay offers it (`MIPC_ANSWER_BACK=0`: no; docs/PROTOCOL.md §11).
pub fn answer_back_enabled() -> bool {
    static ON: once_cell::sync::Lazy<bool> = once_cell::sync::Lazy::new(|| {
        !matches!(
            std::env::var("MIPC_ANSWER_BACK").as_deref(),
            Ok("0") | Ok("no") | Ok("false")
        )
    });
    *ON
}

/// Whether sync calls of this process may go straight to the server's queue
/// (`MIPC_DIRECT=1`; see `direct.rs`).
pub fn direct_enabled() -> bool {
    matches!(
        std::env::var("MIPC_DIRECT").as_deref(),
        Ok("1") | Ok("yes") | Ok("true")
    )
}

/// How long `mipc_init` waits for a relay's greeting before it treats the relay as a
/// legacy one: `MIPC_HELLO_TIMEOUT_MS`, default 500 ms.
pub fn hello_timeout_ms() -> i32 {
    std::env::var("MIPC_HELLO_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(500)
}

/// How long `mipc_init` waits for the relay's root queue to exist: `MIPC_INIT_TIMEOUT_MS`,
/// default forever (the legacy behaviour), as `None`.
pub fn init_timeout_ms() -> Option<u64> {
    std::env::var("MIPC_INIT_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Where the relay keeps its files of a bus (name table, pending calls, routes page):
/// `MIPC_STATE_DIR`, else `/dev/shm`, else the temporary directory.
pub fn state_dir() -> std::path::PathBuf {
    use std::path::{Path, PathBuf};
    std::env::var_os("MIPC_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            }
        })
}

/// Default of `MIPC_SEND_TIMEOUT_MS`.
const SEND_TIMEOUT_DEFAULT_MS: u64 = 5000;
/// [`send_timeout`]'s default: where a bound is needed even when sends may wait forever.
pub const SEND_TIMEOUT_DEFAULT: std::time::Duration =
    std::time::Duration::from_millis(SEND_TIMEOUT_DEFAULT_MS);

/// How long a send waits for room on the relay's full root queue before it gives up with
/// "relay not draining its queue": `MIPC_SEND_TIMEOUT_MS` (milliseconds, `0` not at all,
/// `-1` forever as the original library did), default 5 s. `None` is forever. Read once
/// per process, on the first send that finds the root queue full.
pub fn send_timeout() -> Option<std::time::Duration> {
    static VALUE: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *VALUE.get_or_init(|| {
        let ms = std::env::var("MIPC_SEND_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|&v| v >= -1)
            .unwrap_or(SEND_TIMEOUT_DEFAULT_MS as i64);
        (ms >= 0).then(|| std::time::Duration::from_millis(ms as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_both_spellings() {
        assert_eq!(parse_key("0x4D495043"), Some(MIPC_MSG_ROOT_KEY));
        assert_eq!(parse_key("1296650307"), Some(MIPC_MSG_ROOT_KEY));
        assert_eq!(parse_key(" 0X10 "), Some(16));
        assert_eq!(parse_key("0xFFFFFFFF"), Some(-1));
        assert_eq!(parse_key("0"), None);
        assert_eq!(parse_key("abc"), None);
        assert_eq!(parse_key("0x1FFFFFFFF"), None);
    }
}
