//! Monitor events as people and scripts read them: what kind of message (sync request,
//! async, answer), the latency of an answered call, filters, and the text, JSON and
//! capture forms of one event.
//!
//! Calls are matched here, from the relay's timestamps: a tagged request by (caller, call
//! id), a legacy (untagged) one by (caller, server, api id) in order. So the relay does no
//! bookkeeping for monitors beyond copying.

use crate::cli::Filter;
use crate::hexdump;
use crate::json::Object;
use mipc::wire::tool::{EventKind, EventRecord, RejectReason, MIPC_MSG_TYPE_MONITOR_EVENT};
use mipc::wire::{self, Header};
use mipc::{MipcName, RelayErrorCode};
use std::collections::{HashMap, VecDeque};

/// What a message is in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A request that waits for an answer (`sync_flag` not 0).
    Sync,
    /// A message nobody waits on.
    Async,
    /// The answer to a sync request.
    Answer,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Sync => "sync",
            Class::Async => "async",
            Class::Answer => "answer",
        }
    }
}

/// One event, decoded and matched, ready to print.
#[derive(Debug, Clone)]
pub struct Shown {
    /// What happened.
    pub kind: EventKind,
    /// When, ns since the epoch.
    pub time_ns: u64,
    /// Events lost just before this one.
    pub lost: u32,
    /// The entry concerned (registration, death).
    pub name: Option<MipcName>,
    /// The process concerned.
    pub pid: i32,
    /// Reason or error code.
    pub code: i32,
    /// The message's header, when the event carries a valid message.
    pub hdr: Option<Header>,
    /// The message's payload.
    pub payload: Vec<u8>,
    /// The message's `mtext` as the relay saw it (for captures).
    pub mtext: Vec<u8>,
    /// Sync, async or answer (messages only).
    pub class: Option<Class>,
    /// For an answer: the time since its request, ns.
    pub latency_ns: Option<u64>,
}

/// Remembers open calls to give answers their latency.
#[derive(Debug, Default)]
pub struct Tracker {
    tagged: HashMap<(MipcName, u32), u64>,
    legacy: HashMap<(MipcName, MipcName, u32), VecDeque<u64>>,
}

/// Open calls remembered at most (older ones are forgotten: their answers show no latency).
const OPEN_MAX: usize = 8192;

impl Tracker {
    /// Decodes `rec` and matches it with the calls seen so far.
    pub fn show(&mut self, rec: &EventRecord<'_>) -> Shown {
        let hdr = wire::decode(rec.msg).ok();
        let payload = hdr
            .as_ref()
            .map(|h| wire::payload(rec.msg, h).to_vec())
            .unwrap_or_default();
        let mut shown = Shown {
            kind: rec.kind,
            time_ns: rec.time_ns,
            lost: rec.lost,
            name: rec.name,
            pid: rec.pid,
            code: rec.code,
            hdr,
            payload,
            mtext: rec.msg.to_vec(),
            class: None,
            latency_ns: None,
        };
        if rec.kind == EventKind::Message {
            if let Some(h) = hdr {
                let (class, latency) = self.classify(&h, rec.time_ns);
                shown.class = Some(class);
                shown.latency_ns = latency;
            }
        }
        if rec.kind == EventKind::ErrorAnswer {
            // The relay answered the call itself: it is over.
            if let Some(h) = hdr {
                if let Some(t) = h.tag {
                    shown.latency_ns = self
                        .tagged
                        .remove(&(h.dst, t.id()))
                        .map(|t0| rec.time_ns.saturating_sub(t0));
                }
            }
        }
        shown
    }

