//! The bodies of the fuzz targets (`fuzz/`), kept in the library so that a plain `cargo test`
//! runs them too (`relay/tests/fuzz_smoke.rs`). Each panics when an invariant breaks.

use crate::mem::MemPort;
use crate::router::Router;
use mipc::sysv::QueueId;
use mipc::wire::control::{ErrorAnswer, Hello, HelloAnswer, Lookup, LookupAnswer, Pong, Wake};
use mipc::wire::{
    self, Build, CallTag, Control, Envelope, Kind, MsgBuf, ThreadInfo, MIPC_API_ID_MAX,
    MIPC_MSG_TYPE_ERROR, MIPC_MSG_TYPE_NOTICE, MIPC_MSG_TYPE_PING, MIPC_MSG_TYPE_WAKE, MTYPE_LEN,
};
use mipc::MipcName;
use std::os::raw::c_long;
use std::time::{Duration, Instant};

/// Decoding any bytes never panics, and a message that decodes is built again into one with
/// the same header and payload (parse, encode, parse).
pub fn wire(data: &[u8]) {
    if let Ok(h) = wire::decode(data) {
        let payload = wire::payload(data, &h);
        let mut b = MsgBuf::boxed();
        b.build(Build {
            mtype: 1,
            src: &h.src,
            dst: &h.dst,
            msg_type: h.msg_type,
            sync_flag: h.sync_flag,
            payload,
            tag: h.tag,
        });
        if let Some(q) = h.reply_queue {
            b.append_reply_queue(q);
        }
        if let Some(pid) = h.sender_pid {
            b.append_sender(pid);
        }
        let again = b
            .decode()
            .expect("a message built from a decoded one decodes");
        assert_eq!(h, again);
        assert_eq!(wire::payload(b.mtext(), &again), payload);
        assert_eq!(b.mtext_len(), data.len());
    }
    let _ = wire::decode_thread_info(data);
    // Every control payload: reading any bytes never panics, and every control message
    // round-trips (build, decode, read back).
    let _ = (ThreadInfo::get(data), Pong::get(data), Hello::get(data));
    let _ = (
        HelloAnswer::get(data),
        ErrorAnswer::get(data),
        Wake::get(data),
    );
    let _ = (Lookup::get(data), LookupAnswer::get(data));
    // A batch's payload: any bytes split into valid messages or are refused whole; what
    // splits is batched again byte for byte.
    if let Ok(parts) = wire::batch::split(data) {
        let mut out = Vec::new();
        let mut w = wire::batch::Writer::begin(&mut out, &[0; wire::MTYPE_LEN], &MipcName::RELAY);
        let fits = parts.iter().all(|p| {
            let fits = w.fits(p.len());
            if fits {
                w.push(p);
            }
            fits
        });
        let built = w.finish();
        if fits {
            let f = wire::decode_frame(&built[wire::MTYPE_LEN..]).expect("a built batch decodes");
            assert_eq!(f.payload(&built[wire::MTYPE_LEN..]), data);
        }
    }
    wire::samples::samples(data);
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

const NAMES: [&str; 5] = ["p0", "p1", "p2", "p3", "mipc_main"];
const QUEUES: i32 = 10; // ids 0..8 exist at the start, 8 and 9 never do
const PIDS: i32 = 6; // pids 100..104 live at the start, 104 and 105 never do
const MAX_ENTRIES: usize = 4;

fn name(b: u8) -> MipcName {
    MipcName::new(NAMES[b as usize % NAMES.len()].as_bytes()).expect("a valid name")
}

/// Runs a sequence of messages from several fake peers through one router, registry state
/// kept between them, with peers dying, queues vanishing and time passing. After every step:
/// the table stays within its ceiling and every message the relay put on a queue is valid.
pub fn router(data: &[u8]) {
    let mut port = MemPort::new();
    port.capacity = 4;
    for q in 0..8 {
        port.queue(q);
    }
    port.live.extend(100..104);
    let mut r = Router::new(MAX_ENTRIES);
    let mut now = Instant::now();
    let mut buf = MsgBuf::boxed();
    let mut input = Input(data);
    while !input.0.is_empty() {
        let (op, a, b) = (input.byte(), input.byte(), input.byte());
        let queue = QueueId((b as i32) % QUEUES);
        match op % 8 {
            0 | 1 => {
                let info = ThreadInfo {
                    hold: op % 8 == 0,
                    thread_id: u64::from(a),
                    name: name(a),
                    mqd: queue.0,
                };
                buf.build_control(to_relay(&info.name, Kind::Notice, 0), &info);
                let _ = r.handle(&mut port, &mut buf, now);
            }
            2 => {
                let hello = Hello {
                    version: 0,
                    pid: 100 + (a as i32) % PIDS,
                    mqd: queue.0,
                    flags: 0,
                };
                buf.build_control(to_relay(&name(b), Kind::Hello, 100), &hello);
                let _ = r.handle(&mut port, &mut buf, now);
            }
            3 => {
                const TYPES: [u32; 8] = [
                    1,
                    2,
                    MIPC_MSG_TYPE_PING,
                    MIPC_MSG_TYPE_NOTICE,
                    MIPC_MSG_TYPE_WAKE,
                    MIPC_MSG_TYPE_ERROR,
                    0x7FFF_FFFF,
                    MIPC_API_ID_MAX,
                ];
                let t = TYPES[input.byte() as usize % TYPES.len()];
                let sync = [0, -1, 100, 1][input.byte() as usize % 4];
                let k = input.byte();
                let tag = match k % 3 {
                    0 => None,
                    1 => CallTag::request(u32::from(k) + 1),
                    _ => CallTag::request(u32::from(k) + 1).map(CallTag::reply),
                };
                let len = input.byte() as usize;
                let payload = input.bytes(len).to_vec();
                buf.build(Build {
                    mtype: t as c_long,
                    src: &name(a),
                    dst: &name(b),
                    msg_type: t,
                    sync_flag: sync,
                    payload: &payload,
                    tag,
                });
                let _ = r.handle(&mut port, &mut buf, now);
            }
            4 => {
                // Raw bytes: any length up to past the largest message, any content.
                let len = (usize::from(a) << 4 | usize::from(b)) % 2300;
                let raw = input.bytes(len).to_vec();
                let room = buf.raw_mut();
                room[..MTYPE_LEN].copy_from_slice(&(1 as c_long).to_ne_bytes());
                let n = raw.len().min(room.len() - MTYPE_LEN);
                room[MTYPE_LEN..MTYPE_LEN + n].copy_from_slice(&raw[..n]);
                buf.set_mtext_len(n);
                let _ = r.handle(&mut port, &mut buf, now);
            }
            5 => {
                let pid = 100 + (a as i32) % PIDS;
                port.live.remove(&pid);
                r.peer_died(&mut port, pid);
            }
            6 => {
                port.queues.remove(&queue.0);
            }
            _ => {
                // Time passes; receivers take a message off some queue; a drainer sends what
                // fits of a backlog.
                now += Duration::from_millis(u64::from(a) * 10);
                port.take(queue.0);
                let _ = r.drain_parked(&mut port, &name(b), now);
                if a % 3 == 0 {
                    // The receive loop hands its backlogs off (it is about to sleep).
                    r.hand_off_backlogs(&mut port);
                }
            }
        }
        check(&r, &port);
    }
}

fn to_relay(src: &MipcName, kind: Kind, sync_flag: i32) -> Envelope<'_> {
    Envelope {
        mtype: kind.mtype(),
        src,
        dst: &MipcName::RELAY,
        sync_flag,
        tag: None,
    }
}

