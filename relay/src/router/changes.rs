//! Change tracking: which names changed since the table was last saved (`state.rs`).

use super::{Changes, Router};
use mipc::events::EventPattern;
use mipc::MipcName;

impl Router {
    /// Whether anything changed since [`Router::take_changes`] (one look, for the paths that
    /// ask after every message).
    #[inline]
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// What changed in the table since the last call (to be saved).
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// `who` subscribed to `pattern` (`on`) or dropped it.
    pub(super) fn subscription_changed(&mut self, who: MipcName, pattern: EventPattern, on: bool) {
        if self.changes.subscriptions.len() < self.max_entries {
            self.changes.subscriptions.push((who, pattern, on));
        } else {
            self.changes.rewrite = true;
        }
    }

    pub(super) fn changed(&mut self, name: MipcName) {
        if self.changes.names.len() < self.max_entries {
            self.changes.names.push(name);
        } else {
            self.changes.rewrite = true;
        }
    }
}
