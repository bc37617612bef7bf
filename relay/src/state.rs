//! The name table on disk, so that a relay killed with SIGKILL and started again knows every
//! registered entry without the daemons registering again (the root queue, with whatever was
//! sent meanwhile, outlives the relay by itself: SysV queues are kernel-persistent).
//!
//! One small text file per bus, `$MIPC_STATE_DIR/mipc-<key>.entries` (default `/dev/shm`,
//! else `/tmp`), rewritten (write, then rename) whenever the table changes; registrations are
//! rare, so this costs nothing on the message path. Names are hex-encoded: they may hold any
//! byte but NUL.

use crate::router::Entry;
use mipc::sysv::QueueId;
use mipc::MipcName;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

const MAGIC: &str = "mipc-entries 1";

/// The state file of the bus with root key `key`.
pub fn path(key: i32) -> PathBuf {
    let dir = std::env::var_os("MIPC_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            }
        });
    dir.join(format!("mipc-{:08x}.entries", key as u32))
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

/// The file's text for these entries.
pub fn encode<'a>(entries: impl Iterator<Item = (&'a MipcName, &'a Entry)>) -> String {
    let mut out = String::from(MAGIC);
    out.push('\n');
    for (name, e) in entries {
        let _ = writeln!(
            out,
            "{} {} {} {} {}",
            hex(name.as_bytes()),
            e.queue.0,
            e.pid.unwrap_or(0),
            u8::from(e.ext),
            e.thread_id
        );
    }
    out
}

/// Entries read back from the file's text; lines that do not parse are skipped.
pub fn decode(text: &str) -> Vec<(MipcName, Entry)> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Vec::new();
    }
    lines
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let [name, queue, pid, ext, tid] = f.as_slice() else {
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
                    ext: *ext == "1",
                    thread_id: tid.parse().ok()?,
                    pending: None,
                },
            ))
        })
        .collect()
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

/// Reads the file; a missing file is an empty table.
pub fn load(path: &Path) -> Vec<(MipcName, Entry)> {
    std::fs::read_to_string(path)
        .map(|t| decode(&t))
        .unwrap_or_default()
}

/// Removes the file (a clean stop with no entry left).
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
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
            thread_id: u64::MAX,
            pending: None,
        };
        let legacy = MipcName::new(b"legacy").unwrap();
        let l = Entry {
            queue: QueueId(0),
            pid: None,
            ext: false,
            thread_id: 7,
            pending: None,
        };
        let text = encode([(&name, &e), (&legacy, &l)].into_iter());
        assert_eq!(decode(&text), vec![(name, e), (legacy, l)]);
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
