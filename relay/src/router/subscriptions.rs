//! Who subscribed to what (docs/PROTOCOL.md §9): the relay's subscription table, per entry,
//! with exact and prefix (`"alarm.*"`) patterns. No I/O; the router fans events out over it.
//!
//! Only entries that subscribed appear here, so an event costs a walk over the subscribers
//! alone, and an entry that never subscribes (every legacy one) is never looked at.

use mipc::events::{EventName, EventPattern, SUBSCRIPTIONS_PER_ENTRY_MAX};
use mipc::MipcName;
use std::collections::HashMap;

/// An entry already holds [`SUBSCRIPTIONS_PER_ENTRY_MAX`] patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The subscriptions of every entry.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_entry: HashMap<MipcName, Vec<EventPattern>>,
}

impl Subscriptions {
    /// Adds `pattern` to `who`'s subscriptions; subscribing twice is one subscription.
    /// Returns whether it is new.
    ///
    /// # Errors
    /// [`Full`] when `who` holds the most patterns already.
    pub fn add(&mut self, who: MipcName, pattern: EventPattern) -> Result<bool, Full> {
        let list = self.by_entry.entry(who).or_default();
        if list.contains(&pattern) {
            return Ok(false);
        }
        if list.len() >= SUBSCRIPTIONS_PER_ENTRY_MAX {
            return Err(Full);
        }
        list.push(pattern);
        Ok(true)
    }

    /// Drops `who`'s subscription to `pattern` (as subscribed); returns whether it existed.
    pub fn remove(&mut self, who: &MipcName, pattern: &EventPattern) -> bool {
        let Some(list) = self.by_entry.get_mut(who) else {
            return false;
        };
        let before = list.len();
        list.retain(|p| p != pattern);
        let removed = list.len() != before;
        if list.is_empty() {
            self.by_entry.remove(who);
        }
        removed
    }

    /// Forgets every subscription of `who` (its entry is gone).
    pub fn forget(&mut self, who: &MipcName) {
        self.by_entry.remove(who);
    }

    /// Every subscription, entry by entry.
    pub fn all(&self) -> impl Iterator<Item = (&MipcName, &EventPattern)> {
        self.by_entry
            .iter()
            .flat_map(|(who, ps)| ps.iter().map(move |p| (who, p)))
    }

    /// `who`'s subscriptions, in the order they were made (for `mipc list`).
    pub fn of(&self, who: &MipcName) -> &[EventPattern] {
        self.by_entry.get(who).map_or(&[], Vec::as_slice)
    }

    /// The entries that get event `name`: each once, however many of its patterns match.
    pub fn receivers<'a>(&'a self, name: &'a EventName) -> impl Iterator<Item = &'a MipcName> {
        self.by_entry
            .iter()
            .filter(move |(_, ps)| ps.iter().any(|p| p.matches(name)))
            .map(|(who, _)| who)
    }

    /// Entries with at least one subscription, and subscriptions in all.
    pub fn totals(&self) -> (usize, usize) {
        (
            self.by_entry.len(),
            self.by_entry.values().map(Vec::len).sum(),
        )
    }

    /// Whether nobody subscribed to anything.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_entry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> MipcName {
        MipcName::new(s.as_bytes()).unwrap()
    }
    fn p(s: &str) -> EventPattern {
        EventPattern::new(s.as_bytes()).unwrap()
    }
    fn e(s: &str) -> EventName {
        EventName::new(s.as_bytes()).unwrap()
    }
    fn receivers(s: &Subscriptions, ev: &str) -> Vec<String> {
        let ev = e(ev);
        let mut v: Vec<String> = s.receivers(&ev).map(|n| n.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn exact_prefix_and_once_per_entry() {
        let mut s = Subscriptions::default();
        assert_eq!(s.add(n("a"), p("alarm.los")), Ok(true));
        assert_eq!(s.add(n("a"), p("alarm.*")), Ok(true));
        assert_eq!(s.add(n("a"), p("alarm.*")), Ok(false));
        assert_eq!(s.add(n("b"), p("alarm.*")), Ok(true));
        assert_eq!(s.add(n("c"), p("omci.*")), Ok(true));
        assert_eq!(s.add(n("d"), p("*")), Ok(true));
        assert_eq!(receivers(&s, "alarm.los"), ["a", "b", "d"]);
        assert_eq!(receivers(&s, "alarm.dying_gasp"), ["a", "b", "d"]);
        assert_eq!(receivers(&s, "omci.mib"), ["c", "d"]);
        assert_eq!(receivers(&s, "alarm"), ["d"]);
        assert_eq!(s.totals(), (4, 5));
        assert_eq!(s.of(&n("a")), &[p("alarm.los"), p("alarm.*")]);
    }

    #[test]
    fn remove_and_forget() {
        let mut s = Subscriptions::default();
        s.add(n("a"), p("x.*")).unwrap();
        s.add(n("a"), p("y")).unwrap();
        assert!(!s.remove(&n("a"), &p("x")), "only as subscribed");
        assert!(s.remove(&n("a"), &p("x.*")));
        assert_eq!(receivers(&s, "x.1"), Vec::<String>::new());
        assert_eq!(receivers(&s, "y"), ["a"]);
        assert!(s.remove(&n("a"), &p("y")));
        assert!(s.is_empty(), "an entry without subscriptions is not kept");
        s.add(n("b"), p("z")).unwrap();
        s.forget(&n("b"));
        assert!(s.of(&n("b")).is_empty() && s.is_empty());
    }

    #[test]
    fn bounded_per_entry() {
        let mut s = Subscriptions::default();
        for i in 0..SUBSCRIPTIONS_PER_ENTRY_MAX {
            assert_eq!(s.add(n("a"), p(&format!("ev{i}"))), Ok(true));
        }
        assert_eq!(s.add(n("a"), p("one.more")), Err(Full));
        assert_eq!(s.add(n("a"), p("ev0")), Ok(false), "a repeat is not more");
        assert_eq!(
            s.add(n("b"), p("one.more")),
            Ok(true),
            "the bound is per entry"
        );
    }
}
