//! Change tracking: which names changed since the table was last saved (`state.rs`).

use super::{Changes, Router};
use mipc::MipcName;

impl Router {
    /// What changed in the table since the last call (to be saved).
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    pub(super) fn changed(&mut self, name: MipcName) {
        if self.changes.names.len() < self.max_entries {
            self.changes.names.push(name);
        } else {
            self.changes.rewrite = true;
        }
    }
}
