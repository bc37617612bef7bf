//! Exports of the handler-table server API (issue 10, after seed 004's message bus): a
//! handler per api id, a default handler, an exit callback, and a serving loop that answers
//! PING itself and returns the handler's buffer to a waiting caller.
//!
//! ```c
//! static int add(const mipc_request_t *req, void *out, unsigned int *out_size) { ... }
//! mipc_register_handler(API_ADD, add);
//! mipc_set_exit_handler(on_exit);
//! return mipc_serve("middleware") == MIPC_OK ? 0 : 1;
//! ```
//!
//! SIGTERM ends `mipc_serve` cleanly when the program left SIGTERM at its default action:
//! the library's signal handler only writes one byte to a pipe (async-signal-safe,
//! `os::signals::on_sigterm`); a thread of the library reads it and puts a stop message on
//! each serving queue, so the loop ends between two messages, calls the exit handler,
//! unregisters and returns.

use super::args;
use super::calls::queue_arg;
use super::guard;
use crate::client;
use crate::endpoint::{self, Message};
use crate::error::MipcError;
use crate::events::MIPC_MSG_TYPE_EVENT;
use crate::name::MipcName;
use crate::server;
use crate::sysv::QueueId;
use crate::table;
use crate::timeout::RecvTimeout;
use crate::wire::{self, MIPC_API_ID_MAX, MIPC_MSG_MAX_LEN, MIPC_OK, MTYPE_LEN};
use std::collections::HashMap;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A request (or event) as a handler of `mipc_register_handler` sees it. Every pointer is
/// valid only while the handler runs.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct mipc_request_t {
    /// The sender's entry name (for an event: the publisher's), NUL-terminated.
    pub src_name: *const c_char,
    /// The sender's process as the relay knows it; 0 when unknown (a legacy sender).
    pub src_pid: c_int,
    /// The api id; `MIPC_MSG_TYPE_EVENT` for an event.
    pub api_id: c_uint,
    /// The request's bytes (`size` of them; not NULL even when `size` is 0).
    pub payload: *const c_void,
    /// Bytes at `payload`, at most `MIPC_MSG_MAX_LEN`.
    pub size: c_uint,
    /// As received: 0 when the sender does not wait for an answer.
    pub sync_flag: c_int,
    /// For an event, its name (NUL-terminated); NULL otherwise.
    pub event: *const c_char,
    /// The whole message as received (a `sysV_msg_t`), for `mipc_receive_msg`.
    pub msg: *const c_void,
}

/// A handler of the handler table. It reads `*req`, may write up to `*out_size` bytes (on
/// entry `MIPC_MSG_MAX_LEN`) to `out` and set `*out_size` to the number written, and returns
/// `MIPC_OK` to have those bytes sent back to a caller that waits, or anything else to send
/// nothing (for example because it answered with `mipc_response_msg` itself).
///
/// # Safety
/// The library calls it with `req` pointing to a valid `mipc_request_t`, `out` to
/// `MIPC_MSG_MAX_LEN` writable bytes and `out_size` to a writable `unsigned int`; it must not
/// keep any of these pointers after it returns, and must not unwind.
pub type mipc_handler_t = Option<
    unsafe extern "C" fn(
        req: *const mipc_request_t,
        out: *mut c_void,
        out_size: *mut c_uint,
    ) -> c_int,
>;

/// The exit callback of `mipc_set_exit_handler`: called once when serving ends, with
/// `MIPC_EXIT_UNREGISTERED` or `MIPC_EXIT_SIGNAL`.
pub type mipc_exit_handler_t = Option<unsafe extern "C" fn(reason: c_int)>;

