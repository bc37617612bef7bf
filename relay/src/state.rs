//! The name table on disk, so that a relay killed with SIGKILL and started again knows every
//! registered entry without the daemons registering again (the root queue, with whatever was
//! sent meanwhile, outlives the relay by itself: SysV queues are kernel-persistent).
//!
//! One small text file per bus, `$MIPC_STATE_DIR/mipc-<key>.entries` (default `/dev/shm`,
//! else `/tmp`): a snapshot of the table followed by a log of changes, one line each
//! (`+ name queue pid ext thread` for an entry added or changed, `- name` for one removed,
//! `s name pattern` / `u name pattern` for a subscription made or dropped; removing an entry
//! drops its subscriptions).
//! A registration appends one line; when the log grows past twice the table, the file is
//! written anew (write, then rename). Nothing of this is on the message path. Names are
//! hex-encoded: they may hold any byte but NUL. A line cut short by a crash is skipped.

use crate::router::{Changes, Entry, Router};
use mipc::events::EventPattern;
use mipc::sysv::QueueId;
use mipc::MipcName;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::io::Write as _;
use std::path::{Path, PathBuf};

const MAGIC: &str = "mipc-entries 1";

/// The state file of the bus with root key `key`.
pub fn path(key: i32) -> PathBuf {
    mipc::config::state_dir().join(format!("mipc-{:08x}.entries", key as u32))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn entry_line(name: &MipcName, e: &Entry) -> String {
    format!(
        "+ {} {} {} {} {}\n",
        hex(name.as_bytes()),
        e.queue.0,
        e.pid.unwrap_or(0),
        // 0 legacy, 1 greeted, 2 greeted and asking for sender trailers, 3 and 4 as 1 and 2
        // and taking batches (an older relay reading 2 to 4 takes the entry for a legacy
        // one, or one without trailers: it sends it nothing it did not ask for).
        if e.ext {
            1 + u8::from(e.sender) + 2 * u8::from(e.batch)
        } else {
            0
        },
        e.thread_id
    )
}

/// The file's text for these entries (a snapshot, no log).
pub fn encode<'a>(entries: impl Iterator<Item = (&'a MipcName, &'a Entry)>) -> String {
    let mut out = String::from(MAGIC);
    out.push('\n');
    for (name, e) in entries {
        out.push_str(&entry_line(name, e));
    }
    out
}

fn parse_entry(fields: &[&str]) -> Option<(MipcName, Entry)> {
    let [name, queue, pid, ext, tid] = fields else {
        return None;
    };
    let name = MipcName::new(&unhex(name)?).ok()?;
    let queue: i32 = queue.parse().ok().filter(|q| *q >= 0)?;
    let pid: i32 = pid.parse().ok()?;
    Some((
        name,
        Entry {
            queue: QueueId(queue),
            pid: (pid > 0).then_some(pid),
            ext: matches!(*ext, "1" | "2" | "3" | "4"),
            sender: matches!(*ext, "2" | "4"),
            batch: matches!(*ext, "3" | "4"),
            answer_back: false,
            reads: 0,
            thread_id: tid.parse().ok()?,
            pending: None,
            seen: Default::default(),
        },
    ))
}

/// Entries read back from the file's text: the snapshot with the log applied in order; lines
/// that do not parse are skipped. For tests (the relay reads through `load`).
#[cfg(any(test, feature = "testing"))]
pub fn decode(text: &str) -> Vec<(MipcName, Entry)> {
    decode_counted(text).0
}

/// Subscriptions read back from the file's text, as [`decode`] reads entries. For tests.
#[cfg(any(test, feature = "testing"))]
pub fn decode_subscriptions(text: &str) -> Vec<(MipcName, EventPattern)> {
    decode_counted(text).1
}

fn subscription_line(mark: char, name: &MipcName, p: &EventPattern) -> String {
    format!("{mark} {} {}\n", hex(name.as_bytes()), hex(p.as_bytes()))
}

fn parse_subscription(name: &str, pattern: &str) -> Option<(MipcName, EventPattern)> {
    let name = MipcName::new(&unhex(name)?).ok()?;
    let pattern = EventPattern::new(&unhex(pattern)?).ok()?;
    Some((name, pattern))
}

