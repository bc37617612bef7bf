//! System V message queues: the one module that calls `msgget`, `msgsnd`, `msgrcv` and
//! `msgctl` (SPEC §5). Each call is wrapped once, with its errno table.

use crate::wire::MTYPE_LEN;
use std::fmt;
use std::io;
use std::os::raw::{c_int, c_long};

/// A SysV queue id (the legacy "mipc fd").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub c_int);

/// Why a queue call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// `msgget` of a key with no queue (the relay is not running).
    NotFound,
    /// The queue is full and the call was not to block (`EAGAIN`).
    Full,
    /// No message of the asked type was waiting and the call was not to block (`ENOMSG`).
    Empty,
    /// The queue was removed (`EIDRM`), or the id names no queue (`EINVAL`).
    Gone,
    /// The queue's mode does not let this process use it (`EACCES`, `EPERM`).
    Permission,
    /// The message is larger than the receive buffer (`E2BIG`).
    TooBig,
    /// The system's queue limit is reached (`ENOSPC`).
    NoSpace,
    /// Interrupted by a signal (`EINTR`); only returned where the caller asked for it.
    Interrupted,
    /// Another errno value.
    Os(i32),
}

impl QueueError {
    fn last() -> QueueError {
        QueueError::from_errno(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    fn from_errno(errno: i32) -> QueueError {
        match errno {
            libc::ENOENT => QueueError::NotFound,
            libc::EAGAIN => QueueError::Full,
            libc::ENOMSG => QueueError::Empty,
            libc::EIDRM | libc::EINVAL => QueueError::Gone,
            libc::EACCES | libc::EPERM => QueueError::Permission,
            libc::E2BIG => QueueError::TooBig,
            libc::ENOSPC => QueueError::NoSpace,
            libc::EINTR => QueueError::Interrupted,
            other => QueueError::Os(other),
        }
    }

    /// The errno value that fits this error.
    pub fn errno(self) -> i32 {
        match self {
            QueueError::NotFound => libc::ENOENT,
            QueueError::Full => libc::EAGAIN,
            QueueError::Empty => libc::ENOMSG,
            QueueError::Gone => libc::EIDRM,
            QueueError::Permission => libc::EACCES,
            QueueError::TooBig => libc::E2BIG,
            QueueError::NoSpace => libc::ENOSPC,
            QueueError::Interrupted => libc::EINTR,
            QueueError::Os(e) => e,
        }
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::NotFound => f.write_str("no queue with that key"),
            QueueError::Full => f.write_str("queue is full"),
            QueueError::Empty => f.write_str("no message waiting"),
            QueueError::Gone => f.write_str("queue does not exist (removed or never created)"),
            QueueError::Permission => f.write_str("permission denied on queue"),
            QueueError::TooBig => f.write_str("message larger than the receive buffer"),
            QueueError::NoSpace => f.write_str("system limit on queues reached"),
            QueueError::Interrupted => f.write_str("interrupted by a signal"),
            QueueError::Os(e) => write!(f, "{}", io::Error::from_raw_os_error(*e)),
        }
    }
}

impl std::error::Error for QueueError {}

/// Creates a new private queue with permission bits `mode` (e.g. `0o600`).
///
/// # Errors
/// [`QueueError::NoSpace`] at the system limit, or another [`QueueError`].
pub fn create_private(mode: u32) -> Result<QueueId, QueueError> {
    // SAFETY: msgget takes no pointers.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | (mode & 0o777) as c_int) };
    if id < 0 {
        Err(QueueError::last())
    } else {
        Ok(QueueId(id))
    }
}

/// Opens the queue of `key`; with `create`, makes it (mode `mode`) when there is none.
///
/// # Errors
/// [`QueueError::NotFound`] when there is no queue and `create` is false.
pub fn open_key(key: i32, create: bool, mode: u32) -> Result<QueueId, QueueError> {
    let flags = if create {
        libc::IPC_CREAT | (mode & 0o777) as c_int
    } else {
        0
    };
    // SAFETY: msgget takes no pointers.
    let id = unsafe { libc::msgget(key as libc::key_t, flags) };
    if id < 0 {
        Err(QueueError::last())
    } else {
        Ok(QueueId(id))
    }
}

/// Sends one message: `msg` is `mtype` (a native `long`) followed by `mtext`.
/// Blocks while the queue is full unless `nowait`. Retries on `EINTR`. Made as a plain
/// system call where the architecture has one: not a thread cancellation point (see below).
///
/// # Errors
/// [`QueueError::Full`] (with `nowait`), [`QueueError::Gone`], [`QueueError::Permission`],
/// or [`QueueError::Os`] for a message shorter than an `mtype` (`EINVAL`).
#[inline]
pub fn send(q: QueueId, msg: &[u8], nowait: bool) -> Result<(), QueueError> {
    if msg.len() < MTYPE_LEN {
        return Err(QueueError::Os(libc::EINVAL));
    }
    let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
    loop {
        // SAFETY: msg is a live slice of msg.len() bytes; msgsnd reads mtype plus
        // msg.len() - MTYPE_LEN bytes of mtext from it, all within the slice. msgsnd does
        // not need the pointer aligned for a long (the kernel copies bytes).
        match unsafe { msgsnd(q.0, msg.as_ptr().cast(), msg.len() - MTYPE_LEN, flags) } {
            Ok(_) => return Ok(()),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(QueueError::from_errno(e)),
        }
    }
}

// How `msgsnd` and `msgrcv` are made: as `SYS_msgsnd / SYS_msgrcv` where those are system
// calls of their own (Linux on x86_64, aarch64 and arm, with glibc, musl or uClibc alike:
// `cfg(mipc_raw_ipc)`, set by build.rs); elsewhere (i386, whose SysV calls go through `ipc()`;
// x32) through the C library's functions.
//
// Never through the C library's wrappers where a system call of its own exists, blocking or
// not. glibc's `msgrcv` is a cancellation point: a `pthread_cancel` of a thread blocked in it
// unwinds through the library's frames into the `catch_unwind` of the export's guard, which
// aborts the process on a foreign unwind (it did: a daemon that cancelled a thread blocked in
// `mipc_mq_receive` died of SIGABRT; c-tests/cancel.c). Made plainly, the call is not a
// cancellation point: a cancel is acted on at the program's next one, after the call returned
// (glibc 2.34 and later do not even signal a thread in deferred mode outside a cancellation
// point). The wrappers also cost ~55 instructions per call in a process with threads
// (asynchronous cancellation turned on and off around each call, docs/PERFORMANCE.md).
// The one exception is [`recv_cancellable`]: the waits without timeout of `mipc_mq_receive`
// and `mipc_send_sync_msg`, which the exports make from their own frames (`cancellable.rs`),
// so that they are cancellation points as in the original library.

/// A system call of up to five arguments, made with the `syscall` instruction: the C
/// library's `syscall()` costs as much again as the instructions here (it moves every
/// argument and sets `errno`), and the library makes one for every send.
///
/// # Safety
/// As for the system call `nr` with these arguments.
#[cfg(all(mipc_raw_ipc, target_arch = "x86_64"))]
#[inline(always)]
unsafe fn raw_syscall(nr: c_long, a: [c_long; 5]) -> Result<isize, i32> {
    let rc: c_long;
    // SAFETY: the x86_64 Linux system call convention: number in rax, arguments in rdi, rsi,
    // rdx, r10, r8; the result in rax; rcx and r11 clobbered. The kernel may read and write
    // memory through the arguments (no `nomem`/`readonly`), as the caller's contract allows.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => rc,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    // The kernel returns the value, or the errno negated.
    if (-4095..0).contains(&rc) {
        Err(-rc as i32)
    } else {
        Ok(rc as isize)
    }
}

/// As above, through the C library's `syscall()` where no instruction sequence is written
/// out here.
///
/// # Safety
/// As for the system call `nr` with these arguments.
#[cfg(all(mipc_raw_ipc, not(target_arch = "x86_64")))]
#[inline(always)]
unsafe fn raw_syscall(nr: c_long, a: [c_long; 5]) -> Result<isize, i32> {
    // SAFETY: the caller's.
    let rc = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) };
    if rc < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc as isize)
    }
}

