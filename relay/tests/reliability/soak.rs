//! Guarantee 11 (docs/RELIABILITY.md): the soak, nothing lost or misdelivered.

use crate::common::{Bus, ProcId};
use crate::support::serial;
use std::time::{Duration, Instant};

/// 8 processes x 8 threads of stress_client against two middleware servers, in rounds: every
/// call's answer checked byte for byte (zero lost, zero misdelivered), no queue left behind,
/// and the relay's memory flat from the end of the first round to the end of the last (within
/// 512 KiB). Short by default; `MIPC_SOAK=long` (`make soak`) runs about a minute of traffic.
#[test]
fn soak_8_processes_8_threads_nothing_lost_or_misdelivered() {
    let _serial = serial();
    let long = std::env::var("MIPC_SOAK").is_ok_and(|v| v == "long");
    let (rounds, calls) = if long { (40, 1100) } else { (2, 60) };
    let mut bus = if long {
        Bus::builder("soak").limit(Duration::from_secs(900)).start()
    } else {
        Bus::start("soak")
    };
    let servers = [
        bus.spawn_ready("middleware_server", &["soak_mw0"]),
        bus.spawn_ready("middleware_server", &["soak_mw1"]),
    ];
    let calls_s = calls.to_string();
    let want = format!("ok {}", 8 * calls);
    let mut rss = Vec::new();
    let mut total = 0u64;
    let t0 = Instant::now();
    for round in 0..rounds {
        let procs: Vec<ProcId> = (0..8)
            .map(|p| {
                let prefix = format!("soak{p}");
                let server = format!("soak_mw{}", p % 2);
                bus.spawn("stress_client", &["8", &calls_s, &prefix, &server])
            })
            .collect();
        for id in procs {
            let out = bus.wait_exit(id);
            out.assert_success().assert_line(&want);
            total += 8 * calls as u64;
        }
        rss.push(bus.relay_rss_kib());
        if long {
            eprintln!(
                "soak round {}/{rounds}: {total} calls in {:?}, relay VmRSS {} KiB",
                round + 1,
                t0.elapsed(),
                rss[rss.len() - 1]
            );
        }
    }
    let spent = t0.elapsed();
    let left: Vec<_> = bus
        .queues()
        .into_iter()
        .filter(|q| q.key != bus.key())
        .collect();
    eprintln!(
        "soak: {rounds} rounds x 8 processes x 8 threads x {calls} calls = {total} calls in {spent:?} ({:.0} calls/s), 0 lost, 0 misdelivered; relay VmRSS per round {rss:?} KiB; {} queues open besides the root queue (the two servers')",
        total as f64 / spent.as_secs_f64(),
        left.len()
    );
    assert_eq!(total, rounds as u64 * 64 * calls as u64);
    assert_eq!(
        left.len(),
        2,
        "only the two servers' queues may be open: {left:?}"
    );
    let (first, last) = (rss[0], rss[rss.len() - 1]);
    assert!(
        last <= first + 512,
        "relay memory grew from {first} to {last} KiB over the soak: {rss:?}"
    );
    for s in servers {
        let out = bus.kill(s);
        assert!(!out.stderr.contains("BUG"), "{}", out.describe());
    }
    bus.finish();
}
