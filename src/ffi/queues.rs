//! Exports of the serving side and the raw queue helpers: receive, answer, take a message
//! apart, the handler table, and `msgsnd`/`msgget` wrappers.

use super::args;
use super::calls::{existing_queue_arg, queue_arg};
use super::{guard, guard_step, Step};
use crate::cancellable;
use crate::config;
use crate::error::MipcError;
use crate::name::MipcName;
use crate::server::{self, HandlerTable};
use crate::sysv;
use crate::timeout::RecvTimeout;
use crate::wire::{MIPC_NAME_MAX_LEN, MIPC_OK, MTEXT_MAX_TAGGED, MTYPE_LEN};
use std::os::raw::{c_char, c_int, c_long, c_uint, c_void};

/// A handler registered with `mthread_register_mq`: gets the received message and its size.
pub type mipc_msg_handler_t =
    Option<unsafe extern "C-unwind" fn(msg: *mut c_char, size: c_int) -> c_int>;

/// "C-unwind": a handler's thread may be cancelled in it (at a cancellation point of its
/// own), and the forced unwind passes out through `mthread_check_mq_msg`, which calls it
/// with nothing of the library's held and outside its guard (whose `catch_unwind` would
/// abort the process on a foreign unwind).
type Handler = unsafe extern "C-unwind" fn(*mut c_char, c_int) -> c_int;
static HANDLERS: HandlerTable<Handler> = HandlerTable::new();

/// Largest receive a caller's buffer is ever used for (a foreign queue may hold messages up
/// to the system's MSGMAX, which can be raised; 64 KiB covers any sane setting).
const FOREIGN_RECV_MAX: usize = MTYPE_LEN + 65536;

/// Receives one message from queue `mqd` into `buf` (`size` bytes, normally
/// `MIPC_DEFAULT_MAX_MSG_SIZE`), with SysV type semantics for `type` (0: any), waiting up to
/// `timeout` ms (-1: forever, 0: not at all).
///
/// # Returns
/// The number of bytes after the `long` type (the `msgrcv` count), or `MIPC_ERROR` (bad
/// arguments, timeout, buffer too small (the message stays queued), queue removed).
///
/// A wait without timeout is a thread cancellation point, as in the original library: a
/// `pthread_cancel` of a thread blocked here ends the thread (the receive is made from this
/// function's own frame, with nothing of the library's below it; the buffer the thread
/// received into is lost with it).
///
/// # Safety
/// `buf` is NULL or points to `size` writable bytes.
#[unsafe(no_mangle)]
#[link_section = ".text.mipc_hot.serve"]
pub unsafe extern "C-unwind" fn mipc_mq_receive(
    mqd: c_int,
    buf: *mut c_void,
    size: c_int,
    r#type: c_long,
    timeout: c_int,
) -> c_int {
    const FUNC: &str = "mipc_mq_receive";
    // The caller's buffer, once checked (plain data: nothing here may need dropping when a
    // cancellation unwinds this frame).
    let mut out = (std::ptr::null_mut::<u8>(), 0usize);
    let mut step = guard_step(FUNC, || {
        let q = queue_arg(mqd)?;
        if buf.is_null() {
            return Err(MipcError::NullPointer("buf"));
        }
        if size < MTYPE_LEN as c_int {
            return Err(MipcError::BadArgument(
                "size is smaller than a message's type field",
            ));
        }
        let wait = RecvTimeout::from_ms(timeout)?;
        out = (buf.cast::<u8>(), (size as usize).min(FOREIGN_RECV_MAX));
        // SAFETY: buf is not NULL and the caller guarantees size (>= out.1) writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(out.0, out.1) };
        if wait != RecvTimeout::Forever {
            // A wait that ends by itself: the library makes it (not a cancellation point).
            return server::receive(q, out, r#type, wait).map(|n| Step::Done(n as c_int));
        }
        Ok(step_of(cancellable::receive_forever(q, out, r#type)?))
    });
    loop {
        let blocked = match step {
            Step::Done(rc) => return rc,
            Step::Wait(b) => b,
        };
        let (room, len) = blocked.room(out);
        // SAFETY: room is the thread's receive buffer or the caller's checked buffer, len
        // bytes of it (at least an mtype).
        let got = unsafe { sysv::recv_cancellable(blocked.queue, room, len, blocked.mtype) };
        step = guard_step(FUNC, || {
            // SAFETY: as above: out is the caller's checked buffer.
            let out = unsafe { std::slice::from_raw_parts_mut(out.0, out.1) };
            Ok(step_of(cancellable::received(blocked, got, out)?))
        });
    }
}

/// A receive's state as a step of [`mipc_mq_receive`].
#[inline(always)]
fn step_of(r: cancellable::Receiving) -> Step<cancellable::Blocked> {
    match r {
        cancellable::Receiving::Done(n) => Step::Done(n as c_int),
        cancellable::Receiving::Blocked(b) => Step::Wait(b),
    }
}

/// Sends a built message (`long` type, then `size` bytes) to queue `mqd` (`msgsnd`);
/// `flag` is 0 or `IPC_NOWAIT`.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (bad arguments, size over a tagged MIPC message, queue full
/// with `IPC_NOWAIT`, no such queue).
///
/// # Safety
/// `buf` is NULL or points to a `long` followed by `size` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_mq_send(
    mqd: c_int,
    buf: *const c_void,
    size: c_int,
    flag: c_int,
) -> c_int {
    guard("mipc_mq_send", || {
        let q = queue_arg(mqd)?;
        if buf.is_null() {
            return Err(MipcError::NullPointer("buf"));
        }
        if size < 0 || size as usize > MTEXT_MAX_TAGGED {
            return Err(MipcError::BadArgument(
                "size must be 0 .. offsetof(sysV_msg_payload_t, payload) + MIPC_MSG_MAX_LEN",
            ));
        }
        if flag & !libc::IPC_NOWAIT != 0 {
            return Err(MipcError::BadArgument("flag must be 0 or IPC_NOWAIT"));
        }
        // SAFETY: buf is not NULL and the caller guarantees a long plus size readable bytes.
        let msg =
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), MTYPE_LEN + size as usize) };
        // A message for the relay counts against its sender's entry as the library's own
        // sends do (`answer_back.rs`).
        let to_root = crate::link::is_root(q);
        if to_root {
            crate::answer_back::count_send(msg, true);
        }
        let out = sysv::send(q, msg, flag & libc::IPC_NOWAIT != 0);
        if to_root && out.is_err() {
            crate::answer_back::count_send(msg, false);
        }
        out.map(|_| MIPC_OK).map_err(Into::into)
    })
}