/// A C library call's result: the value, or `errno`.
#[cfg(not(mipc_raw_ipc))]
fn libc_result(rc: isize) -> Result<isize, i32> {
    if rc < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc)
    }
}

/// `msgsnd(q, ptr, len, flags)`: `Ok` or the errno.
///
/// # Safety
/// `ptr` points to an `mtype` and `len` bytes of mtext, readable.
#[inline(always)]
unsafe fn msgsnd(
    q: c_int,
    ptr: *const libc::c_void,
    len: usize,
    flags: c_int,
) -> Result<isize, i32> {
    #[cfg(mipc_raw_ipc)]
    {
        let args = [
            q as c_long,
            ptr as c_long,
            len as c_long,
            flags as c_long,
            0,
        ];
        // SAFETY: as for libc::msgsnd; the arguments are passed as the kernel's longs.
        unsafe { raw_syscall(libc::SYS_msgsnd, args) }
    }
    #[cfg(not(mipc_raw_ipc))]
    {
        // SAFETY: the caller's.
        libc_result(unsafe { libc::msgsnd(q, ptr, len, flags) } as isize)
    }
}

/// `msgrcv(q, ptr, len, mtype, flags)`: the mtext length or the errno.
///
/// # Safety
/// `ptr` points to room for an `mtype` and `len` bytes, writable.
#[inline(always)]
unsafe fn msgrcv(
    q: c_int,
    ptr: *mut libc::c_void,
    len: usize,
    mtype: c_long,
    flags: c_int,
) -> Result<isize, i32> {
    #[cfg(mipc_raw_ipc)]
    {
        let args = [
            q as c_long,
            ptr as c_long,
            len as c_long,
            mtype,
            flags as c_long,
        ];
        // SAFETY: as for libc::msgrcv; the arguments are passed as the kernel's longs.
        unsafe { raw_syscall(libc::SYS_msgrcv, args) }
    }
    #[cfg(not(mipc_raw_ipc))]
    {
        // SAFETY: the caller's.
        libc_result(unsafe { libc::msgrcv(q, ptr, len, mtype, flags) })
    }
}

