//! Serving: the [`Handlers`] table and the loops that dispatch to it ([`Endpoint::run`],
//! [`Endpoint::serve`], [`Endpoint::dispatch_once`]).

use super::{Endpoint, Error, Event, Message, Request, Stopper, Timeout};
use std::collections::HashMap;
use std::fmt;

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

impl Endpoint {
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
                let f = match handlers.by_api.get_mut(&req.api()) {
                    Some(f) => f,
                    None => match handlers.default.as_mut() {
                        Some(f) => f,
                        None => return Ok(Dispatched::Unhandled(req.api())),
                    },
                };
                let answer = f(&req);
                if req.wants_answer() {
                    let _ = self.reply(&req, &answer);
                }
                Ok(Dispatched::Request(req.api()))
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
}
