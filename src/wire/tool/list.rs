//! LIST answers: one page of a name-table snapshot (docs/PROTOCOL.md §7).

use super::{
    put_i32, put_name, put_u32, put_u64, Reader, Res, ToolWireError, ANSWER_HEAD_LEN, ENTRY_LEN,
    LIST_PAGE_HEAD, LIST_PAGE_MAX,
};
use crate::name::MipcName;
use crate::wire::{MIPC_MSG_MAX_LEN, MIPC_NAME_MAX_LEN};

/// Flag of [`EntryInfo::flags`]: the entry greeted the relay (a mipc-rs library).
pub const ENTRY_GREETED: u32 = 1;
/// Flag of [`EntryInfo::flags`]: the entry has more subscriptions than one page holds;
/// [`EntryInfo::subscriptions`] lists the first [`LIST_SUBS_MAX`].
pub const ENTRY_SUBS_TRUNCATED: u32 = 2;
/// Bytes a list page's body may take after its [`AnswerHead`](super::AnswerHead).
pub const LIST_BODY_MAX: usize = MIPC_MSG_MAX_LEN - ANSWER_HEAD_LEN;
/// Most subscriptions listed for one entry: as many as fit a page holding that entry alone.
pub const LIST_SUBS_MAX: usize = (LIST_BODY_MAX - LIST_PAGE_HEAD - ENTRY_LEN) / MIPC_NAME_MAX_LEN;

/// One entry of the name table, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Its name.
    pub name: MipcName,
    /// Its process (0 when unknown: a legacy entry).
    pub pid: i32,
    /// Its queue.
    pub queue: i32,
    /// The registering thread (`pthread_t`, as the NOTICE gave it).
    pub thread: u64,
    /// [`ENTRY_GREETED`] and future flags.
    pub flags: u32,
    /// Messages waiting in its queue.
    pub queued_msgs: u32,
    /// Registered since, seconds since the epoch.
    pub since: u64,
    /// Bytes waiting in its queue.
    pub queued_bytes: u64,
    /// Messages the relay holds for it (its queue was full).
    pub backlog: u32,
    /// Messages the relay forwarded to it.
    pub msgs_in: u64,
    /// Messages the relay forwarded from it.
    pub msgs_out: u64,
    /// Payload bytes forwarded to it.
    pub bytes_in: u64,
    /// Payload bytes forwarded from it.
    pub bytes_out: u64,
    /// Its event subscriptions as written (`"alarm.*"`), at most [`LIST_SUBS_MAX`]; empty
    /// for an entry that never subscribed (every legacy entry).
    pub subscriptions: Vec<MipcName>,
}

impl EntryInfo {
    /// Whether the entry greeted the relay.
    pub fn greeted(&self) -> bool {
        self.flags & ENTRY_GREETED != 0
    }

    /// Bytes of this entry in a list page: [`ENTRY_LEN`] and one name field per subscription.
    pub fn wire_len(&self) -> usize {
        ENTRY_LEN + self.subscriptions.len() * MIPC_NAME_MAX_LEN
    }

    fn encode(&self, out: &mut Vec<u8>) {
        debug_assert!(self.subscriptions.len() <= LIST_SUBS_MAX);
        put_name(out, Some(&self.name));
        put_i32(out, self.pid);
        put_i32(out, self.queue);
        put_u64(out, self.thread);
        put_u32(out, self.flags);
        put_u32(out, self.queued_msgs);
        put_u64(out, self.since);
        put_u64(out, self.queued_bytes);
        put_u32(out, self.backlog);
        put_u32(out, self.subscriptions.len() as u32);
        put_u64(out, self.msgs_in);
        put_u64(out, self.msgs_out);
        put_u64(out, self.bytes_in);
        put_u64(out, self.bytes_out);
        for s in &self.subscriptions {
            put_name(out, Some(s));
        }
    }

    fn decode(r: &mut Reader<'_>) -> Res<EntryInfo> {
        let name = r.name()?;
        let pid = r.i32()?;
        let queue = r.i32()?;
        let thread = r.u64()?;
        let flags = r.u32()?;
        let queued_msgs = r.u32()?;
        let since = r.u64()?;
        let queued_bytes = r.u64()?;
        let backlog = r.u32()?;
        let subs = r.u32()? as usize;
        let (msgs_in, msgs_out, bytes_in, bytes_out) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        if subs > LIST_SUBS_MAX {
            return Err(ToolWireError::BadCount);
        }
        let subscriptions = (0..subs).map(|_| r.name()).collect::<Res<Vec<_>>>()?;
        Ok(EntryInfo {
            name,
            pid,
            queue,
            thread,
            flags,
            queued_msgs,
            since,
            queued_bytes,
            backlog,
            msgs_in,
            msgs_out,
            bytes_in,
            bytes_out,
            subscriptions,
        })
    }
}

/// One page of a name-table snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Entries in the whole snapshot.
    pub total: u32,
    /// Index of this page's first entry.
    pub first: u32,
    /// At most [`LIST_PAGE_MAX`] entries, of [`EntryInfo::wire_len`] bytes
    /// [`LIST_BODY_MAX`] in all with the page's head.
    pub entries: Vec<EntryInfo>,
}

impl ListPage {
    /// Whether this page ends the snapshot.
    pub fn is_last(&self) -> bool {
        self.first as usize + self.entries.len() >= self.total as usize
    }

    /// Whether `entries` fit one page: at most [`LIST_PAGE_MAX`] of them and
    /// [`LIST_BODY_MAX`] bytes with the head.
    pub fn fits(entries: &[EntryInfo]) -> bool {
        entries.len() <= LIST_PAGE_MAX
            && LIST_PAGE_HEAD + entries.iter().map(EntryInfo::wire_len).sum::<usize>()
                <= LIST_BODY_MAX
    }

    /// Appends the page (after an [`AnswerHead`](super::AnswerHead)) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        debug_assert!(self.entries.len() <= LIST_PAGE_MAX);
        debug_assert!(Self::fits(&self.entries));
        put_u32(out, self.total);
        put_u32(out, self.first);
        put_u32(out, self.entries.len() as u32);
        for e in &self.entries {
            e.encode(out);
        }
    }

    /// Reads a page from the bytes after the [`AnswerHead`](super::AnswerHead).
    ///
    /// # Errors
    /// [`ToolWireError`] when the bytes do not hold what the counts say.
    pub fn decode(body: &[u8]) -> Result<ListPage, ToolWireError> {
        let mut r = Reader { b: body };
        let total = r.u32()?;
        let first = r.u32()?;
        let count = r.u32()? as usize;
        if count > LIST_PAGE_MAX
            || count * ENTRY_LEN > r.b.len()
            || first as u64 + count as u64 > total as u64
        {
            return Err(ToolWireError::BadCount);
        }
        let entries = (0..count)
            .map(|_| EntryInfo::decode(&mut r))
            .collect::<Res<Vec<_>>>()?;
        if !r.b.is_empty() {
            return Err(ToolWireError::BadCount);
        }
        Ok(ListPage {
            total,
            first,
            entries,
        })
    }
}
