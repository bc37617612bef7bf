//! The native Rust API: an [`Endpoint`] is one entry on the bus, owned by the thread that
//! made it, with calls, sends, serving with closures, events and broadcast, typed errors
//! ([`Error`]) and a [`Timeout`] type. No `unsafe` is needed to use it; it runs on the same
//! core as the C exports, so Rust and C programs share one bus, byte for byte.
//!
//! ```no_run
//! use mipc::{Endpoint, Timeout};
//! use std::time::Duration;
//!
//! // A server thread: answers api 1 with the payload reversed.
//! std::thread::spawn(|| -> Result<(), mipc::Error> {
//!     let server = Endpoint::new("reverser")?;
//!     server.serve(|req| req.payload().iter().rev().copied().collect())
//! });
//!
//! let client = Endpoint::new("client")?;
//! # client.wait_for("reverser", Timeout::Never)?;
//! let answer = client.call("reverser", 1, b"abc", Timeout::After(Duration::from_secs(1)))?;
//! assert_eq!(answer, b"cba");
//! # Ok::<(), mipc::Error>(())
//! ```
//!
//! An entry belongs to a thread (SPEC §1: the per-process table maps threads to entries), so
//! an `Endpoint` is neither `Send` nor `Sync`: make it in the thread that uses it. A
//! [`Stopper`] is the one handle that may travel to other threads.

use crate::client;
use crate::error::{MipcError, RelayErrorCode};
use crate::events::{self, EventError, EventName, EventPattern, MIPC_MSG_TYPE_EVENT};
use crate::name::{MipcName, NameError};
use crate::pubsub;
use crate::server;
use crate::sysv::{self, QueueError, QueueId};
use crate::table;
use crate::timeout::{CallTimeout, RecvTimeout};
use crate::wire::{
    self, Build, MsgBuf, WireError, MIPC_MSG_MAX_LEN, MIPC_MSG_TYPE_PING, MTEXT_MAX, MTYPE_LEN,
};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::c_long;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long an operation may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Timeout {
    /// Wait until it completes (`MIPC_MSG_SYNC_WAIT_FOREVER` in C).
    #[default]
    Never,
    /// Give up after this long. A receive with `After(Duration::ZERO)` only looks; a call
    /// needs more than zero.
    After(Duration),
}

impl Timeout {
    /// `Timeout::After` this many milliseconds.
    ///
    /// ```
    /// use mipc::Timeout;
    /// use std::time::Duration;
    /// assert_eq!(Timeout::millis(250), Timeout::After(Duration::from_millis(250)));
    /// ```
    pub const fn millis(ms: u64) -> Timeout {
        Timeout::After(Duration::from_millis(ms))
    }

    fn for_call(self) -> Result<CallTimeout, Error> {
        match self {
            Timeout::Never => Ok(CallTimeout::forever()),
            Timeout::After(d) if d.is_zero() => Err(Error::InvalidArgument(
                "a call's timeout must be more than zero",
            )),
            Timeout::After(d) => Ok(CallTimeout::after(d)),
        }
    }