/// Entries, subscriptions, and how many lines.
type Decoded = (Vec<(MipcName, Entry)>, Vec<(MipcName, EventPattern)>, usize);

fn decode_counted(text: &str) -> Decoded {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return (Vec::new(), Vec::new(), 0);
    }
    let mut order: Vec<MipcName> = Vec::new();
    let mut table: HashMap<MipcName, Entry> = HashMap::new();
    let mut subs: Vec<(MipcName, EventPattern)> = Vec::new();
    let mut count = 0;
    for line in lines {
        count += 1;
        let f: Vec<&str> = line.split(' ').collect();
        match f.split_first() {
            Some((&"-", [name])) => {
                if let Some(n) = unhex(name).and_then(|b| MipcName::new(&b).ok()) {
                    table.remove(&n);
                    subs.retain(|(who, _)| *who != n);
                }
            }
            Some((&"s", [name, pattern])) => {
                if let Some(s) = parse_subscription(name, pattern) {
                    if !subs.contains(&s) {
                        subs.push(s);
                    }
                }
            }
            Some((&"u", [name, pattern])) => {
                if let Some(s) = parse_subscription(name, pattern) {
                    subs.retain(|x| *x != s);
                }
            }
            Some((&"+", rest)) => {
                if let Some((n, e)) = parse_entry(rest) {
                    if table.insert(n, e).is_none() {
                        order.push(n);
                    }
                }
            }
            // The first format had no marks: a snapshot line.
            _ => {
                if let Some((n, e)) = parse_entry(&f) {
                    if table.insert(n, e).is_none() {
                        order.push(n);
                    }
                }
            }
        }
    }
    subs.retain(|(who, _)| table.contains_key(who));
    let out = order
        .into_iter()
        .filter_map(|n| table.remove(&n).map(|e| (n, e)))
        .collect();
    (out, subs, count)
}

/// The state file of one bus, and how long its log has grown.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    lines: usize,
    /// The subscriptions [`Store::load`] read, until taken.
    subscriptions: Vec<(MipcName, EventPattern)>,
}

