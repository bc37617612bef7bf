//! The tables `mipc list` and `mipc stats` print, for people and as JSON.

use crate::events;
use crate::json::{self, Object};
use mipc::wire::tool::{counter_name, Counter, EntryInfo, StatsReport, ENTRY_SUBS_TRUNCATED};

fn since_text(secs: u64) -> String {
    let t = events::rfc3339(secs * 1_000_000_000);
    format!("{} {}", &t[..10], &t[11..19])
}

pub fn entry_json(e: &EntryInfo, verbose: bool) -> String {
    let mut o = Object::new()
        .str("name", &e.name.to_string())
        .num("pid", e.pid)
        .num("thread", e.thread)
        .num("queue", e.queue)
        .num("queued_msgs", e.queued_msgs)
        .num("queued_bytes", e.queued_bytes)
        .str("kind", if e.greeted() { "greeted" } else { "legacy" })
        .num("since", e.since)
        .raw("subscriptions", &subscriptions_json(e));
    if verbose {
        o = o
            .num("msgs_in", e.msgs_in)
            .num("msgs_out", e.msgs_out)
            .num("bytes_in", e.bytes_in)
            .num("bytes_out", e.bytes_out)
            .num("held", e.backlog);
    }
    o.end()
}

fn subscriptions_json(e: &EntryInfo) -> String {
    json::array(e.subscriptions.iter().map(|s| {
        let mut q = String::new();
        json::string_into(&mut q, &s.to_string());
        q
    }))
}

/// The SUBSCRIPTIONS cell: the patterns comma-separated, `...` when the relay cut the list,
/// `-` for none.
fn subscriptions_text(e: &EntryInfo) -> String {
    if e.subscriptions.is_empty() {
        return "-".into();
    }
    let mut t = e
        .subscriptions
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if e.flags & ENTRY_SUBS_TRUNCATED != 0 {
        t.push_str(",...");
    }
    t
}

pub fn list_text(entries: &[EntryInfo], verbose: bool) -> String {
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(entries.len() + 1);
    let mut head: Vec<&str> = vec![
        "NAME",
        "PID",
        "THREAD",
        "QUEUE",
        "MSGS",
        "BYTES",
        "KIND",
        "SINCE (UTC)",
    ];
    if verbose {
        head.extend([
            "IN",
            "OUT",
            "BYTES_IN",
            "BYTES_OUT",
            "HELD",
            "SUBSCRIPTIONS",
        ]);
    }
    rows.push(head.iter().map(|s| s.to_string()).collect());
    for e in entries {
        let mut r = vec![
            e.name.to_string(),
            if e.pid > 0 {
                e.pid.to_string()
            } else {
                "-".into()
            },
            format!("{:#x}", e.thread),
            e.queue.to_string(),
            e.queued_msgs.to_string(),
            e.queued_bytes.to_string(),
            if e.greeted() { "greeted" } else { "legacy" }.into(),
            since_text(e.since),
        ];
        if verbose {
            r.extend([
                e.msgs_in.to_string(),
                e.msgs_out.to_string(),
                e.bytes_in.to_string(),
                e.bytes_out.to_string(),
                e.backlog.to_string(),
                subscriptions_text(e),
            ]);
        }
        rows.push(r);
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            // Names and kinds left-aligned, numbers right-aligned.
            let left = matches!(c, 0 | 2 | 6 | 7 | 13);
            if c > 0 {
                line.push_str("  ");
            }
            if left {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                line.push_str(&format!("{cell:>w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("{} entries\n", entries.len()));
    out
}

fn duration_text(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h {m:02}m {s:02}s")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

fn bytes_text(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The relay's counters as lines for people.
pub fn stats_text(r: &StatsReport) -> String {
    use mipc::wire::tool::{reject_counter_id, RejectReason};
    const ORDER: [Counter; 15] = [
        Counter::Uptime,
        Counter::Entries,
        Counter::Registrations,
        Counter::Deaths,
        Counter::Forwarded,
        Counter::ForwardedBytes,
        Counter::Parked,
        Counter::Batched,
        Counter::Backlog,
        Counter::Gathered,
        Counter::AnsweredBack,
        Counter::Rejected,
        Counter::ErrorsAnswered,
        Counter::Monitors,
        Counter::MonitorLost,
    ];
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<24}{v}\n"));
    for c in ORDER {
        let Some(v) = r.get(c as u32) else { continue };
        let shown = match c {
            Counter::Uptime => duration_text(v),
            Counter::ForwardedBytes => bytes_text(v),
            _ => v.to_string(),
        };
        line(c.label(), shown);
        if c == Counter::Rejected {
            for reason in RejectReason::ALL {
                let n = r.get(reject_counter_id(reason)).unwrap_or(0);
                if n > 0 {
                    line(
                        &format!("  {}", reason.name().replace('_', " ")),
                        n.to_string(),
                    );
                }
            }
        }
    }
    // Counters of a newer relay, by number.
    for (id, v) in &r.counters {
        let known = Counter::ALL.iter().any(|c| *c as u32 == *id)
            || id
                .checked_sub(100)
                .and_then(|c| RejectReason::from_code(c as i32))
                .is_some();
        if !known {
            line(&counter_name(*id), v.to_string());
        }
    }
    if !r.backlog.is_empty() {
        out.push_str("held for full queues:\n");
        for (n, c) in &r.backlog {
            out.push_str(&format!("  {:<22}{c}\n", n.to_string()));
        }
    }
    out
}
