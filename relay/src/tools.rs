//! What the relay keeps for tools besides monitors (docs/PROTOCOL.md §7): list snapshots
//! served page by page, processes waiting for a name, and the counters of `mipc stats`.
//! No I/O here: the router answers with what these return.

use mipc::sysv::QueueId;
use mipc::wire::tool::{
    AnswerHead, Counter, EntryInfo, ListPage, RejectReason, StatsReport, ToolStatus, LIST_PAGE_MAX,
};
use mipc::wire::{Build, MsgBuf};
use mipc::MipcName;
use std::collections::VecDeque;
use std::os::raw::c_long;
use std::time::{Duration, Instant};

/// Snapshots kept at once (one per listing tool).
const MAX_SNAPSHOTS: usize = 8;
/// A snapshot not read for this long is dropped.
const SNAPSHOT_TTL: Duration = Duration::from_secs(30);
/// Processes waiting for names at once.
pub const MAX_WAITERS: usize = 256;

/// A copy of the name table, taken at a listing's first page and served page by page, so
/// the listing is one consistent snapshot however large the table.
#[derive(Debug, Default)]
pub struct Snapshots {
    list: VecDeque<(QueueId, Instant, Vec<EntryInfo>)>,
}

impl Snapshots {
    /// The page at `cursor` of the listing read by `queue`; cursor 0 takes a new snapshot
    /// with `take`.
    ///
    /// # Errors
    /// [`ToolStatus::NoSnapshot`] when the cursor is past the snapshot or it was dropped.
    pub fn page(
        &mut self,
        queue: QueueId,
        cursor: u32,
        now: Instant,
        take: impl FnOnce() -> Vec<EntryInfo>,
    ) -> Result<ListPage, ToolStatus> {
        self.list
            .retain(|(_, t, _)| now.saturating_duration_since(*t) < SNAPSHOT_TTL);
        if cursor == 0 {
            self.list.retain(|(q, _, _)| *q != queue);
            if self.list.len() >= MAX_SNAPSHOTS {
                self.list.pop_front();
            }
            self.list.push_back((queue, now, take()));
        }
        let Some(i) = self.list.iter().position(|(q, _, _)| *q == queue) else {
            return Err(ToolStatus::NoSnapshot);
        };
        let (_, t, entries) = &mut self.list[i];
        *t = now;
        let first = cursor as usize;
        if first > entries.len() {
            return Err(ToolStatus::NoSnapshot);
        }
        // As many entries as fit: fewer than LIST_PAGE_MAX when they carry subscriptions,
        // at least one (an entry's subscriptions were cut to fit a page alone).
        let mut end = (first + LIST_PAGE_MAX).min(entries.len());
        while end > first + 1 && !ListPage::fits(&entries[first..end]) {
            end -= 1;
        }
        let page = ListPage {
            total: entries.len() as u32,
            first: cursor,
            entries: entries[first..end].to_vec(),
        };
        if end == entries.len() {
            self.list.remove(i);
        }
        Ok(page)
    }
}

/// A process waiting for a name to be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    /// The awaited name.
    pub name: MipcName,
    /// Where the answer goes.
    pub queue: QueueId,
    /// The waiting tool's own name (the answer's `dst_name`).
    pub tool: MipcName,
    /// The waiting process (its queue is removed if it dies waiting).
    pub pid: i32,
    /// The request's id.
    pub request_id: u32,
    /// When the waiter gives up (`None`: when its queue is gone).
    pub until: Option<Instant>,
}

/// The processes waiting for names.
#[derive(Debug, Default)]
pub struct Waiters {
    list: Vec<Waiter>,
}

impl Waiters {
    /// Adds a waiter; expired ones are dropped first.
    ///
    /// # Errors
    /// [`ToolStatus::TooMany`] when [`MAX_WAITERS`] wait already.
    pub fn add(&mut self, w: Waiter, now: Instant) -> Result<(), ToolStatus> {
        self.list.retain(|w| w.until.is_none_or(|u| u > now));
        if self.list.len() >= MAX_WAITERS {
            return Err(ToolStatus::TooMany);
        }
        self.list.push(w);
        Ok(())
    }

    /// Takes the waiters of `name` (just registered).
    pub fn registered(&mut self, name: &MipcName) -> Vec<Waiter> {
        if self.list.is_empty() {
            return Vec::new();
        }
        let (done, rest) = self.list.iter().partition(|w| w.name == *name);
        self.list = rest;
        done
    }

    /// Takes every waiter (the relay stops).
    pub fn take_all(&mut self) -> Vec<Waiter> {
        std::mem::take(&mut self.list)
    }