/// Creates a new private queue (mode 0600, or `MIPC_QUEUE_MODE`).
///
/// # Returns
/// The queue id, or `MIPC_ERROR` (system queue limit).
#[unsafe(no_mangle)]
pub extern "C" fn mipc_mq_create() -> c_int {
    guard("mipc_mq_create", || {
        sysv::create_private(config::queue_mode())
            .map(|q| q.0)
            .map_err(Into::into)
    })
}

/// Answers a request: `to` is the requester (the request's `src_name`), `from` the server's
/// own name, `api_id` the request's api id; `out_size` bytes at `out` are the answer.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (bad arguments, answer over 2048 bytes, no relay, "relay not
/// draining its queue" after `MIPC_SEND_TIMEOUT_MS`).
///
/// # Safety
/// `to` and `from` are NULL or NUL-terminated strings; `out` is NULL or points to
/// `out_size` readable bytes.
#[unsafe(no_mangle)]
#[link_section = ".text.mipc_hot.serve"]
pub unsafe extern "C" fn mipc_response_msg(
    to: *const c_char,
    from: *const c_char,
    api_id: c_uint,
    out: *const c_void,
    out_size: c_uint,
) -> c_int {
    guard("mipc_response_msg", || {
        let (mut to_name, mut from_name) = (MipcName::BLANK, MipcName::BLANK);
        // SAFETY: forwarded from this function's contract.
        unsafe { args::name_into(to, "to", &mut to_name) }?;
        // SAFETY: forwarded from this function's contract.
        unsafe { args::name_into(from, "from", &mut from_name) }?;
        // SAFETY: forwarded from this function's contract.
        let answer = unsafe { args::input(out, out_size.into(), "out") }?;
        server::respond(&to_name, &from_name, api_id, answer).map(|_| MIPC_OK)
    })
}