    fn for_receive(self) -> RecvTimeout {
        match self {
            Timeout::Never => RecvTimeout::Forever,
            Timeout::After(d) if d.is_zero() => RecvTimeout::NoWait,
            Timeout::After(d) => RecvTimeout::After(d),
        }
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Timeout {
        Timeout::After(d)
    }
}

/// Why an endpoint operation failed.
///
/// ```
/// use mipc::{Error, MipcError};
/// // The core's errors (and the relay's error codes behind them) map one to one.
/// assert_eq!(Error::from(MipcError::PeerDied), Error::PeerDied);
/// assert_eq!(Error::from(MipcError::Timeout).to_string(), "timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No answer (or no message) within the timeout.
    Timeout,
    /// No entry of that name is registered (relay error code 1).
    NoSuchDestination,
    /// The destination died, or its queue is gone, while the call waited (code 2).
    PeerDied,
    /// The destination's queue stayed full past the relay's bounds (code 3).
    DestinationBusy,
    /// The call would close a cycle of callers waiting on each other (code 4).
    Deadlock,
    /// The name is held by another live entry (code 5).
    NameInUse,
    /// `"mipc_main"` serves no such api, or a relay too old for the request (code 7).
    NotServed,
    /// The relay's name table, or this entry's subscription list, is full (code 8).
    TableFull,
    /// No relay runs (no root queue).
    RelayUnavailable,
    /// The relay is not draining its root queue (stopped, hung, or far behind): a send
    /// found it full for `MIPC_SEND_TIMEOUT_MS`, or registration got no greeting. The text
    /// says which.
    RelayStalled(&'static str),
    /// The relay does not know events and broadcast (a legacy relay): nothing was sent.
    EventsUnsupported,
    /// This endpoint's queue was removed (its entry was unregistered from outside).
    Unregistered,
    /// The calling thread has no entry, or already has one (one endpoint per thread).
    NotRegistered,
    /// A thread may hold one endpoint; this one already holds the named one.
    ThreadHasEndpoint,
    /// A name (entry or event) is empty, too long (over 31 bytes), or holds a NUL.
    InvalidName(NameError),
    /// An event name holds `*`, or a pattern holds `*` before its end.
    InvalidPattern,
    /// Data longer than one message carries.
    PayloadTooLarge {
        /// Bytes given.
        len: usize,
        /// Most bytes allowed.
        max: usize,
    },
    /// An argument is out of range (a reserved api id, a zero call timeout, ...).
    InvalidArgument(&'static str),
    /// A message received broke the wire format (it was dropped).
    BadMessage(WireError),
    /// A queue system call failed.
    Queue(QueueError),
    /// An internal lock was poisoned by a panic; nothing was done.
    Internal,
}

impl From<MipcError> for Error {
    fn from(e: MipcError) -> Error {
        match e {
            MipcError::Timeout => Error::Timeout,
            MipcError::NoSuchDestination => Error::NoSuchDestination,
            MipcError::PeerDied => Error::PeerDied,
            MipcError::DestinationBusy => Error::DestinationBusy,
            MipcError::Deadlock => Error::Deadlock,
            MipcError::NameInUse => Error::NameInUse,
            MipcError::NotServed => Error::NotServed,
            MipcError::TableFull => Error::TableFull,
            MipcError::RelayUnavailable => Error::RelayUnavailable,
            MipcError::RelayStalled(why) => Error::RelayStalled(why),
            MipcError::EventsUnsupported => Error::EventsUnsupported,
            MipcError::QueueRemoved => Error::Unregistered,
            MipcError::NotRegistered => Error::NotRegistered,
            MipcError::BadName(_, n) => Error::InvalidName(n),
            MipcError::PayloadTooLarge(len) => Error::PayloadTooLarge {
                len: len as usize,
                max: MIPC_MSG_MAX_LEN,
            },
            MipcError::BadArgument(what) | MipcError::NullPointer(what) => {
                Error::InvalidArgument(what)
            }
            // An endpoint always receives into a buffer large enough for any answer.
            MipcError::AnswerTruncated { .. } => Error::InvalidArgument("answer truncated"),
            MipcError::BadMessage(w) => Error::BadMessage(w),
            MipcError::Queue(q) => Error::Queue(q),
            MipcError::Internal => Error::Internal,
        }
    }
}

impl From<RelayErrorCode> for Error {
    fn from(code: RelayErrorCode) -> Error {
        MipcError::from_relay(code).into()
    }
}

impl From<EventError> for Error {
    fn from(e: EventError) -> Error {
        match e {
            EventError::BadName(n) => Error::InvalidName(n),
            EventError::Wildcard => Error::InvalidPattern,
            EventError::TooLarge { len, max } => Error::PayloadTooLarge { len, max },
            EventError::Malformed => Error::InvalidArgument("malformed event payload"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => f.write_str("timeout"),
            Error::NoSuchDestination => f.write_str("no such destination"),
            Error::PeerDied => f.write_str("peer died"),
            Error::DestinationBusy => f.write_str("destination busy (its queue is full)"),
            Error::Deadlock => f.write_str("deadlock: the destination is waiting on this caller"),
            Error::NameInUse => f.write_str("name in use by another live entry"),
            Error::NotServed => f.write_str("mipc_main serves no such api"),
            Error::TableFull => f.write_str("the relay's table is full"),
            Error::RelayUnavailable => f.write_str("relay not running (no root queue)"),
            Error::RelayStalled(why) => write!(f, "relay not draining its queue ({why})"),
            Error::EventsUnsupported => {
                f.write_str("the relay does not support events and broadcast")
            }
            Error::Unregistered => f.write_str("this endpoint's entry was unregistered"),
            Error::NotRegistered => f.write_str("the calling thread has no entry"),
            Error::ThreadHasEndpoint => {
                f.write_str("the calling thread already has an entry (one endpoint per thread)")
            }
            Error::InvalidName(e) => write!(f, "invalid name: {e}"),
            Error::InvalidPattern => {
                f.write_str("'*' is allowed only at the end of a subscription pattern")
            }
            Error::PayloadTooLarge { len, max } => {
                write!(f, "{len} bytes is over the {max} one message carries")
            }
            Error::InvalidArgument(what) => f.write_str(what),
            Error::BadMessage(e) => write!(f, "malformed message dropped: {e}"),
            Error::Queue(e) => write!(f, "queue error: {e}"),
            Error::Internal => f.write_str("internal error (a lock was poisoned)"),
        }
    }
}

impl std::error::Error for Error {}

fn name(text: &str) -> Result<MipcName, Error> {
    MipcName::new(text.as_bytes()).map_err(Error::InvalidName)
}

/// A request (a call or a one-way message) as a server receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    sender: MipcName,
    sender_pid: Option<u32>,
    api: u32,
    payload: Vec<u8>,
    wants_answer: bool,
}

impl Request {
    /// The sender's entry name.
    pub fn sender(&self) -> &MipcName {
        &self.sender
    }

    /// The sender's process, as the relay knows it (`None` for a legacy sender, or a message
    /// that did not pass through a relay that reports it).
    pub fn sender_pid(&self) -> Option<u32> {
        self.sender_pid
    }

    /// The api id.
    pub fn api(&self) -> u32 {
        self.api
    }

    /// The request's bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Whether the sender waits for an answer (a call) rather than sent one way.
    pub fn wants_answer(&self) -> bool {
        self.wants_answer
    }
}

/// An event as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    publisher: MipcName,
    publisher_pid: Option<u32>,
    name: EventName,
    data: Vec<u8>,
}

impl Event {
    /// The publisher's entry name.
    pub fn publisher(&self) -> &MipcName {
        &self.publisher
    }