/// Exit reason: the entry was unregistered (`mipc_exit` from a handler, or its queue removed).
pub const MIPC_EXIT_UNREGISTERED: c_int = 1;
/// Exit reason: SIGTERM (or `mipc_serve_stop`).
pub const MIPC_EXIT_SIGNAL: c_int = 2;
/// `mipc_dispatch_once`: serving ended; the exit handler has run.
pub const MIPC_DISPATCH_STOPPED: c_int = 2;
/// `mipc_dispatch_once`: one message was handled.
pub const MIPC_DISPATCH_HANDLED: c_int = 1;
/// `mipc_dispatch_once`: nothing arrived within the timeout.
pub const MIPC_DISPATCH_IDLE: c_int = 0;

type Handler = unsafe extern "C" fn(*const mipc_request_t, *mut c_void, *mut c_uint) -> c_int;
type ExitHandler = unsafe extern "C" fn(c_int);

struct Table {
    by_api: HashMap<u32, Handler>,
    default: Option<Handler>,
    exit: Option<ExitHandler>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> Result<R, MipcError> {
    let mut t = TABLE.lock().map_err(|_| MipcError::Internal)?;
    let t = t.get_or_insert_with(|| Table {
        by_api: HashMap::new(),
        default: None,
        exit: None,
    });
    Ok(f(t))
}

/// Registers `handler` for api `api_id` (replacing an earlier one); NULL removes it.
/// `MIPC_MSG_TYPE_EVENT` registers the handler of events. The table is the process's: every
/// thread that serves with `mipc_serve` or `mipc_dispatch_once` uses it.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (api id 0 or reserved; PING is answered by the library).
///
/// # Safety
/// `handler` is NULL or a function with the contract of `mipc_handler_t`, callable for as
/// long as messages are dispatched.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_register_handler(api_id: c_uint, handler: mipc_handler_t) -> c_int {
    guard("mipc_register_handler", || {
        if !((1..=MIPC_API_ID_MAX).contains(&api_id) || api_id == MIPC_MSG_TYPE_EVENT) {
            return Err(MipcError::BadArgument(
                "api id must be 1..0x7FFFFEFF or MIPC_MSG_TYPE_EVENT (PING is answered by the library)",
            ));
        }
        with_table(|t| match handler {
            Some(h) => t.by_api.insert(api_id, h),
            None => t.by_api.remove(&api_id),
        })?;
        Ok(MIPC_OK)
    })
}

/// Sets the handler of every api id without its own (NULL: none; such requests are then not
/// answered, as by a legacy server that ignores an api id).
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (internal lock poisoned).
///
/// # Safety
/// As `mipc_register_handler`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_set_default_handler(handler: mipc_handler_t) -> c_int {
    guard("mipc_set_default_handler", || {
        with_table(|t| t.default = handler)?;
        Ok(MIPC_OK)
    })
}

/// Sets the callback run once when serving ends: the entry was unregistered
/// (`MIPC_EXIT_UNREGISTERED`) or the process got SIGTERM (`MIPC_EXIT_SIGNAL`). NULL: none.
///
/// # Returns
/// `MIPC_OK`, or `MIPC_ERROR` (internal lock poisoned).
///
/// # Safety
/// `handler` is NULL or a function that takes an `int` and does not unwind.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_set_exit_handler(handler: mipc_exit_handler_t) -> c_int {
    guard("mipc_set_exit_handler", || {
        with_table(|t| t.exit = handler)?;
        Ok(MIPC_OK)
    })
}

// ---- stopping: SIGTERM through a self-pipe ----

/// Queues being served (entry name, queue), to be sent a stop message.
static SERVING: Mutex<Vec<(MipcName, QueueId)>> = Mutex::new(Vec::new());
/// Set once a stop was asked: every serving loop ends.
static STOPPING: AtomicBool = AtomicBool::new(false);
fn stop_all() {
    STOPPING.store(true, Ordering::SeqCst);
    if let Ok(s) = SERVING.lock() {
        for (name, q) in s.iter() {
            let _ = endpoint::send_stop(*q, name);
        }
    }
}

