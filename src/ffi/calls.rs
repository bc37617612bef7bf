//! Exports of the calling side: registration, sends, sync calls, ping, the process table.

use super::args;
use super::{guard, guard_step, Step};
use crate::cancellable;
use crate::client;
use crate::error::MipcError;
use crate::link;
use crate::os::ThreadId;
use crate::sysv::{self, QueueId};
use crate::table::{self, Entry};
use crate::timeout::CallTimeout;
use crate::wire::MIPC_OK;
use std::os::raw::{c_char, c_int, c_uint, c_void};

/// Registers an entry named `name` for the calling thread: creates its queue and registers it
/// with the relay (waiting for the relay's root queue to exist, without spinning) and in the
/// process table. Calling it again with the same name from the same thread returns the same
/// queue.
///
/// # Returns
/// The entry's queue id (the "mipc fd"), or `MIPC_ERROR` (NULL or invalid name, name in use
/// by another live process, no relay within `MIPC_INIT_TIMEOUT_MS`, "relay not draining its
/// queue": the relay is stopped or read nothing within `MIPC_SEND_TIMEOUT_MS`).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string (only its first 32 bytes are ever read).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_init(name: *const c_char) -> c_int {
    guard("mipc_init", || {
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { args::name(name, "name") }?;
        client::init(&name).map(|q| q.0)
    })
}