    /// Drops the waiters of a dead process; returns their queues (to remove).
    pub fn process_died(&mut self, pid: i32) -> Vec<QueueId> {
        let gone = self
            .list
            .iter()
            .filter(|w| w.pid == pid)
            .map(|w| w.queue)
            .collect();
        self.list.retain(|w| w.pid != pid);
        gone
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The relay's counters beyond the router's own (`mipc stats`, the exit line).
#[derive(Debug, Clone)]
pub struct Counters {
    /// When the relay started.
    pub started: Instant,
    /// Payload bytes forwarded.
    pub forwarded_bytes: u64,
    /// Registrations accepted.
    pub registrations: u64,
    /// Entries dropped because their process died or their queue went away.
    pub deaths: u64,
    /// Rejections by reason (index: code - 1).
    pub rejected_by: [u64; RejectReason::ALL.len()],
    /// Sync calls answered straight back, as their servers' libraries reported them
    /// (docs/PROTOCOL.md §11).
    pub answered_back: u64,
}

impl Counters {
    /// Counters starting now.
    pub fn new(now: Instant) -> Counters {
        Counters {
            started: now,
            forwarded_bytes: 0,
            registrations: 0,
            deaths: 0,
            rejected_by: [0; RejectReason::ALL.len()],
            answered_back: 0,
        }
    }

    /// Counts a rejection.
    pub fn rejected(&mut self, r: RejectReason) {
        self.rejected_by[r as usize - 1] += 1;
    }
}

/// Everything `mipc stats` shows, gathered by the router.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Entries in the table.
    pub entries: u64,
    /// Messages forwarded.
    pub forwarded: u64,
    /// Messages that waited in a backlog.
    pub parked: u64,
    /// Of those, sent in batches.
    pub batched: u64,
    /// Requests read in a row for one entry, sent in batches.
    pub gathered: u64,
    /// Error answers sent.
    pub errors: u64,
    /// Messages refused.
    pub rejected: u64,
    /// Monitors attached.
    pub monitors: u64,
    /// Monitor events lost.
    pub monitor_lost: u64,
    /// Messages held now.
    pub backlog: u64,
}

/// The stats report of `c` and `t`, with `backlog` (largest first) as far as it fits.
pub fn report(
    c: &Counters,
    t: Totals,
    now: Instant,
    mut backlog: Vec<(MipcName, u32)>,
) -> StatsReport {
    let value = |k: Counter| -> u64 {
        match k {
            Counter::Uptime => now.saturating_duration_since(c.started).as_secs(),
            Counter::Entries => t.entries,
            Counter::Forwarded => t.forwarded,
            Counter::ForwardedBytes => c.forwarded_bytes,
            Counter::Parked => t.parked,
            Counter::ErrorsAnswered => t.errors,
            Counter::Registrations => c.registrations,
            Counter::Deaths => c.deaths,
            Counter::Monitors => t.monitors,
            Counter::MonitorLost => t.monitor_lost,
            Counter::Rejected => t.rejected,
            Counter::Backlog => t.backlog,
            Counter::Batched => t.batched,
            Counter::Gathered => t.gathered,
            Counter::AnsweredBack => c.answered_back,
        }
    };
    let mut counters: Vec<(u32, u64)> = Counter::ALL
        .iter()
        .map(|k| (*k as u32, value(*k)))
        .collect();
    for r in RejectReason::ALL {
        counters.push((
            mipc::wire::tool::reject_counter_id(r),
            c.rejected_by[r as usize - 1],
        ));
    }
    backlog.sort_by_key(|b| std::cmp::Reverse(b.1));
    backlog.truncate(StatsReport::backlog_room(counters.len()));
    StatsReport { counters, backlog }
}

/// One line for people: what the relay did (its exit line; `mipc stats` shows more).
pub fn summary_line(r: &StatsReport) -> String {
    let get = |k: Counter| r.get(k as u32).unwrap_or(0);
    let mut reasons: Vec<String> = RejectReason::ALL
        .iter()
        .filter_map(|x| {
            let n = r.get(mipc::wire::tool::reject_counter_id(*x)).unwrap_or(0);
            (n > 0).then(|| format!("{n} {}", x.name().replace('_', " ")))
        })
        .collect();
    let rejected = if reasons.is_empty() {
        "0 rejected".to_string()
    } else {
        let total = get(Counter::Rejected);
        let list = std::mem::take(&mut reasons).join(", ");
        format!("{total} rejected ({list})")
    };
    format!(
        "up {}s: {} messages forwarded ({} payload bytes), {} held for full queues ({} sent in batches), {rejected}, \
         {} requests gathered into batches, {} calls answered straight back, {} error answers, {} registrations, {} deaths, {} entries left",
        get(Counter::Uptime),
        get(Counter::Forwarded),
        get(Counter::ForwardedBytes),
        get(Counter::Parked),
        get(Counter::Batched),
        get(Counter::Gathered),
        get(Counter::AnsweredBack),
        get(Counter::ErrorsAnswered),
        get(Counter::Registrations),
        get(Counter::Deaths),
        get(Counter::Entries),
    )
}

/// Builds the answer to a tool's request in `buf`: `mtype = msg_type`, from `"mipc_main"`
/// to `tool`, the [`AnswerHead`] then what `body` appends.
pub fn build_answer(
    buf: &mut MsgBuf,
    tool: &MipcName,
    msg_type: u32,
    request_id: u32,
    status: ToolStatus,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let mut payload = Vec::with_capacity(mipc::wire::MIPC_MSG_MAX_LEN);
    AnswerHead { request_id, status }.encode(&mut payload);
    if status == ToolStatus::Ok {
        body(&mut payload);
    }
    buf.build(Build {
        mtype: msg_type as c_long,
        src: &MipcName::RELAY,
        dst: tool,
        msg_type,
        sync_flag: 0,
        payload: &payload,
        tag: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mipc::wire::tool::{ENTRY_GREETED, LIST_BODY_MAX, LIST_SUBS_MAX};

    fn entry(i: usize) -> EntryInfo {
        EntryInfo {
            name: MipcName::new(format!("e{i}").as_bytes()).unwrap(),
            pid: i as i32,
            queue: i as i32,
            thread: 0,
            flags: ENTRY_GREETED,
            queued_msgs: 0,
            since: 0,
            queued_bytes: 0,
            backlog: 0,
            msgs_in: 0,
            msgs_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            subscriptions: Vec::new(),
        }
    }

    /// Entry `i` with `i % 7 * 10` subscriptions (none to 60, cut to LIST_SUBS_MAX).
    fn subscribed(i: usize) -> EntryInfo {
        let n = (i % 7 * 10).min(LIST_SUBS_MAX);
        EntryInfo {
            subscriptions: vec![MipcName::new(b"alarm.*").unwrap(); n],
            ..entry(i)
        }
    }

    #[test]
    fn a_thousand_entries_list_completely_from_one_snapshot() {
        let mut s = Snapshots::default();
        let now = Instant::now();
        let q = QueueId(7);
        let mut got = Vec::new();
        let mut calls = 0;
        loop {
            let page = s
                .page(q, got.len() as u32, now, || {
                    calls += 1;
                    (0..1000).map(entry).collect()
                })
                .unwrap();
            let last = page.is_last();
            got.extend(page.entries);
            if last {
                break;
            }
        }
        assert_eq!(calls, 1, "one snapshot");
        assert_eq!(got.len(), 1000);
        assert_eq!(got[999], entry(999));
        // Served completely: a later cursor is refused.
        assert_eq!(s.page(q, 18, now, Vec::new), Err(ToolStatus::NoSnapshot));
        // An empty table lists in one page.
        let p = s.page(q, 0, now, Vec::new).unwrap();
        assert!(p.is_last() && p.entries.is_empty());
    }

    #[test]
    fn entries_with_subscriptions_page_completely_in_fitting_pages() {
        let mut s = Snapshots::default();
        let now = Instant::now();
        let q = QueueId(8);
        let mut got = Vec::new();
        loop {
            let page = s
                .page(q, got.len() as u32, now, || {
                    (0..1000).map(subscribed).collect()
                })
                .unwrap();
            assert!(!page.entries.is_empty() && ListPage::fits(&page.entries));
            let mut out = Vec::new();
            page.encode(&mut out);
            assert!(out.len() <= LIST_BODY_MAX);
            let last = page.is_last();
            got.extend(page.entries);
            if last {
                break;
            }
        }
        assert_eq!(got, (0..1000).map(subscribed).collect::<Vec<_>>());
    }

    #[test]
    fn waiters_are_answered_once_and_expire() {
        let mut w = Waiters::default();
        let now = Instant::now();
        let n = MipcName::new(b"late").unwrap();
        let tool = MipcName::new(b"mipc-tool").unwrap();
        let mk = |until| Waiter {
            name: n,
            queue: QueueId(1),
            tool,
            pid: 9,
            request_id: 1,
            until,
        };
        w.add(mk(Some(now + Duration::from_millis(5))), now)
            .unwrap();
        w.add(mk(None), now).unwrap();
        assert_eq!(w.registered(&n).len(), 2);
        assert!(w.registered(&n).is_empty());
        w.add(mk(Some(now)), now).unwrap();
        w.add(mk(None), now + Duration::from_millis(1)).unwrap();
        assert_eq!(w.len(), 1, "the expired one was dropped");
        assert_eq!(w.process_died(9), vec![QueueId(1)]);
        assert!(w.is_empty());
    }

    #[test]
    fn report_and_summary() {
        let mut c = Counters::new(Instant::now());
        c.rejected(RejectReason::NoSuchDestination);
        c.rejected(RejectReason::NoSuchDestination);
        c.forwarded_bytes = 100;
        let r = report(
            &c,
            Totals {
                forwarded: 5,
                rejected: 2,
                entries: 3,
                ..Totals::default()
            },
            c.started,
            vec![
                (MipcName::new(b"a").unwrap(), 1),
                (MipcName::new(b"b").unwrap(), 9),
            ],
        );
        assert_eq!(r.backlog[0].1, 9);
        let line = summary_line(&r);
        assert!(
            line.contains("5 messages forwarded (100 payload bytes)")
                && line.contains("2 rejected (2 no such destination)")
                && line.ends_with("3 entries left"),
            "{line}"
        );
    }
}