/// Flags of a receive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvFlags {
    /// Return [`QueueError::Empty`] at once when no message fits.
    pub nowait: bool,
    /// Cut a longer message to the buffer instead of failing with `E2BIG`.
    pub truncate: bool,
    /// Return [`QueueError::Interrupted`] on a signal instead of waiting on.
    pub interruptible: bool,
}

/// Receives one message into `buf` (`mtype` then room for `mtext`), with SysV type
/// semantics for `mtype` (0: first; >0: first of that type; <0: lowest type up to |mtype|).
/// Returns the number of `mtext` bytes written. Made as a plain system call where the
/// architecture has one: not a cancellation point (see above).
///
/// # Errors
/// [`QueueError::Empty`] (with `nowait`), [`QueueError::Gone`], [`QueueError::TooBig`],
/// [`QueueError::Permission`], [`QueueError::Interrupted`] (when asked for), or
/// [`QueueError::Os`] when `buf` cannot hold an `mtype`.
#[inline]
pub fn recv(
    q: QueueId,
    buf: &mut [u8],
    mtype: c_long,
    flags: RecvFlags,
) -> Result<usize, QueueError> {
    recv_via(q, buf, mtype, flags)
}

/// The body of [`recv`], kept apart: `recv` itself stays a small `#[inline]` function the
/// compiler does inline on the direct path (folding this body into `recv` cost that path's
/// caller 30 instructions per call, bench/callgrind_per_call.sh).
#[inline(always)]
fn recv_via(
    q: QueueId,
    buf: &mut [u8],
    mtype: c_long,
    flags: RecvFlags,
) -> Result<usize, QueueError> {
    let mut f = 0;
    if flags.nowait {
        f |= libc::IPC_NOWAIT;
    }
    if flags.truncate {
        f |= libc::MSG_NOERROR;
    }
    msgrcv_into(q, buf, mtype, f, flags.interruptible)
}

/// `msgrcv` into `buf` (`mtype`, then room for `mtext`) with the kernel's `flags`, made again
/// after a signal unless `interruptible`.
#[inline(always)]
fn msgrcv_into(
    q: QueueId,
    buf: &mut [u8],
    mtype: c_long,
    flags: c_int,
    interruptible: bool,
) -> Result<usize, QueueError> {
    if buf.len() < MTYPE_LEN {
        return Err(QueueError::Os(libc::EINVAL));
    }
    loop {
        // SAFETY: buf is a live, writable slice of buf.len() bytes; msgrcv writes an mtype
        // and at most buf.len() - MTYPE_LEN bytes of mtext, all within it.
        let got = unsafe {
            msgrcv(
                q.0,
                buf.as_mut_ptr().cast(),
                buf.len() - MTYPE_LEN,
                mtype,
                flags,
            )
        };
        match got {
            Ok(n) => return Ok(n as usize),
            Err(libc::EINTR) if !interruptible => continue,
            Err(e) => return Err(QueueError::from_errno(e)),
        }
    }
}