impl Store {
    /// The store at `path`.
    pub fn new(path: PathBuf) -> Store {
        Store {
            path,
            lines: 0,
            subscriptions: Vec::new(),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries saved by an earlier relay of this bus (none when there is no file).
    pub fn load(&mut self) -> Vec<(MipcName, Entry)> {
        let (entries, subscriptions, lines) = std::fs::read_to_string(&self.path)
            .map(|t| decode_counted(&t))
            .unwrap_or_default();
        self.lines = lines;
        self.subscriptions = subscriptions;
        entries
    }

    /// The subscriptions the last [`Store::load`] read (once).
    pub fn take_subscriptions(&mut self) -> Vec<(MipcName, EventPattern)> {
        std::mem::take(&mut self.subscriptions)
    }

    /// Saves `changes` of `router`'s table: a line per change, or the whole table anew when
    /// asked to or when the log has grown past twice the table.
    ///
    /// # Errors
    /// When the directory is not writable.
    pub fn record(&mut self, router: &Router, changes: Changes) -> io::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let n = router.entries().count() + router.subscriptions().count();
        let more = changes.names.len() + changes.subscriptions.len();
        if changes.rewrite || self.lines + more > 2 * n + 64 {
            let mut text = encode(router.entries());
            for (who, p) in router.subscriptions() {
                text.push_str(&subscription_line('s', who, p));
            }
            save(&self.path, &text)?;
            self.lines = n;
            return Ok(());
        }
        let mut text = String::new();
        for name in &changes.names {
            match router.entry(name) {
                Some(e) => text.push_str(&entry_line(name, e)),
                None => text.push_str(&format!("- {}\n", hex(name.as_bytes()))),
            }
        }
        for (who, p, on) in &changes.subscriptions {
            text.push_str(&subscription_line(if *on { 's' } else { 'u' }, who, p));
        }
        if self.lines == 0 && !self.path.exists() {
            text.insert_str(0, &format!("{MAGIC}\n"));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        self.lines += more;
        Ok(())
    }

    /// Removes the file (a clean stop with no entry left).
    pub fn remove(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        self.lines = 0;
    }
}

/// Writes the file atomically (a reader never sees half of it).
///
/// # Errors
/// When the directory is not writable.
pub fn save(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("entries.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_field() {
        let name = MipcName::new(b"odd name\twith\nbytes").unwrap();
        let e = Entry {
            queue: QueueId(42),
            pid: Some(1234),
            ext: true,
            sender: true,
            batch: true,
            answer_back: false,
            reads: 0,
            thread_id: u64::MAX,
            pending: None,
            seen: Default::default(),
        };
        let legacy = MipcName::new(b"legacy").unwrap();
        let l = Entry {
            queue: QueueId(0),
            pid: None,
            ext: false,
            sender: false,
            batch: false,
            answer_back: false,
            reads: 0,
            thread_id: 7,
            pending: None,
            seen: Default::default(),
        };
        let text = encode([(&name, &e), (&legacy, &l)].into_iter());
        assert_eq!(decode(&text), vec![(name, e.clone()), (legacy, l)]);
        // Every greeted entry's pair of asks survives too.
        for (sender, batch) in [(false, false), (true, false), (false, true), (true, true)] {
            let g = Entry {
                sender,
                batch,
                ..e.clone()
            };
            let text = encode([(&name, &g)].into_iter());
            assert_eq!(
                decode(&text),
                vec![(name, g)],
                "sender {sender} batch {batch}"
            );
        }
    }

    #[test]
    fn an_older_relays_file_reads_without_batches() {
        let text = format!("{MAGIC}\n+ 61 3 77 2 9\n+ 62 4 78 1 9\n");
        let got = decode(&text);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, e)| e.ext && !e.batch));
        assert!(got[0].1.sender && !got[1].1.sender);
    }

    #[test]
    fn subscriptions_follow_their_entries() {
        let a = MipcName::new(b"a").unwrap();
        let b = MipcName::new(b"b").unwrap();
        let e = Entry {
            queue: QueueId(1),
            pid: Some(5),
            ext: true,
            sender: true,
            batch: true,
            answer_back: false,
            reads: 0,
            thread_id: 1,
            pending: None,
            seen: Default::default(),
        };
        let p = |s: &str| EventPattern::new(s.as_bytes()).unwrap();
        let mut text = encode([(&a, &e), (&b, &e)].into_iter());
        for (m, who, pat) in [
            ('s', &a, "alarm.*"),
            ('s', &a, "x"),
            ('s', &b, "*"),
            ('u', &a, "x"),
        ] {
            text.push_str(&subscription_line(m, who, &p(pat)));
        }
        assert_eq!(
            decode_subscriptions(&text),
            vec![(a, p("alarm.*")), (b, p("*"))]
        );
        // An entry removed takes its subscriptions along, also when it comes back.
        text.push_str(&format!("- {}\n", hex(b.as_bytes())));
        text.push_str(&entry_line(&b, &e));
        assert_eq!(decode_subscriptions(&text), vec![(a, p("alarm.*"))]);
    }

    #[test]
    fn the_log_applies_in_order() {
        let text = format!(
            "{MAGIC}\n+ 61 1 0 0 0\n+ 62 2 0 0 0\n- 61\n+ 62 3 5 1 0\n+ 61 4 0 0 0\n+ 63 9 0 0"
        );
        let mut got: Vec<_> = decode(&text)
            .iter()
            .map(|(n, e)| (n.as_bytes().to_vec(), e.queue.0, e.pid))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![(b"a".to_vec(), 4, None), (b"b".to_vec(), 3, Some(5))],
            "the log applies in order; a cut line is skipped"
        );
    }

    #[test]
    fn garbage_is_an_empty_table() {
        assert!(decode("").is_empty());
        assert!(decode("something else\n00 1 2 3 4").is_empty());
        assert_eq!(
            decode(&format!("{MAGIC}\nzz 1 2 3 4\n61 -1 0 0 0\n61 1 0 0 0\n")).len(),
            1
        );
    }
}