/// Ends every `mipc_serve` loop of the process (as SIGTERM does): each finishes the message
/// in hand, calls the exit handler with `MIPC_EXIT_SIGNAL`, unregisters and returns.
/// For programs that handle SIGTERM themselves; safe to call from any thread, not from a
/// signal handler.
///
/// # Returns
/// `MIPC_OK`.
#[unsafe(no_mangle)]
pub extern "C" fn mipc_serve_stop() -> c_int {
    guard("mipc_serve_stop", || {
        stop_all();
        Ok(MIPC_OK)
    })
}

// ---- dispatching ----

enum Outcome {
    Handled,
    Idle,
    Stopped(c_int),
}

fn exit_handler() -> Option<ExitHandler> {
    with_table(|t| t.exit).ok().flatten()
}

fn run_exit(reason: c_int) {
    if let Some(f) = exit_handler() {
        // SAFETY: registered as a valid exit handler (mipc_set_exit_handler's contract).
        unsafe { f(reason) };
    }
}

/// Receives one message for entry (`name`, `queue`) and hands it to its handler.
fn dispatch(queue: QueueId, name: &MipcName, wait: RecvTimeout) -> Result<Outcome, MipcError> {
    if STOPPING.load(Ordering::SeqCst) {
        return Ok(Outcome::Stopped(MIPC_EXIT_SIGNAL));
    }
    let (msg, raw) = match endpoint::receive_message(queue, name, wait) {
        Ok(m) => m,
        Err(MipcError::Timeout) => return Ok(Outcome::Idle),
        Err(MipcError::QueueRemoved) => return Ok(Outcome::Stopped(MIPC_EXIT_UNREGISTERED)),
        Err(e) => return Err(e),
    };
    let hdr = wire::decode(&raw[MTYPE_LEN..]).map_err(MipcError::BadMessage)?;
    let (api, event) = match &msg {
        Message::Stop => {
            if STOPPING.load(Ordering::SeqCst) {
                return Ok(Outcome::Stopped(MIPC_EXIT_SIGNAL));
            }
            return Ok(Outcome::Handled); // a stale stop of an earlier loop
        }
        Message::Event(ev) => (MIPC_MSG_TYPE_EVENT, Some(*ev.name().as_name())),
        Message::Request(r) => (r.api(), None),
    };
    let (src_pid, payload) = match &msg {
        Message::Event(ev) => (ev.publisher_pid(), ev.data()),
        Message::Request(r) => (r.sender_pid(), r.payload()),
        Message::Stop => unreachable!("handled above"),
    };
    let handler = with_table(|t| t.by_api.get(&api).copied().or(t.default))?;
    let Some(handler) = handler else {
        return Ok(Outcome::Handled);
    };
    let mut src = [0u8; 33];
    src[..hdr.src.as_bytes().len()].copy_from_slice(hdr.src.as_bytes());
    let mut ev_name = [0u8; 33];
    if let Some(e) = &event {
        ev_name[..e.as_bytes().len()].copy_from_slice(e.as_bytes());
    }
    let req = mipc_request_t {
        src_name: src.as_ptr().cast(),
        src_pid: src_pid.map_or(0, |p| p as c_int),
        api_id: api,
        payload: payload.as_ptr().cast(),
        size: payload.len() as c_uint,
        sync_flag: hdr.sync_flag,
        event: if event.is_some() {
            ev_name.as_ptr().cast()
        } else {
            std::ptr::null()
        },
        msg: raw.as_ptr().cast(),
    };
    let mut out = vec![0u8; MIPC_MSG_MAX_LEN];
    let mut out_size = MIPC_MSG_MAX_LEN as c_uint;
    // SAFETY: the handler was registered under mipc_handler_t's contract; req, out and
    // out_size are live and sized as that contract says. No lock is held.
    let rc = unsafe { handler(&req, out.as_mut_ptr().cast(), &mut out_size) };
    if rc == MIPC_OK && hdr.sync_flag != 0 && event.is_none() {
        let n = out_size as usize;
        if n > MIPC_MSG_MAX_LEN {
            return Err(MipcError::BadArgument(
                "the handler set *out_size over MIPC_MSG_MAX_LEN; nothing was answered",
            ));
        }
        let _ = server::respond(&hdr.src, name, api, &out[..n]);
    }
    Ok(Outcome::Handled)
}