    fn classify(&mut self, h: &Header, now: u64) -> (Class, Option<u64>) {
        if self.tagged.len() > OPEN_MAX {
            self.tagged.clear();
        }
        if self.legacy.len() > OPEN_MAX {
            self.legacy.clear();
        }
        match h.tag {
            Some(t) if t.is_reply() => {
                let start = self.tagged.remove(&(h.dst, t.id()));
                (Class::Answer, start.map(|t0| now.saturating_sub(t0)))
            }
            Some(t) if h.sync_flag != 0 => {
                self.tagged.insert((h.src, t.id()), now);
                (Class::Sync, None)
            }
            Some(_) => (Class::Async, None),
            None if h.sync_flag != 0 => {
                self.legacy
                    .entry((h.src, h.dst, h.msg_type))
                    .or_default()
                    .push_back(now);
                (Class::Sync, None)
            }
            None => {
                // A legacy answer is an async message from the server to a caller waiting
                // on that api id.
                let key = (h.dst, h.src, h.msg_type);
                match self.legacy.get_mut(&key).and_then(VecDeque::pop_front) {
                    Some(t0) => {
                        if self.legacy.get(&key).is_some_and(VecDeque::is_empty) {
                            self.legacy.remove(&key);
                        }
                        (Class::Answer, Some(now.saturating_sub(t0)))
                    }
                    None => (Class::Async, None),
                }
            }
        }
    }
}

/// Whether `s` passes `f` (an empty list passes everything).
pub fn matches(f: &Filter, s: &Shown) -> bool {
    let names_ok = f.names.is_empty()
        || f.names.iter().any(|n| {
            let n = n.as_bytes();
            s.name.is_some_and(|x| x.as_bytes() == n)
                || s.hdr
                    .is_some_and(|h| h.src.as_bytes() == n || h.dst.as_bytes() == n)
        });
    let api_ok = f.apis.is_empty()
        || s.hdr.is_some_and(|h| f.apis.contains(&h.msg_type))
        || (s.kind == EventKind::ErrorAnswer
            && s.payload.len() >= 8
            && f.apis.contains(&u32::from_ne_bytes([
                s.payload[4],
                s.payload[5],
                s.payload[6],
                s.payload[7],
            ])));
    names_ok && api_ok
}

/// `HH:MM:SS.uuuuuu` (UTC) of a time in ns since the epoch.
pub fn clock(time_ns: u64) -> String {
    let secs = time_ns / 1_000_000_000;
    let micros = (time_ns % 1_000_000_000) / 1000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        micros
    )
}

/// RFC 3339 UTC time with microseconds, e.g. `2026-11-27T16:20:01.123456Z`.
pub fn rfc3339(time_ns: u64) -> String {
    let secs = time_ns / 1_000_000_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}T{}Z", clock(time_ns))
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Why a relay error code was sent, in words.
pub fn error_text(code: i32) -> String {
    match RelayErrorCode::from_i32(code) {
        Some(c) => mipc::MipcError::from_relay(c).to_string(),
        None => format!("error {code}"),
    }
}

/// Why the relay refused a message, in words.
pub fn reject_text(code: i32) -> String {
    match RejectReason::from_code(code) {
        Some(r) => r.name().replace('_', " "),
        None => format!("reason {code}"),
    }
}

