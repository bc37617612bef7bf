//! `mipc_main`: the MIPC relay daemon. Runs in the foreground; stop it with SIGTERM or SIGINT.
#![forbid(unsafe_code)]

use mipc_relay::daemon::{self, Options, DEFAULT_ROOT_QUEUE_BYTES};
use mipc_relay::poll::DEFAULT_POLL_US;
use mipc_relay::router::DEFAULT_MAX_ENTRIES;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str =
    "usage: mipc_main [-k KEY] [-m MODE] [-n MAX_ENTRIES] [-q BYTES] [-p US] [-l LEVEL] [--syslog]

Relays MIPC messages between registered entries over System V message queues. Runs in the
foreground (procd and systemd supervise it); with NOTIFY_SOCKET set (systemd Type=notify) it
sends READY=1 once the root queue is served.
  -k, --key KEY          root queue key, decimal or 0x hex (default: $MIPC_ROOT_KEY or 0x4D495043)
  -m, --mode MODE        root queue permission bits, octal (default: $MIPC_QUEUE_MODE or 0600)
  -n, --max-entries N    most registered entries (default 4096)
  -q, --queue-bytes N    root queue capacity in bytes, raised when the relay has
                         CAP_SYS_RESOURCE; 0 keeps the system's (kernel.msgmnb)
                         (default: $MIPC_ROOT_QUEUE_BYTES or 262144)
  -p, --poll-us N        poll the empty root queue up to N microseconds (adaptively)
                         before sleeping on it: saves wake-ups from other CPUs when
                         several callers keep the relay busy, costs CPU; 0: never
                         (default: $MIPC_POLL_US or 0)
  -l, --log LEVEL        error, warn, info or debug (default: $MIPC_LOG or info)
  -s, --syslog           log to syslog (/dev/log, facility daemon) instead of stderr
  -h, --help             this text
  -V, --version          version";

fn parse(args: &[String]) -> Result<Option<(Options, Option<String>)>, String> {
    let mut opts = Options {
        key: mipc::config::root_key(),
        mode: mipc::config::queue_mode(),
        max_entries: DEFAULT_MAX_ENTRIES,
        queue_bytes: std::env::var("MIPC_ROOT_QUEUE_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_ROOT_QUEUE_BYTES),
        poll: Duration::from_micros(
            std::env::var("MIPC_POLL_US")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_POLL_US),
        ),
    };
    let mut level = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().cloned().ok_or(format!("{a} needs {what}"));
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("mipc_main {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "-k" | "--key" => {
                let v = value("a key")?;
                opts.key = mipc::config::parse_key(&v).ok_or(format!("bad key {v:?}"))?;
            }
            "-m" | "--mode" => {
                let v = value("a mode")?;
                let m = u32::from_str_radix(&v, 8).map_err(|_| format!("bad mode {v:?}"))?;
                opts.mode = (m & 0o770) | 0o600;
            }
            "-n" | "--max-entries" => {
                let v = value("a number")?;
                opts.max_entries = v.parse().map_err(|_| format!("bad number {v:?}"))?;
            }
            "-q" | "--queue-bytes" => {
                let v = value("a number")?;
                opts.queue_bytes = v.parse().map_err(|_| format!("bad number {v:?}"))?;
            }
            "-p" | "--poll-us" => {
                let v = value("a number")?;
                let us = v.parse().map_err(|_| format!("bad number {v:?}"))?;
                opts.poll = Duration::from_micros(us);
            }
            "-l" | "--log" => level = Some(value("a level")?),
            "-s" | "--syslog" => {
                if !mipc_relay::syslog::open() {
                    return Err("--syslog: /dev/log is not reachable".to_string());
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some((opts, level)))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (opts, level) = match parse(&args) {
        Ok(Some(p)) => p,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mipc_main: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    mipc_relay::log::init(level.as_deref());
    // Messages parked per full destination (docs/PERFORMANCE.md: the trade-off of this bound).
    if let Some(n) = std::env::var("MIPC_BACKLOG_MAX")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        mipc_relay::backlog::set_item_limit(n);
    }
    // Parked one-way requests go out in batches to entries that take them, unless turned
    // off (docs/PROTOCOL.md §10).
    // The same values as the library's (`mipc::config::batches_enabled`).
    let off = |name| std::env::var(name).is_ok_and(|v| matches!(v.trim(), "0" | "no" | "false"));
    if off("MIPC_BATCH") {
        mipc_relay::backlog::set_batching(false);
        mipc_relay::router::set_gathering(false);
    }
    // Requests read one after another for one entry go in one batch (`router/gather.rs`),
    // unless turned off on its own.
    if off("MIPC_GATHER") {
        mipc_relay::router::set_gathering(false);
    }
    // Servers may answer sync calls straight to their callers' queues (docs/PROTOCOL.md §11)
    // while several callers share the relay; `always` offers it to lone callers too.
    if off("MIPC_ANSWER_BACK") {
        mipc_relay::router::set_answering_back(mipc_relay::router::Offering::Never);
    } else if std::env::var("MIPC_ANSWER_BACK").is_ok_and(|v| v.trim() == "always") {
        mipc_relay::router::set_answering_back(mipc_relay::router::Offering::Always);
    }
    // A panic in any relay thread ends the process: no half-alive relay.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    match daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mipc_main: error: {e}");
            ExitCode::FAILURE
        }
    }
}