/// Takes a received message apart: writes the sender's name (with NUL) to `src_out` and the
/// api id to `*api_id_out`. Writes nothing on failure.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (NULL pointers, unterminated or empty sender name).
///
/// # Safety
/// `msg` is NULL or points to a received `sysV_msg_t` (at least its names and header);
/// `src_out` is NULL or points to `MIPC_NAME_MAX_LEN` writable bytes; `api_id_out` is NULL
/// or points to a writable `unsigned int`.
#[unsafe(no_mangle)]
#[link_section = ".text.mipc_hot.serve"]
pub unsafe extern "C" fn mipc_receive_msg(
    src_out: *mut c_char,
    api_id_out: *mut c_uint,
    msg: *const c_void,
) -> c_int {
    guard("mipc_receive_msg", || {
        if msg.is_null() {
            return Err(MipcError::NullPointer("msg"));
        }
        if src_out.is_null() {
            return Err(MipcError::NullPointer("src_out"));
        }
        if api_id_out.is_null() {
            return Err(MipcError::NullPointer("api_id_out"));
        }
        let base = msg.cast::<u8>();
        // SAFETY: msg points to a received message, whose src_name field (32 bytes right
        // after the long type) and header are readable; an array of bytes needs no
        // alignment. Checked where it lies: the name is not copied to the stack first.
        let field = unsafe { &*base.add(MTYPE_LEN).cast::<[u8; MIPC_NAME_MAX_LEN]>() };
        // Checked in place: the name is copied out with its NUL, never built.
        let len =
            MipcName::check_field(field).map_err(|e| MipcError::BadName("msg src_name", e))?;
        // SAFETY: as above; msg_type sits 64 bytes into the payload struct.
        let api = unsafe {
            std::ptr::read_unaligned(base.add(MTYPE_LEN + 2 * MIPC_NAME_MAX_LEN).cast::<u32>())
        };
        // SAFETY: both outputs are non-NULL and sized as this function's contract says; len is
        // at most 31, so the name and its NUL fit the 32 bytes of src_out. (Were src_out to
        // overlap the message, copy_short loads both its pieces before it stores any, and the
        // api id was read above, so the result is the one the copy to the stack gave.)
        unsafe {
            args::copy_short(field.as_ptr(), src_out.cast::<u8>(), len);
            *src_out.add(len) = 0;
            *api_id_out = api;
        }
        Ok(MIPC_OK)
    })
}

/// Registers `handler` for queue `mqd` on the calling thread; writes the indices that
/// `mthread_check_mq_msg` takes to `*thread_index` and `*mq_index`.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (NULL handler or index pointers, negative queue id).
///
/// # Safety
/// `thread_index` and `mq_index` are NULL or point to writable `int`s; `handler`, when not
/// NULL, stays callable for as long as messages are dispatched to it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mthread_register_mq(
    mqd: c_int,
    handler: mipc_msg_handler_t,
    thread_index: *mut c_int,
    mq_index: *mut c_int,
) -> c_int {
    guard("mthread_register_mq", || {
        let q = existing_queue_arg(mqd)?;
        let handler = handler.ok_or(MipcError::NullPointer("handler"))?;
        if thread_index.is_null() {
            return Err(MipcError::NullPointer("thread_index"));
        }
        if mq_index.is_null() {
            return Err(MipcError::NullPointer("mq_index"));
        }
        let (ti, mi) = HANDLERS.register(q, handler)?;
        // SAFETY: both pointers are non-NULL and writable per this function's contract.
        unsafe {
            *thread_index = ti as c_int;
            *mq_index = mi as c_int;
        }
        Ok(MIPC_OK)
    })
}

/// Hands a received message to the handler registered at (`thread_index`, `mq_index`).
/// No lock is held while the handler runs, so it may call any `mipc_*` function.
///
/// # Returns
/// The handler's return value, or `MIPC_ERROR` (NULL message, size out of range, no
/// handler at those indices).
///
/// # Safety
/// `msg` is NULL or points to `size` bytes the handler may read and write.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn mthread_check_mq_msg(
    thread_index: c_int,
    mq_index: c_int,
    msg: *mut c_char,
    size: c_int,
) -> c_int {
    let mut found = None;
    let checked = guard("mthread_check_mq_msg", || {
        if msg.is_null() {
            return Err(MipcError::NullPointer("msg"));
        }
        if size < 0 || size as usize > MTEXT_MAX_TAGGED {
            return Err(MipcError::BadArgument(
                "size is out of range for a MIPC message",
            ));
        }
        if thread_index < 0 || mq_index < 0 {
            return Err(MipcError::BadArgument("negative handler index"));
        }
        found = Some(
            HANDLERS
                .get(thread_index as usize, mq_index as usize)
                .ok_or(MipcError::BadArgument(
                    "no handler registered at these indices",
                ))?,
        );
        Ok(MIPC_OK)
    });
    match found {
        // Out of the guard: a cancellation acted on in the handler unwinds through this
        // frame (nothing to drop) into the program's.
        // SAFETY: h was registered as a valid C handler; msg and size are the caller's, as
        // this function's contract says.
        Some(h) => unsafe { h(msg, size) },
        None => checked,
    }
}