    /// The publisher's process, as the relay knows it.
    pub fn publisher_pid(&self) -> Option<u32> {
        self.publisher_pid
    }

    /// The event's name.
    pub fn name(&self) -> &EventName {
        &self.name
    }

    /// The event's data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

/// What [`Endpoint::receive`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A call or a one-way message (a broadcast arrives as a one-way message of its api id).
    Request(Request),
    /// An event of a subscription.
    Event(Event),
    /// A [`Stopper`] asked the endpoint's serving loop to end.
    Stop,
}

/// The type of the message a [`Stopper`] puts on its endpoint's own queue. It never passes
/// through the relay (the relay forwards no reserved type but PING).
const STOP_TYPE: u32 = events::MIPC_MSG_TYPE_STOP;

/// Receives the next message for the entry `own` on `queue` (the calling thread must own
/// it) and sorts it. A PING request is answered here and not returned.
pub(crate) fn receive_message(
    queue: QueueId,
    own: &MipcName,
    wait: RecvTimeout,
) -> Result<(Message, Vec<u8>), MipcError> {
    let mut buf = vec![0u8; MTYPE_LEN + MTEXT_MAX];
    let deadline = wait.deadline(std::time::Instant::now());
    loop {
        // What is left of the wait after messages handled here (pings, strays).
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => RecvTimeout::After(left),
                _ => RecvTimeout::NoWait,
            },
            None => wait,
        };
        let n = server::receive(queue, &mut buf, 0, wait)?;
        let mtext = &buf[MTYPE_LEN..MTYPE_LEN + n];
        let Ok(hdr) = wire::decode(mtext) else {
            continue; // server::receive checked it already
        };
        let payload = wire::payload(mtext, &hdr).to_vec();
        let sender_pid = crate::origin::recall(buf.as_ptr() as usize);
        let msg = match hdr.msg_type {
            MIPC_MSG_TYPE_PING => {
                if hdr.sync_flag != 0 {
                    let _ = server::respond(&hdr.src, own, MIPC_MSG_TYPE_PING, &0i32.to_ne_bytes());
                }
                continue;
            }
            MIPC_MSG_TYPE_EVENT => match EventName::from_name(hdr.dst) {
                Ok(name) => Message::Event(Event {
                    publisher: hdr.src,
                    publisher_pid: sender_pid,
                    name,
                    data: payload,
                }),
                Err(_) => continue,
            },
            STOP_TYPE if hdr.src == *own => Message::Stop,
            t if wire::is_control(t) => continue, // nothing an endpoint serves
            api => Message::Request(Request {
                sender: hdr.src,
                sender_pid,
                api,
                payload,
                wants_answer: hdr.sync_flag != 0,
            }),
        };
        buf.truncate(MTYPE_LEN + n);
        return Ok((msg, buf));
    }
}