/// Unregisters every entry of the calling thread and removes their queues (a mipc-rs
/// addition; entries of a process are also removed when it exits normally).
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` when the thread had no entry.
#[unsafe(no_mangle)]
pub extern "C" fn mipc_exit() -> c_int {
    guard("mipc_exit", || client::exit_thread().map(|_| MIPC_OK))
}

/// Sends `in_size` bytes at `in` to `dst` as api `api_id` from the calling thread's entry and
/// waits for the answer, copying at most `out_size` bytes of it to `out`.
///
/// # Returns
/// `MIPC_OK` when the answer arrived and fit; `MIPC_ERROR` otherwise: bad arguments, payload
/// over 2048 bytes, thread not registered, no such destination, peer died, destination busy,
/// timeout, "relay not draining its queue" (the request could not be sent within
/// `MIPC_SEND_TIMEOUT_MS`), or an answer longer than `out_size` (whose first `out_size`
/// bytes were copied).
///
/// A wait without timeout (-1) is a thread cancellation point, as in the original library: a
/// `pthread_cancel` of a thread waiting for its answer ends the thread (the answer, if it
/// comes, is dropped as late). Not on the direct path (`MIPC_DIRECT=1`), whose wait stays in
/// the library: there the cancel is acted on after the call.
///
/// # Safety
/// `dst` is NULL or a NUL-terminated string; `in` is NULL or points to `in_size` readable
/// bytes; `out` is NULL or points to `out_size` writable bytes.
#[unsafe(no_mangle)]
#[link_section = ".text.mipc_hot.call"]
pub unsafe extern "C-unwind" fn mipc_send_sync_msg(
    dst: *const c_char,
    api_id: c_uint,
    r#in: *const c_void,
    in_size: c_uint,
    out: *mut c_void,
    out_size: c_uint,
    timeout: c_int,
) -> c_int {
    const FUNC: &str = "mipc_send_sync_msg";
    // The caller's answer buffer, once checked (plain data: nothing here may need dropping
    // when a cancellation unwinds this frame).
    let mut answer = (std::ptr::null_mut::<u8>(), 0usize);
    let mut step = guard_step(FUNC, || {
        // SAFETY: forwarded from this function's contract.
        let dst = unsafe { args::name(dst, "dst") };
        // Used where it was made: moving the name out of the Result costs ~35 Ir of byte
        // shuffling (the compiler splits the copied field into pieces).
        let dst = dst.as_ref().map_err(|e| *e)?;
        // SAFETY: forwarded from this function's contract.
        let input = unsafe { args::input(r#in, in_size.into(), "in") }?;
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { args::output(out, out_size.into(), "out") }?;
        answer = (out.as_mut_ptr(), out.len());
        let wait = CallTimeout::from_ms(timeout)?;
        if wait != CallTimeout::forever() {
            // A wait that ends by itself: the library makes it (not a cancellation point).
            return client::call(dst, api_id, input, out, wait).map(|_| Step::Done(MIPC_OK));
        }
        Ok(call_step(cancellable::call_forever(
            dst, api_id, input, out,
        )?))
    });
    loop {
        let awaiting = match step {
            Step::Done(rc) => return rc,
            Step::Wait(a) => a,
        };
        let (room, len) = awaiting.room();
        // SAFETY: room is the thread's receive buffer, len bytes of it.
        let got = unsafe { sysv::recv_cancellable(awaiting.queue, room, len, awaiting.mtype) };
        step = guard_step(FUNC, || {
            let out = match answer.1 {
                0 => &mut [][..],
                // SAFETY: the caller's answer buffer, checked by the first step.
                n => unsafe { std::slice::from_raw_parts_mut(answer.0, n) },
            };
            Ok(call_step(cancellable::answered(awaiting, got, out)?))
        });
    }
}

/// A sync call's state as a step of [`mipc_send_sync_msg`].
#[inline(always)]
fn call_step(c: cancellable::Calling) -> Step<cancellable::Awaiting> {
    match c {
        cancellable::Calling::Done => Step::Done(MIPC_OK),
        cancellable::Calling::Awaiting(a) => Step::Wait(a),
    }
}

/// Sends one message from `src` to `dst` through the relay without waiting.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (bad arguments, payload over 2048 bytes, no relay, "relay not
/// draining its queue": its root queue stayed full for `MIPC_SEND_TIMEOUT_MS`, default 5 s).
///
/// # Safety
/// `src` and `dst` are NULL or NUL-terminated strings; `in` is NULL or points to `in_size`
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_send_msg(
    src: *const c_char,
    dst: *const c_char,
    api_id: c_uint,
    r#in: *const c_void,
    in_size: c_uint,
    sync_flag: c_int,
) -> c_int {
    guard("mipc_send_msg", || {
        // SAFETY: forwarded from this function's contract.
        let src = unsafe { args::name(src, "src") }?;
        // SAFETY: forwarded from this function's contract.
        let dst = unsafe { args::name(dst, "dst") }?;
        // SAFETY: forwarded from this function's contract.
        let input = unsafe { args::input(r#in, in_size.into(), "in") }?;
        client::send(&src, &dst, api_id, input, sync_flag).map(|_| MIPC_OK)
    })
}

/// Sends a PING to `dst` and waits up to `timeout` ms (-1: forever) for its answer.
/// `"mipc_main"` is answered by the relay itself.
///
/// # Returns
/// `MIPC_OK` when answered, else `MIPC_ERROR`.
///
/// # Safety
/// `dst` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_ping(dst: *const c_char, timeout: c_int) -> c_int {
    guard("mipc_ping", || {
        // SAFETY: forwarded from this function's contract.
        let dst = unsafe { args::name(dst, "dst") }?;
        client::ping(&dst, CallTimeout::from_ms(timeout)?).map(|_| MIPC_OK)
    })
}

/// Drops the waiting answers of type `api_id` from queue `mqd` (the legacy library did this
/// before each sync call). `name` is the entry's name, checked but not otherwise used.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (bad arguments, no such queue).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_clear_resp_msgq(
    name: *const c_char,
    mqd: c_int,
    api_id: c_uint,
) -> c_int {
    guard("mipc_clear_resp_msgq", || {
        // SAFETY: forwarded from this function's contract.
        unsafe { args::name(name, "name") }?;
        let q = queue_arg(mqd)?;
        link::check_api(api_id)?;
        client::clear_responses(q, api_id).map(|_| MIPC_OK)
    })
}

/// Waits on queue `mqd` up to `timeout` ms (-1: forever) for an answer of type `api_id` and
/// copies at most `out_size` bytes of it to `out`.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (bad arguments, timeout, answer truncated, queue removed).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or points to `out_size` writable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_receive_response_msg(
    name: *const c_char,
    mqd: c_int,
    api_id: c_uint,
    out: *mut c_void,
    out_size: c_uint,
    timeout: c_int,
) -> c_int {
    guard("mipc_receive_response_msg", || {
        // SAFETY: forwarded from this function's contract.
        unsafe { args::name(name, "name") }?;
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { args::output(out, out_size.into(), "out") }?;
        let q = queue_arg(mqd)?;
        link::check_api(api_id)?;
        let wait = CallTimeout::from_ms(timeout)?;
        client::receive_response(q, api_id, out, wait).map(|_| MIPC_OK)
    })
}

/// Records (`name`, `mqd`) as thread `tid`'s entry in the process table, without telling
/// the relay (the legacy building block of `mipc_init`).
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (bad name, negative queue id).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_user_thread_info_register(
    name: *const c_char,
    mqd: c_int,
    tid: libc::pthread_t,
) -> c_int {
    guard("mipc_user_thread_info_register", || {
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { args::name(name, "name") }?;
        let q = existing_queue_arg(mqd)?;
        let tid = ThreadId::from_pthread(tid);
        table::register(Entry::new(name, q, tid, false, false)).map(|_| MIPC_OK)
    })
}

/// Finds thread `tid`'s entry: writes its name (with NUL) to `name_out` and its queue id to
/// `*mqd_out`. Writes nothing on failure.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (NULL outputs, thread has no entry).
///
/// # Safety
/// `name_out` is NULL or points to `MIPC_NAME_MAX_LEN` writable bytes; `mqd_out` is NULL or
/// points to a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_user_thread_info_find(
    name_out: *mut c_char,
    mqd_out: *mut c_int,
    tid: libc::pthread_t,
) -> c_int {
    guard("mipc_user_thread_info_find", || {
        if name_out.is_null() {
            return Err(MipcError::NullPointer("name_out"));
        }
        if mqd_out.is_null() {
            return Err(MipcError::NullPointer("mqd_out"));
        }
        let e = table::by_thread(ThreadId::from_pthread(tid))?;
        // SAFETY: both outputs are non-NULL and sized as this function's contract says.
        unsafe {
            args::write_name(name_out, &e.name);
            *mqd_out = e.queue.0;
        }
        Ok(MIPC_OK)
    })
}

/// Checks a queue id argument that is only recorded (not used at once): it must name a
/// queue that exists now, so a table never holds a closed or made-up id.
pub(crate) fn existing_queue_arg(mqd: c_int) -> Result<QueueId, MipcError> {
    let q = queue_arg(mqd)?;
    match crate::sysv::stat(q) {
        Err(crate::sysv::QueueError::Gone) => {
            Err(MipcError::BadArgument("no queue with that id exists"))
        }
        _ => Ok(q),
    }
}

/// Checks a queue id argument.
pub(crate) fn queue_arg(mqd: c_int) -> Result<QueueId, MipcError> {
    if mqd < 0 {
        Err(MipcError::BadArgument("queue id is negative"))
    } else {
        Ok(QueueId(mqd))
    }
}
