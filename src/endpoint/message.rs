//! What an endpoint receives ([`Message`]: a [`Request`], an [`Event`], a stop) and the
//! [`Stopper`] that ends its loop from another thread. The C handler table (`ffi/handlers.rs`)
//! receives through the same [`receive_message`].

use super::Error;
use crate::error::MipcError;
use crate::events::{self, EventName, MIPC_MSG_TYPE_EVENT};
use crate::name::MipcName;
use crate::server;
use crate::sysv::{self, QueueError, QueueId};
use crate::timeout::RecvTimeout;
use crate::wire::{self, Build, MsgBuf, MIPC_MSG_TYPE_PING, MTEXT_MAX, MTYPE_LEN};
use std::os::raw::c_long;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

/// What [`Endpoint::receive`](super::Endpoint::receive) got.
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
    let deadline = wait.deadline_from_now();
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

/// Ends an endpoint's serving loop from any thread
/// ([`Endpoint::stopper`](super::Endpoint::stopper)).
#[derive(Debug, Clone)]
pub struct Stopper {
    pub(super) queue: QueueId,
    pub(super) name: MipcName,
    /// Set when the stop message did not fit the queue: the loop sees it between messages.
    pub(super) pending: Arc<AtomicBool>,
}

impl Stopper {
    /// Asks the loop to end: [`Endpoint::run`](super::Endpoint::run) and
    /// [`Endpoint::serve`](super::Endpoint::serve) return `Ok(())` after the message in hand;
    /// [`Endpoint::receive`](super::Endpoint::receive) returns [`Message::Stop`].
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