fn api_text(api: u32) -> String {
    match api {
        wire::MIPC_MSG_TYPE_NOTICE => "NOTICE".into(),
        wire::MIPC_MSG_TYPE_PING => "PING".into(),
        wire::MIPC_MSG_TYPE_HELLO => "HELLO".into(),
        wire::MIPC_MSG_TYPE_ERROR => "ERROR".into(),
        wire::MIPC_MSG_TYPE_LOOKUP => "LOOKUP".into(),
        a => format!("{a:#x}"),
    }
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// The text line of an event (no newline).
pub fn text_line(s: &Shown) -> String {
    let mut line = clock(s.time_ns);
    if s.lost > 0 {
        line.push_str(&format!(" [{} events lost]", s.lost));
    }
    let who = |n: Option<MipcName>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
    let msg = |line: &mut String| {
        if let Some(h) = s.hdr {
            line.push_str(&format!(
                " {} -> {} api {} {} B",
                h.src,
                h.dst,
                api_text(h.msg_type),
                h.msg_size
            ));
        } else if !s.mtext.is_empty() {
            line.push_str(&format!(" ({} bytes, not a valid message)", s.mtext.len()));
        }
    };
    match s.kind {
        EventKind::Message => {
            msg(&mut line);
            if let Some(c) = s.class {
                line.push(' ');
                line.push_str(c.name());
            }
            if let Some(t) = s.hdr.and_then(|h| h.tag) {
                line.push_str(&format!(" #{}", t.id()));
            }
            if let Some(l) = s.latency_ns {
                line.push_str(&format!(" {}", ms(l)));
            }
            if !s.payload.is_empty() {
                line.push_str(&format!(" {}", hexdump::preview(&s.payload, 24)));
            }
        }
        EventKind::Registered | EventKind::Unregistered | EventKind::Died | EventKind::Greeted => {
            let what = match s.kind {
                EventKind::Registered => "registered",
                EventKind::Unregistered => "unregistered",
                EventKind::Greeted => "greeted the relay: a mipc-rs entry",
                _ => "died",
            };
            line.push_str(&format!(" {} {what}", who(s.name)));
            if s.pid > 0 {
                line.push_str(&format!(" (pid {})", s.pid));
            }
        }
        EventKind::Rejected => {
            line.push_str(" rejected:");
            msg(&mut line);
            line.push_str(&format!(": {}", reject_text(s.code)));
        }
        EventKind::ErrorAnswer => {
            line.push_str(" error answer:");
            msg(&mut line);
            line.push_str(&format!(": {}", error_text(s.code)));
            if let Some(l) = s.latency_ns {
                line.push_str(&format!(" {}", ms(l)));
            }
        }
        EventKind::RelayStopping => line.push_str(" the relay is stopping"),
        EventKind::Other(k) => {
            line.push_str(&format!(" event {k:#x}"));
            if let Some(n) = s.name {
                line.push_str(&format!(" {n}"));
            }
            msg(&mut line);
        }
    }
    line
}

/// The JSON object of an event (one line).
pub fn json_line(s: &Shown) -> String {
    let mut o = Object::new()
        .str("time", &rfc3339(s.time_ns))
        .num("time_ns", s.time_ns)
        .str("event", s.kind.name());
    if let EventKind::Other(k) = s.kind {
        o = o.num("kind", k);
    }
    if s.lost > 0 {
        o = o.num("lost", s.lost);
    }
    if let Some(n) = s.name {
        o = o.str("name", &n.to_string());
    }
    if s.pid != 0 {
        o = o.num("pid", s.pid);
    }
    match s.kind {
        EventKind::Rejected => o = o.num("code", s.code).str("reason", &reject_text(s.code)),
        EventKind::ErrorAnswer => o = o.num("code", s.code).str("error", &error_text(s.code)),
        _ => {}
    }
    if let Some(h) = s.hdr {
        o = o
            .str("src", &h.src.to_string())
            .str("dst", &h.dst.to_string())
            .num("api", h.msg_type)
            .num("size", h.msg_size)
            .num("sync_flag", h.sync_flag);
        if let Some(t) = h.tag {
            o = o.num("call", t.id());
        }
        o = o.str("payload", &hexdump::hex(&s.payload));
    }
    if let Some(c) = s.class {
        o = o.str("type", c.name());
    }
    if let Some(l) = s.latency_ns {
        o = o.float("latency_ms", l as f64 / 1e6);
    }
    o.end()
}

/// A capture packet for an event: the message bytes, or (for an event without a message)
/// a relay message of type `MIPC_MSG_TYPE_MONITOR_EVENT` whose payload is the record; and
/// a comment for everything that is not a plain forwarded message.
pub fn capture_packet(s: &Shown, rec_bytes: &[u8]) -> (Vec<u8>, Option<String>) {
    let comment = match s.kind {
        EventKind::Message if s.lost == 0 => None,
        _ => Some(text_line(s)[16..].trim_start().to_string()),
    };
    if !s.mtext.is_empty() {
        return (s.mtext.clone(), comment);
    }
    // SPEC §2 frame around the record so the dissector shows it like any message.
    let relay = MipcName::RELAY;
    let dst = s.name.unwrap_or(relay);
    let body = &rec_bytes[..rec_bytes.len().min(wire::MIPC_MSG_MAX_LEN)];
    let mut m = Vec::with_capacity(wire::MTEXT_HEADER_LEN + body.len());
    m.extend_from_slice(relay.field());
    m.extend_from_slice(dst.field());
    m.extend_from_slice(&MIPC_MSG_TYPE_MONITOR_EVENT.to_ne_bytes());
    m.extend_from_slice(&(body.len() as u32).to_ne_bytes());
    m.extend_from_slice(&0i32.to_ne_bytes());
    m.extend_from_slice(body);
    (m, comment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mipc::wire::{Build, CallTag, MsgBuf};

    fn name(s: &str) -> MipcName {
        MipcName::new(s.as_bytes()).unwrap()
    }

    fn msg(src: &str, dst: &str, api: u32, sync: i32, tag: Option<CallTag>, p: &[u8]) -> Vec<u8> {
        let mut b = MsgBuf::boxed();
        b.build(Build {
            mtype: api as _,
            src: &name(src),
            dst: &name(dst),
            msg_type: api,
            sync_flag: sync,
            payload: p,
            tag,
        });
        b.mtext().to_vec()
    }

    fn rec(kind: EventKind, t: u64, m: &[u8]) -> EventRecord<'_> {
        EventRecord {
            kind,
            time_ns: t,
            seq: 0,
            lost: 0,
            pid: 0,
            code: 0,
            name: None,
            msg: m,
        }
    }

    #[test]
    fn tagged_and_legacy_calls_get_their_latency() {
        let mut tr = Tracker::default();
        let t = CallTag::request(7).unwrap();
        let req = msg("cli", "srv", 0x101, 1000, Some(t), b"hi");
        let ans = msg("srv", "cli", 0x101, 0, Some(t.reply()), b"ok");
        let s = tr.show(&rec(EventKind::Message, 1_000_000, &req));
        assert_eq!(s.class, Some(Class::Sync));
        let s = tr.show(&rec(EventKind::Message, 1_250_000, &ans));
        assert_eq!(s.class, Some(Class::Answer));
        assert_eq!(s.latency_ns, Some(250_000));
        assert!(text_line(&s).contains("srv -> cli api 0x101 2 B answer #7 0.250 ms \"ok\""));

        let lreq = msg("old", "srv", 5, -1, None, b"");
        let lans = msg("srv", "old", 5, 0, None, b"x");
        let asyn = msg("srv", "old", 5, 0, None, b"y");
        tr.show(&rec(EventKind::Message, 10, &lreq));
        let s = tr.show(&rec(EventKind::Message, 40, &lans));
        assert_eq!((s.class, s.latency_ns), (Some(Class::Answer), Some(30)));
        let s = tr.show(&rec(EventKind::Message, 50, &asyn));
        assert_eq!((s.class, s.latency_ns), (Some(Class::Async), None));
    }

    #[test]
    fn filters_and_forms() {
        let mut tr = Tracker::default();
        let m = msg("a", "b", 9, 0, None, b"\x01\x02");
        let s = tr.show(&rec(EventKind::Message, 0, &m));
        let f = |names: &[&str], apis: &[u32]| Filter {
            names: names.iter().map(|s| s.to_string()).collect(),
            apis: apis.to_vec(),
        };
        assert!(matches(&f(&[], &[]), &s));
        assert!(matches(&f(&["b"], &[9]), &s));
        assert!(!matches(&f(&["c"], &[]), &s));
        assert!(!matches(&f(&[], &[8]), &s));
        let j = json_line(&s);
        assert!(j.starts_with(r#"{"time":"1970-01-01T00:00:00.000000Z","time_ns":0,"event":"message","src":"a","dst":"b","api":9"#), "{j}");
        assert!(j.contains(r#""payload":"0102","type":"async""#), "{j}");

        let death = EventRecord {
            kind: EventKind::Died,
            name: Some(name("omci")),
            pid: 42,
            lost: 2,
            ..rec(EventKind::Died, 86_400_000_000_000 + 3_723_000_001_000, b"")
        };
        let s = tr.show(&death);
        assert_eq!(
            text_line(&s),
            "01:02:03.000001 [2 events lost] omci died (pid 42)"
        );
        assert!(matches(&f(&["omci"], &[]), &s));
        let mut bytes = Vec::new();
        death.encode(&mut bytes);
        let (pkt, comment) = capture_packet(&s, &bytes);
        let h = wire::decode(&pkt).unwrap();
        assert_eq!(h.msg_type, MIPC_MSG_TYPE_MONITOR_EVENT);
        assert_eq!(
            comment.as_deref(),
            Some("[2 events lost] omci died (pid 42)")
        );
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_795_796_401_123_456_000),
            "2026-11-27T16:20:01.123456Z"
        );
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