/// Puts a STOP message on `queue` (the entry `own`'s queue). Returns `false` when the queue
/// was full (the caller then leaves a flag the loop checks between messages).
pub(crate) fn send_stop(queue: QueueId, own: &MipcName) -> Result<bool, MipcError> {
    let mut buf = MsgBuf::boxed();
    buf.build(Build {
        mtype: STOP_TYPE as c_long,
        src: own,
        dst: own,
        msg_type: STOP_TYPE,
        sync_flag: 0,
        payload: &[],
        tag: None,
    });
    match sysv::send(queue, buf.as_sendable(), true) {
        Ok(()) => Ok(true),
        Err(QueueError::Full) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Ends an endpoint's serving loop from any thread ([`Endpoint::stopper`]).
#[derive(Debug, Clone)]
pub struct Stopper {
    queue: QueueId,
    name: MipcName,
    /// Set when the stop message did not fit the queue: the loop sees it between messages.
    pending: Arc<AtomicBool>,
}

impl Stopper {
    /// Asks the loop to end: [`Endpoint::run`] and [`Endpoint::serve`] return `Ok(())` after
    /// the message in hand; [`Endpoint::receive`] returns [`Message::Stop`].
    ///
    /// # Errors
    /// [`Error::Unregistered`] when the endpoint is gone already.
    pub fn stop(&self) -> Result<(), Error> {
        match send_stop(self.queue, &self.name) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.pending.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

type RequestHandler<'h> = Box<dyn FnMut(&Request) -> Vec<u8> + 'h>;
type EventHandler<'h> = Box<dyn FnMut(&Event) + 'h>;

/// A handler table: one closure per api id, a default one, and one for events; the Rust
/// form of `mipc_register_handler` / `mipc_set_default_handler`.
///
/// A request handler returns the answer's bytes; they are sent when the caller waits (a
/// one-way message's answer is dropped). A request with no handler and no default is not
/// answered (its caller times out, as with a legacy server that ignores an api id).
///
/// ```
/// use mipc::Handlers;
/// let mut count = 0;
/// let handlers = Handlers::new()
///     .on(1, |req| req.payload().to_vec())           // echo
///     .on(2, |_| b"pong".to_vec())
///     .default_handler(|req| format!("no api {}", req.api()).into_bytes())
///     .on_event(|ev| count += ev.data().len());
/// # drop(handlers);
/// ```
pub struct Handlers<'h> {
    by_api: HashMap<u32, RequestHandler<'h>>,
    default: Option<RequestHandler<'h>>,
    event: Option<EventHandler<'h>>,
}

impl fmt::Debug for Handlers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut apis: Vec<_> = self.by_api.keys().collect();
        apis.sort();
        f.debug_struct("Handlers")
            .field("apis", &apis)
            .field("default", &self.default.is_some())
            .field("event", &self.event.is_some())
            .finish()
    }
}

impl Default for Handlers<'_> {
    fn default() -> Self {
        Handlers::new()
    }
}

impl<'h> Handlers<'h> {
    /// An empty table.
    pub fn new() -> Self {
        Handlers {
            by_api: HashMap::new(),
            default: None,
            event: None,
        }
    }

    /// Handles api `api` with `f` (replacing an earlier handler of it).
    pub fn on(mut self, api: u32, f: impl FnMut(&Request) -> Vec<u8> + 'h) -> Self {
        self.by_api.insert(api, Box::new(f));
        self
    }

