//! Router tests over an in-memory port: every routing rule, with the exact bytes delivered.
//! The helpers are here; the tests are in a file per concept.

mod answer_back;
mod calls;
mod control;
mod forwarding;
mod gather;
mod parking;
mod registration;
mod tools;

use super::*;
use crate::mem::MemPort;
use mipc::wire::{
    self, thread_info_bytes, Build, Header, MIPC_MSG_TYPE_ERROR, MIPC_MSG_TYPE_HELLO,
    MIPC_MSG_TYPE_NOTICE, MIPC_MSG_TYPE_PING, MIPC_MSG_TYPE_WAKE, MTYPE_LEN,
};
use std::time::Duration;

fn n(s: &str) -> MipcName {
    MipcName::new(s.as_bytes()).unwrap()
}

fn msg(
    mtype: c_long,
    src: &str,
    dst: &str,
    msg_type: u32,
    sync: i32,
    payload: &[u8],
    tag: Option<CallTag>,
) -> Box<MsgBuf> {
    let mut b = MsgBuf::boxed();
    b.build(Build {
        mtype,
        src: &n(src),
        dst: &n(dst),
        msg_type,
        sync_flag: sync,
        payload,
        tag,
    });
    b
}

fn notice(name: &str, q: QueueId, hold: bool) -> Box<MsgBuf> {
    let info = thread_info_bytes(hold, 7, &n(name), q.0);
    msg(
        MIPC_MSG_TYPE_NOTICE as c_long,
        name,
        "mipc_main",
        MIPC_MSG_TYPE_NOTICE,
        0,
        &info,
        None,
    )
}

fn hello(name: &str, q: QueueId, pid: i32) -> Box<MsgBuf> {
    hello_asking(name, q, pid, 0)
}

/// A HELLO with `flags` (`HELLO_FLAG_*`).
fn hello_asking(name: &str, q: QueueId, pid: i32, flags: u32) -> Box<MsgBuf> {
    let mut p = [0u8; 16];
    p[0..4].copy_from_slice(&1u32.to_ne_bytes());
    p[4..8].copy_from_slice(&pid.to_ne_bytes());
    p[8..12].copy_from_slice(&q.0.to_ne_bytes());
    p[12..16].copy_from_slice(&flags.to_ne_bytes());
    msg(
        MIPC_MSG_TYPE_HELLO as c_long,
        name,
        "mipc_main",
        MIPC_MSG_TYPE_HELLO,
        500,
        &p,
        None,
    )
}

fn decode(bytes: &[u8]) -> (c_long, Header, Vec<u8>) {
    let mut t = [0u8; MTYPE_LEN];
    t.copy_from_slice(&bytes[..MTYPE_LEN]);
    let mtext = &bytes[MTYPE_LEN..];
    let h = wire::decode(mtext).unwrap();
    (
        c_long::from_ne_bytes(t),
        h,
        wire::payload(mtext, &h).to_vec(),
    )
}

/// A message taken from a queue as the payloads it carries (a batch's, in order), joined.
fn carried(m: &[u8]) -> String {
    let mtext = &m[MTYPE_LEN..];
    let f = wire::decode_frame(mtext).unwrap();
    let payloads: Vec<u8> = if wire::batch::is_batch(&f, mtext) {
        wire::batch::split(f.payload(mtext))
            .unwrap()
            .iter()
            .flat_map(|inner| decode(&[&m[..MTYPE_LEN], inner].concat()).2)
            .collect()
    } else {
        decode(m).2
    };
    String::from_utf8(payloads).unwrap()
}

/// A router with a legacy entry "legacy" (queue 10), and mipc-rs entries "a" (queue 11,
/// pid 100) and "b" (queue 12, pid 200).
fn setup() -> (Router, MemPort, Instant) {
    let mut r = Router::default();
    let mut p = MemPort::new();
    let now = Instant::now();
    p.live.extend([100, 200]);
    for (name, id, pid) in [
        ("legacy", 10, None),
        ("a", 11, Some(100)),
        ("b", 12, Some(200)),
    ] {
        let q = p.queue(id);
        assert_eq!(
            r.handle(&mut p, &mut notice(name, q, true), now),
            Ok(Handled::Registered(n(name), q))
        );
        if let Some(pid) = pid {
            assert_eq!(
                r.handle(&mut p, &mut hello(name, q, pid), now),
                Ok(Handled::Greeted(n(name), pid))
            );
            let (mtype, h, pl) = decode(&p.take(id).unwrap());
            assert_eq!(
                (mtype, h.msg_type, h.src),
                (
                    MIPC_MSG_TYPE_HELLO as c_long,
                    MIPC_MSG_TYPE_HELLO,
                    MipcName::RELAY
                )
            );
            assert_eq!(&pl[4..8], &0i32.to_ne_bytes(), "hello status ok");
        }
    }
    assert_eq!(p.watched, vec![100, 200]);
    (r, p, now)
}

/// A tool's request (docs/PROTOCOL.md §7-8) from pid 300, answered on `reply`.
fn tool_request(body: mipc::wire::tool::RequestBody, reply: QueueId) -> Box<MsgBuf> {
    use mipc::wire::tool::{Request, RequestHead};
    let req = Request {
        head: RequestHead {
            pid: 300,
            reply_queue: reply.0,
            request_id: 5,
        },
        body,
    };
    let mut payload = Vec::new();
    req.encode(&mut payload);
    msg(
        req.msg_type() as c_long,
        "mipc-tool",
        "mipc_main",
        req.msg_type(),
        0,
        &payload,
        None,
    )
}

/// The monitor events waiting in queue `q`: their kinds and the messages they carry.
fn events(p: &mut MemPort, q: i32) -> Vec<(mipc::wire::tool::EventKind, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(b) = p.take(q) {
        let rec = mipc::wire::tool::EventRecord::decode(&b[MTYPE_LEN..]).unwrap();
        out.push((rec.kind, rec.msg.to_vec()));
    }
    out
}