/// `msgrcv`'s `MSG_COPY` (Linux 3.8, where the kernel has `CONFIG_CHECKPOINT_RESTORE`).
const MSG_COPY: c_int = 0o40000;

/// Copies the message at position `index` of queue `q` (0: the oldest) into `buf` (`mtype`,
/// then room for `mtext`) without taking it off (`MSG_COPY`), and returns the `mtext` bytes
/// copied.
///
/// # Errors
/// [`QueueError::Gone`] also when the message is larger than `buf` (the kernel's EINVAL:
/// a copy is never cut); [`QueueError::Empty`] when the queue holds `index` messages or fewer;
/// [`QueueError::Os`] with `ENOSYS` where the kernel cannot copy; [`QueueError::Permission`]
/// without read permission; [`QueueError::Gone`].
pub fn peek(q: QueueId, buf: &mut [u8], index: usize) -> Result<usize, QueueError> {
    msgrcv_into(q, buf, index as c_long, libc::IPC_NOWAIT | MSG_COPY, false)
}

/// A blocking receive that is a thread cancellation point, as the C library's `msgrcv` is:
/// for the C exports only, which make it from their own frame with nothing of the library's
/// below it (see the notes above `raw_syscall`: a cancellation acted on here unwinds through
/// the export into the program). `room` is an `mtype` and room for `mtext`. Retries on
/// `EINTR` (a cancellation is acted on in the C library's call, not returned).
///
/// # Errors
/// As [`recv`] without `nowait`.
///
/// # Safety
/// `room` points to `len` writable bytes, `len` >= `MTYPE_LEN`.
#[inline(always)]
pub unsafe fn recv_cancellable(
    q: QueueId,
    room: *mut u8,
    len: usize,
    mtype: c_long,
) -> Result<usize, QueueError> {
    extern "C-unwind" {
        // libc's msgrcv, declared so that the forced unwind of a cancellation may leave it.
        fn msgrcv(
            q: c_int,
            msgp: *mut libc::c_void,
            msgsz: usize,
            mtype: c_long,
            flags: c_int,
        ) -> isize;
    }
    loop {
        // SAFETY: the caller's: room has len writable bytes, an mtype and len - MTYPE_LEN of
        // mtext.
        let n = unsafe { msgrcv(q.0, room.cast(), len - MTYPE_LEN, mtype, 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        // SAFETY: errno of this thread, read right after the failed call.
        match unsafe { *libc::__errno_location() } {
            libc::EINTR => continue,
            e => return Err(QueueError::from_errno(e)),
        }
    }
}

/// Removes a queue (`IPC_RMID`); blocked senders and receivers wake with `EIDRM`.
///
/// # Errors
/// [`QueueError::Gone`] when it does not exist, [`QueueError::Permission`] when it is not ours.
pub fn remove(q: QueueId) -> Result<(), QueueError> {
    // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is allowed.
    let rc = unsafe { libc::msgctl(q.0, libc::IPC_RMID, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(QueueError::last())
    }
}

/// What `msgctl(IPC_STAT)` tells about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStat {
    /// Permission bits.
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Creator's user id.
    pub cuid: u32,
    /// Bytes now on the queue.
    pub bytes: u64,
    /// Messages now on the queue.
    pub messages: u64,
    /// Byte capacity (`msg_qbytes`).
    pub capacity: u64,
    /// Process that sent last.
    pub last_sender: i32,
    /// Process that received last.
    pub last_receiver: i32,
    /// When a message was last received, in seconds since the epoch (0: never).
    pub last_receive: i64,
}

/// Reads a queue's state.
///
/// # Errors
/// [`QueueError::Gone`] when it does not exist, [`QueueError::Permission`] without read access.
pub fn stat(q: QueueId) -> Result<QueueStat, QueueError> {
    // SAFETY: msqid_ds is plain old data; all zeroes is a valid value.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: ds is a valid, writable msqid_ds for IPC_STAT to fill.
    let rc = unsafe { libc::msgctl(q.0, libc::IPC_STAT, &mut ds) };
    if rc != 0 {
        return Err(QueueError::last());
    }
    Ok(QueueStat {
        mode: ds.msg_perm.mode as u32 & 0o777,
        uid: ds.msg_perm.uid,
        cuid: ds.msg_perm.cuid,
        bytes: ds.__msg_cbytes as u64,
        messages: ds.msg_qnum as u64,
        capacity: ds.msg_qbytes as u64,
        last_sender: ds.msg_lspid,
        last_receiver: ds.msg_lrpid,
        last_receive: ds.msg_rtime as i64,
    })
}

/// Sets a queue's byte capacity (`msg_qbytes`, via `IPC_SET`); owner, mode and the rest
/// stay. Going above the system's `msgmnb` needs `CAP_SYS_RESOURCE`.
///
/// # Errors
/// [`QueueError::Permission`] without that capability (or not the queue's owner),
/// [`QueueError::Gone`] when it does not exist.
pub fn set_capacity(q: QueueId, bytes: u64) -> Result<(), QueueError> {
    // SAFETY: msqid_ds is plain old data; all zeroes is a valid value.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: ds is a valid, writable msqid_ds for IPC_STAT to fill.
    if unsafe { libc::msgctl(q.0, libc::IPC_STAT, &mut ds) } != 0 {
        return Err(QueueError::last());
    }
    ds.msg_qbytes = bytes as _;
    // SAFETY: ds is a valid msqid_ds; IPC_SET reads its owner, mode and msg_qbytes.
    if unsafe { libc::msgctl(q.0, libc::IPC_SET, &mut ds) } != 0 {
        return Err(QueueError::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Guard(QueueId);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = remove(self.0);
        }
    }

    #[test]
    fn send_receive_remove() {
        let q = Guard(create_private(0o600).unwrap());
        let mut bytes = (5 as c_long).to_ne_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        send(q.0, &bytes, true).unwrap();
        let st = stat(q.0).unwrap();
        assert_eq!((st.mode, st.messages, st.bytes), (0o600, 1, 3));
        let mut buf = [0u8; 64];
        assert_eq!(
            recv(
                q.0,
                &mut buf,
                6,
                RecvFlags {
                    nowait: true,
                    ..Default::default()
                }
            ),
            Err(QueueError::Empty)
        );
        let n = recv(q.0, &mut buf, 5, RecvFlags::default()).unwrap();
        assert_eq!(&buf[MTYPE_LEN..MTYPE_LEN + n], b"abc");
        remove(q.0).unwrap();
        assert_eq!(send(q.0, &bytes, true), Err(QueueError::Gone));
    }

    #[test]
    fn nowait_and_truncating_receives() {
        let q = Guard(create_private(0o600).unwrap());
        let mut bytes = (7 as c_long).to_ne_bytes().to_vec();
        bytes.extend_from_slice(b"abcdef");
        send(q.0, &bytes, true).unwrap();
        let mut buf = [0u8; MTYPE_LEN + 4];
        let nowait = RecvFlags {
            nowait: true,
            ..Default::default()
        };
        assert_eq!(recv(q.0, &mut buf, 8, nowait), Err(QueueError::Empty));
        assert_eq!(recv(q.0, &mut buf, -7, nowait), Err(QueueError::TooBig));
        let cut = RecvFlags {
            truncate: true,
            ..nowait
        };
        assert_eq!(recv(q.0, &mut buf, -7, cut), Ok(4));
        assert_eq!(&buf[..], &bytes[..MTYPE_LEN + 4]);
        remove(q.0).unwrap();
        assert_eq!(send(q.0, &bytes, true), Err(QueueError::Gone));
        assert_eq!(recv(q.0, &mut buf, 0, nowait), Err(QueueError::Gone));
    }

    #[test]
    fn short_buffers_are_refused() {
        assert_eq!(
            send(QueueId(0), &[0u8; 2], true),
            Err(QueueError::Os(libc::EINVAL))
        );
        assert_eq!(
            recv(QueueId(0), &mut [0u8; 2], 0, RecvFlags::default()),
            Err(QueueError::Os(libc::EINVAL))
        );
    }
}