    /// Handles every api id without its own handler with `f`.
    pub fn default_handler(mut self, f: impl FnMut(&Request) -> Vec<u8> + 'h) -> Self {
        self.default = Some(Box::new(f));
        self
    }

    /// Handles events with `f`.
    pub fn on_event(mut self, f: impl FnMut(&Event) + 'h) -> Self {
        self.event = Some(Box::new(f));
        self
    }
}

/// What one dispatch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    /// A request went to a handler (and its answer, if the caller waits, was sent).
    Request(u32),
    /// A request had no handler; nothing was answered.
    Unhandled(u32),
    /// An event went to the event handler (or was dropped for lack of one).
    Event,
    /// A [`Stopper`] asked the loop to end.
    Stop,
}

/// One entry on the bus, owned by the thread that made it; unregistered when dropped.
pub struct Endpoint {
    name: MipcName,
    queue: QueueId,
    /// Its stoppers' flag (a stop whose message did not fit the queue).
    stop: Arc<AtomicBool>,
    /// An entry belongs to its thread: neither `Send` nor `Sync`.
    _thread: PhantomData<*const ()>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("queue", &self.queue.0)
            .finish()
    }
}

impl Endpoint {
    /// Registers `name` for the calling thread: creates its queue and registers it with the
    /// relay, waiting for the relay to run (`MIPC_INIT_TIMEOUT_MS` bounds that wait).
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::ThreadHasEndpoint`], [`Error::NameInUse`],
    /// [`Error::RelayUnavailable`], queue errors.
    pub fn new(name: &str) -> Result<Endpoint, Error> {
        let name = self::name(name)?;
        if table::by_thread(table::current_thread()).is_ok() {
            return Err(Error::ThreadHasEndpoint);
        }
        let queue = client::init(&name)?;
        Ok(Endpoint {
            name,
            queue,
            stop: Arc::new(AtomicBool::new(false)),
            _thread: PhantomData,
        })
    }

    /// The entry's name.
    pub fn name(&self) -> &MipcName {
        &self.name
    }

    /// The entry's queue id (the "mipc fd" of the C API).
    pub fn queue_id(&self) -> i32 {
        self.queue.0
    }

    /// Calls `dst`: sends `payload` as api `api` and waits for the answer.
    ///
    /// ```no_run
    /// # let ep = mipc::Endpoint::new("caller")?;
    /// use mipc::{Error, Timeout};
    /// match ep.call("middleware", 0x101, b"port=3", Timeout::millis(500)) {
    ///     Ok(answer) => println!("{} bytes back", answer.len()),
    ///     Err(Error::NoSuchDestination) => println!("middleware is not running"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), mipc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::NoSuchDestination`], [`Error::PeerDied`],
    /// [`Error::DestinationBusy`], [`Error::Deadlock`], [`Error::InvalidName`],
    /// [`Error::InvalidArgument`] (reserved api id, zero timeout),
    /// [`Error::PayloadTooLarge`], [`Error::RelayUnavailable`].
    pub fn call(
        &self,
        dst: &str,
        api: u32,
        payload: &[u8],
        timeout: Timeout,
    ) -> Result<Vec<u8>, Error> {
        let dst = name(dst)?;
        let wait = timeout.for_call()?;
        let mut out = vec![0u8; MIPC_MSG_MAX_LEN];
        let n = client::call(&dst, api, payload, &mut out, wait)?;
        out.truncate(n);
        Ok(out)
    }

    /// Sends `payload` as api `api` to `dst` without waiting for an answer.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidArgument`], [`Error::PayloadTooLarge`],
    /// [`Error::RelayUnavailable`].
    pub fn send(&self, dst: &str, api: u32, payload: &[u8]) -> Result<(), Error> {
        let dst = name(dst)?;
        client::send(&self.name, &dst, api, payload, 0).map_err(Error::from)
    }

    /// Pings `dst` (its library answers; `"mipc_main"` is answered by the relay).
    ///
    /// # Errors
    /// As [`Endpoint::call`].
    pub fn ping(&self, dst: &str, timeout: Timeout) -> Result<(), Error> {
        let dst = name(dst)?;
        client::ping(&dst, timeout.for_call()?).map_err(Error::from)
    }

