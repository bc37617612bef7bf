//! The SysV message queues: every queue of the system (`/proc/sysvipc/msg`), the queues of
//! one bus, and a fresh key for a new bus.

use super::bus::Bus;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One SysV queue as `/proc/sysvipc/msg` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// Its key (0 for `IPC_PRIVATE`).
    pub key: i32,
    /// Its id.
    pub msqid: i32,
    /// Permission bits.
    pub perms: u32,
    /// Bytes queued.
    pub cbytes: u64,
    /// Messages queued.
    pub qnum: u64,
    /// Last sender.
    pub lspid: i32,
    /// Last receiver.
    pub lrpid: i32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
}

/// Every message queue of the system.
pub fn all_queues() -> Vec<QueueInfo> {
    let text = std::fs::read_to_string("/proc/sysvipc/msg").expect("read /proc/sysvipc/msg");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 {
                return None;
            }
            Some(QueueInfo {
                key: f[0].parse::<i64>().ok()? as i32,
                msqid: f[1].parse().ok()?,
                perms: u32::from_str_radix(f[2], 8).ok()?,
                cbytes: f[3].parse().ok()?,
                qnum: f[4].parse().ok()?,
                lspid: f[5].parse().ok()?,
                lrpid: f[6].parse().ok()?,
                uid: f[7].parse().ok()?,
                gid: f[8].parse().ok()?,
            })
        })
        .collect()
}

pub fn unique_key() -> i32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let in_use: HashSet<i32> = all_queues().into_iter().map(|q| q.key).collect();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut x = (std::process::id() as u64) << 32
            ^ (COUNTER.fetch_add(1, Ordering::Relaxed) as u64) << 20
            ^ nanos as u64;
        // splitmix64 finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        // Positive, never 0 (IPC_PRIVATE), never the default "MIPC" key, not in use.
        let key = ((x as u32) & 0x3fff_ffff | 0x1000_0000) as i32;
        if key != mipc::wire::MIPC_MSG_ROOT_KEY && !in_use.contains(&key) {
            return key;
        }
    }
}

impl Bus {
    /// The queues of this bus: the root key, or last sent/received by one of our processes.
    pub fn queues(&self) -> Vec<QueueInfo> {
        let ours: HashSet<i32> = self.pids.iter().copied().collect();
        all_queues()
            .into_iter()
            .filter(|q| q.key == self.key || ours.contains(&q.lspid) || ours.contains(&q.lrpid))
            .collect()
    }
}
