//! The calling thread's state, in one thread-local: its message buffer, its cached entry,
//! the request it serves, the senders of its last receives and its last direct route. In a shared library every
//! thread-local costs a call to `__tls_get_addr` where it is reached, so a hot path reaches
//! this once and hands the reference down, instead of reaching four variables in turn.

use crate::direct::LastRoute;
use crate::origin::Recent;
use crate::serving::Placed;
use crate::table::{Entry, Serving};
use crate::wire::MsgBuf;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// One thread's state. Each part is borrowed only for a moment (or, for the cached entry,
/// through a call that runs no code of the program), and a part that is busy is treated as
/// absent, so a nested call never fails on it.
pub(crate) struct Local {
    /// This thread's message buffer, while no call of the thread is using it.
    pub buf: Cell<Option<Box<MsgBuf>>>,
    /// The thread's first entry, with the table generation it was found in.
    pub mine: RefCell<Option<(u64, Arc<Entry>)>>,
    /// The request this thread was last handed (taken when answered), and the entry it came
    /// to (kept, so the next request to the same entry stores no new reference).
    pub serving: RefCell<ServingNow>,
    /// The senders of the last receives (`origin.rs`).
    pub recent: RefCell<Recent>,
    /// The route of the last direct call (`direct.rs`).
    pub route: RefCell<LastRoute>,
    /// Buffers of kept messages this thread handed out, for the next batch it takes apart
    /// ([`spare_buf`], [`recycle`]): a receiver that fell behind gets about ten messages per
    /// batch, and a fresh buffer for each (over 2 KiB, zeroed, past the allocator's
    /// per-thread cache) cost more than the copy into it. Boxes: they move to and from the
    /// entries' kept messages (`Entry::keep_all`, `take_kept`) without a copy.
    #[allow(clippy::vec_box)]
    pub spares: RefCell<Vec<Box<MsgBuf>>>,
}

/// Most buffers a thread keeps in [`Local::spares`]: a batch's worth.
const SPARES_MAX: usize = 16;

/// A buffer for a kept message: one this thread handed out before, else a new one.
pub(crate) fn spare_buf(l: Option<&Local>) -> Box<MsgBuf> {
    l.and_then(|l| l.spares.try_borrow_mut().ok()?.pop())
        .unwrap_or_else(MsgBuf::boxed)
}

/// Keeps the buffer of a kept message that was handed out, for [`spare_buf`].
pub(crate) fn recycle(l: Option<&Local>, b: Box<MsgBuf>) {
    if let Some(mut s) = l.and_then(|l| l.spares.try_borrow_mut().ok()) {
        if s.len() < SPARES_MAX {
            s.push(b);
        }
    }
}

impl Drop for Local {
    /// The thread exits: its entries no longer belong to its `pthread_t`, which a new thread
    /// may get (`table::thread_exited`).
    fn drop(&mut self) {
        crate::table::thread_exited(crate::os::current_thread());
    }
}

/// The request a thread was handed and where its entry keeps it, and that entry.
pub(crate) type ServingNow = (Option<(Serving, Placed)>, Option<Arc<Entry>>);

thread_local! {
    static LOCAL: Local = const {
        Local {
            buf: Cell::new(None),
            mine: RefCell::new(None),
            serving: RefCell::new((None, None)),
            recent: RefCell::new(Recent::new()),
            route: RefCell::new(None),
            spares: RefCell::new(Vec::new()),
        }
    };
}

/// Runs `f` with the calling thread's state, or with `None` while the thread is being torn
/// down (its thread-locals destroyed): then nothing is cached or remembered.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(Option<&Local>) -> R) -> R {
    let here = LOCAL.try_with(|l| l as *const Local).ok();
    // SAFETY: the state lives until this thread's thread-locals are destroyed, which happens
    // when the thread exits, after `f` (running on this thread, and running no code of the
    // program) returned; the reference does not outlive `f`. Shared use goes through its
    // cells, as with `LOCAL.with`.
    f(here.map(|p| unsafe { &*p }))
}