    /// Waits until `dst` answers a ping: for a client started beside its server. Retries
    /// while `dst` is not registered yet, up to `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when `dst` never answered; [`Error::RelayUnavailable`].
    pub fn wait_for(&self, dst: &str, timeout: Timeout) -> Result<(), Error> {
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let left = match timeout {
                Timeout::Never => Timeout::Never,
                Timeout::After(d) => match d.checked_sub(start.elapsed()) {
                    Some(left) if !left.is_zero() => Timeout::After(left),
                    _ => return Err(Error::Timeout),
                },
            };
            match self.ping(dst, left) {
                Err(Error::NoSuchDestination) => {}
                other => return other,
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Receives the next request or event. PINGs are answered on the way and not returned.
    ///
    /// # Errors
    /// [`Error::Timeout`] (nothing within `timeout`), [`Error::Unregistered`], queue errors.
    pub fn receive(&self, timeout: Timeout) -> Result<Message, Error> {
        if self.stop.swap(false, Ordering::SeqCst) {
            return Ok(Message::Stop);
        }
        receive_message(self.queue, &self.name, timeout.for_receive())
            .map(|(m, _)| m)
            .map_err(Error::from)
    }

    /// Answers `req` (received by this thread) with `answer`.
    ///
    /// # Errors
    /// [`Error::PayloadTooLarge`], [`Error::RelayUnavailable`], queue errors.
    pub fn reply(&self, req: &Request, answer: &[u8]) -> Result<(), Error> {
        server::respond(&req.sender, &self.name, req.api, answer).map_err(Error::from)
    }

    /// Receives one message and hands it to `handlers`; a request's answer is sent when its
    /// caller waits (an answer that cannot be sent is dropped, as its caller would drop it).
    ///
    /// # Errors
    /// As [`Endpoint::receive`].
    pub fn dispatch_once(
        &self,
        handlers: &mut Handlers<'_>,
        timeout: Timeout,
    ) -> Result<Dispatched, Error> {
        match self.receive(timeout)? {
            Message::Stop => Ok(Dispatched::Stop),
            Message::Event(ev) => {
                if let Some(f) = handlers.event.as_mut() {
                    f(&ev);
                }
                Ok(Dispatched::Event)
            }
            Message::Request(req) => {
                let f = match handlers.by_api.get_mut(&req.api) {
                    Some(f) => f,
                    None => match handlers.default.as_mut() {
                        Some(f) => f,
                        None => return Ok(Dispatched::Unhandled(req.api)),
                    },
                };
                let answer = f(&req);
                if req.wants_answer {
                    let _ = self.reply(&req, &answer);
                }
                Ok(Dispatched::Request(req.api))
            }
        }
    }

    /// Dispatches messages to `handlers` until a [`Stopper`] stops the loop.
    ///
    /// ```no_run
    /// use mipc::{Endpoint, Handlers};
    /// let ep = Endpoint::new("alarm_apm")?;
    /// ep.subscribe("omci.*")?;
    /// let stopper = ep.stopper();
    /// ep.run(
    ///     Handlers::new()
    ///         .on(0x10, |req| req.payload().to_vec())
    ///         .on(0x11, |_| { stopper.stop().ok(); Vec::new() })
    ///         .on_event(|ev| println!("{} from {}", ev.name(), ev.publisher())),
    /// )?;
    /// # Ok::<(), mipc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Unregistered`] when the entry is unregistered from outside; queue errors.
    pub fn run(&self, mut handlers: Handlers<'_>) -> Result<(), Error> {
        loop {
            if self.dispatch_once(&mut handlers, Timeout::Never)? == Dispatched::Stop {
                return Ok(());
            }
        }
    }

    /// Serves every request with `handler` until a [`Stopper`] stops the loop (events are
    /// dropped: use [`Endpoint::run`] to handle them).
    ///
    /// # Errors
    /// As [`Endpoint::run`].
    pub fn serve(&self, handler: impl FnMut(&Request) -> Vec<u8>) -> Result<(), Error> {
        self.run(Handlers::new().default_handler(handler))
    }

    /// Serves at most one request with `handler`, waiting up to `timeout` for it.
    ///
    /// # Errors
    /// [`Error::Timeout`] when nothing arrived; as [`Endpoint::receive`].
    pub fn serve_once(
        &self,
        timeout: Timeout,
        handler: impl FnMut(&Request) -> Vec<u8>,
    ) -> Result<Dispatched, Error> {
        self.dispatch_once(&mut Handlers::new().default_handler(handler), timeout)
    }

    /// A handle that stops this endpoint's serving loop from any thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            queue: self.queue,
            name: self.name,
            pending: self.stop.clone(),
        }
    }