struct Serving {
    queue: QueueId,
}

impl Serving {
    fn start(name: MipcName, queue: QueueId) -> Result<Serving, MipcError> {
        // SIGTERM ends serving, unless the program handles SIGTERM itself.
        crate::os::signals::on_sigterm(stop_all);
        SERVING
            .lock()
            .map_err(|_| MipcError::Internal)?
            .push((name, queue));
        Ok(Serving { queue })
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(mut s) = SERVING.lock() {
            s.retain(|(_, q)| *q != self.queue);
        }
    }
}

/// Registers `name` for the calling thread (as `mipc_init`), then receives and dispatches
/// messages to the handler table until the entry is unregistered (a handler called
/// `mipc_exit`, or its queue was removed) or the process gets SIGTERM: then calls the exit
/// handler, unregisters the entry and returns. PING is answered by the library; a request
/// whose handler returned `MIPC_OK` gets the handler's buffer as its answer when its caller
/// waits.
///
/// # Returns
/// `MIPC_OK` when serving ended as above; `MIPC_ERROR` when registering failed (bad name,
/// name in use, no relay) or receiving failed otherwise.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string. The registered handlers follow their contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mipc_serve(name: *const c_char) -> c_int {
    guard("mipc_serve", || {
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { args::name(name, "name") }?;
        let queue = client::init(&name)?;
        let serving = Serving::start(name, queue)?;
        let reason = loop {
            match dispatch(queue, &name, RecvTimeout::Forever)? {
                Outcome::Handled | Outcome::Idle => {}
                Outcome::Stopped(reason) => break reason,
            }
        };
        drop(serving);
        run_exit(reason);
        endpoint::unregister(&name);
        Ok(MIPC_OK)
    })
}

/// For a daemon with its own loop: receives at most one message on its entry's queue `mqd`
/// (the value `mipc_init` returned, in this thread), waiting up to `timeout` ms (0: only
/// look, -1: forever), and dispatches it as `mipc_serve` does. When the entry was
/// unregistered or `mipc_serve_stop`/SIGTERM asked to stop, calls the exit handler and
/// returns `MIPC_DISPATCH_STOPPED` (the entry stays registered: `mipc_exit` it).
///
/// # Returns
/// `MIPC_DISPATCH_HANDLED` (1), `MIPC_DISPATCH_IDLE` (0: nothing within `timeout`),
/// `MIPC_DISPATCH_STOPPED` (2), or `MIPC_ERROR` (not an entry of this process, bad timeout,
/// a handler's `*out_size` over `MIPC_MSG_MAX_LEN`, queue errors).
#[unsafe(no_mangle)]
pub extern "C" fn mipc_dispatch_once(mqd: c_int, timeout: c_int) -> c_int {
    guard("mipc_dispatch_once", || {
        let queue = queue_arg(mqd)?;
        let entry = table::by_queue(queue).ok_or(MipcError::BadArgument(
            "mqd is not the queue of an entry of this process (use what mipc_init returned)",
        ))?;
        let wait = RecvTimeout::from_ms(timeout)?;
        let serving = Serving::start(entry.name, queue)?;
        let out = dispatch(queue, &entry.name, wait)?;
        drop(serving);
        Ok(match out {
            Outcome::Handled => MIPC_DISPATCH_HANDLED,
            Outcome::Idle => MIPC_DISPATCH_IDLE,
            Outcome::Stopped(reason) => {
                run_exit(reason);
                MIPC_DISPATCH_STOPPED
            }
        })
    })
}