fn check(r: &Router, port: &MemPort) {
    assert!(
        r.backlog_counts_hold(),
        "backlogs without a drainer miscounted"
    );
    assert!(
        r.entries().count() <= MAX_ENTRIES,
        "the table grew past its ceiling"
    );
    // What a later relay would take back is exactly the calls pending now.
    let key = |c: &MipcName| c.as_bytes().to_vec();
    let mut kept: Vec<_> = port.pending.values().copied().collect();
    kept.sort_by_key(|(c, _)| key(c));
    let mut pending: Vec<_> = r
        .entries()
        .filter_map(|(n, e)| e.pending.map(|p| (*n, p)))
        .collect();
    pending.sort_by_key(|(c, _)| key(c));
    assert_eq!(
        kept, pending,
        "the pending-calls record differs from the table"
    );
    assert!(port.pending.keys().all(|&s| s < MAX_ENTRIES));
    for (q, msgs) in &port.queues {
        for m in msgs {
            assert!(
                m.len() >= MTYPE_LEN,
                "message shorter than its type on queue {q}"
            );
            let mut t = [0u8; MTYPE_LEN];
            t.copy_from_slice(&m[..MTYPE_LEN]);
            assert!(
                c_long::from_ne_bytes(t) > 0,
                "non-positive mtype on queue {q}"
            );
            let h = wire::decode(&m[MTYPE_LEN..])
                .expect("the relay only puts valid messages on queues");
            if wire::is_control(h.msg_type) {
                let from_relay = h.src.is_relay();
                assert!(
                    from_relay || h.msg_type == Kind::Ping.msg_type(),
                    "control type {:#x} forwarded from {}",
                    h.msg_type,
                    h.src
                );
            }
        }
    }
}
