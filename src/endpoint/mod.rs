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

mod error;
mod message;
mod serve;

pub use error::{Error, Timeout};
pub(crate) use message::{receive_message, send_stop};
pub use message::{Event, Message, Request, Stopper};
pub use serve::{Dispatched, Handlers};

use crate::client;
use crate::events::{self, EventName, EventPattern};
use crate::name::MipcName;
use crate::pubsub;
use crate::server;
use crate::sysv::QueueId;
use crate::table;
use crate::wire::MIPC_MSG_MAX_LEN;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn name(text: &str) -> Result<MipcName, Error> {
    MipcName::new(text.as_bytes()).map_err(Error::InvalidName)
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
            crate::os::process::nap(pause);
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
        server::respond(req.sender(), &self.name, req.api(), answer).map_err(Error::from)
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
    use crate::name::NameError;

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