    /// Subscribes to `pattern`: an event name (`"alarm.los"`), or a prefix ending in `*`
    /// (`"alarm.*"`). Returns once the relay has the subscription, so an event published
    /// after that (by anyone) reaches this endpoint.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidPattern`], [`Error::EventsUnsupported`],
    /// [`Error::TableFull`] (more than 64 subscriptions), [`Error::Timeout`].
    pub fn subscribe(&self, pattern: &str) -> Result<(), Error> {
        let p = EventPattern::new(pattern.as_bytes())?;
        pubsub::subscribe(&p).map_err(Error::from)
    }

    /// Drops the subscription to `pattern` (as it was subscribed).
    ///
    /// # Errors
    /// As [`Endpoint::subscribe`].
    pub fn unsubscribe(&self, pattern: &str) -> Result<(), Error> {
        let p = EventPattern::new(pattern.as_bytes())?;
        pubsub::unsubscribe(&p).map_err(Error::from)
    }

    /// Publishes event `event` with `data` to every subscriber (one message to the relay,
    /// whatever their number).
    ///
    /// ```no_run
    /// let ep = mipc::Endpoint::new("omci")?;
    /// ep.publish("alarm.los", &3u32.to_ne_bytes())?;
    /// # Ok::<(), mipc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::InvalidPattern`] (a `*` in the name),
    /// [`Error::PayloadTooLarge`] (over 2048 bytes), [`Error::EventsUnsupported`].
    pub fn publish(&self, event: &str, data: &[u8]) -> Result<(), Error> {
        let name = EventName::new(event.as_bytes())?;
        events::check_event_data(data)?;
        pubsub::publish(&name, data).map_err(Error::from)
    }

    /// Sends `data` as api `api` to every other registered entry (one message to the relay).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (reserved api id), [`Error::PayloadTooLarge`] (over 2044
    /// bytes), [`Error::EventsUnsupported`].
    pub fn broadcast(&self, api: u32, data: &[u8]) -> Result<(), Error> {
        events::broadcast_payload(api, data)?;
        pubsub::broadcast(api, data).map_err(Error::from)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        unregister(&self.name);
    }
}

/// Unregisters the calling thread's entry `name` and removes its queue.
pub(crate) fn unregister(name: &MipcName) {
    let Some(mine) = table::by_thread_and_name(table::current_thread(), name) else {
        return;
    };
    if let Ok(gone) = table::take(|e| std::ptr::eq(e, &*mine)) {
        gone.iter().for_each(|e| client::retire(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_for_calls_and_receives() {
        assert_eq!(Timeout::Never.for_call(), Ok(CallTimeout::forever()));
        assert!(Timeout::After(Duration::ZERO).for_call().is_err());
        assert_eq!(
            Timeout::millis(3).for_call(),
            Ok(CallTimeout::after(Duration::from_millis(3)))
        );
        assert_eq!(
            Timeout::After(Duration::ZERO).for_receive(),
            RecvTimeout::NoWait
        );
        assert_eq!(Timeout::Never.for_receive(), RecvTimeout::Forever);
        assert_eq!(Timeout::default(), Timeout::Never);
    }

    #[test]
    fn every_relay_code_has_an_error() {
        for code in 1..=8 {
            let c = RelayErrorCode::from_i32(code).unwrap();
            let e = Error::from(c);
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(Error::from(RelayErrorCode::Deadlock), Error::Deadlock);
        assert_eq!(Error::from(MipcError::QueueRemoved), Error::Unregistered);
        assert_eq!(Error::from(EventError::Wildcard), Error::InvalidPattern);
    }

    #[test]
    fn bad_names_fail_before_any_io() {
        assert_eq!(
            Endpoint::new("").map(|_| ()),
            Err(Error::InvalidName(NameError::Empty))
        );
        assert_eq!(
            Endpoint::new(&"x".repeat(32)).map(|_| ()),
            Err(Error::InvalidName(NameError::TooLong))
        );
    }
}
