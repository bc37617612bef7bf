//! Hand-built messages on a bus's root queue, sent from the test process: the hostile and
//! forged senders of guarantees 7 and 9.

use crate::common::Bus;
use mipc::sysv::{self, QueueError, QueueId};
use mipc::wire::{thread_info_bytes, Build, MsgBuf, MIPC_MSG_TYPE_NOTICE, MTEXT_HEADER_LEN};
use mipc::MipcName;
use std::os::raw::c_long;
use std::time::Duration;

pub fn name_field(s: &str) -> [u8; 32] {
    let mut f = [0u8; 32];
    f[..s.len()].copy_from_slice(s.as_bytes());
    f
}

pub fn header(src: &[u8; 32], dst: &[u8; 32], msg_type: u32, msg_size: u32, sync: i32) -> Vec<u8> {
    let mut h = Vec::with_capacity(MTEXT_HEADER_LEN + 2048 + 8);
    h.extend_from_slice(src);
    h.extend_from_slice(dst);
    h.extend_from_slice(&msg_type.to_ne_bytes());
    h.extend_from_slice(&msg_size.to_ne_bytes());
    h.extend_from_slice(&sync.to_ne_bytes());
    h
}

/// Puts `mtext` with `mtype` on the root queue, backing off while it is full (the relay
/// empties it); panics if the relay dies meanwhile.
pub fn send_hostile(
    root: QueueId,
    mtype: c_long,
    mtext: &[u8],
    relay: i32,
    buf: &mut Vec<u8>,
) -> bool {
    buf.clear();
    buf.extend_from_slice(&mtype.to_ne_bytes());
    buf.extend_from_slice(mtext);
    loop {
        match sysv::send(root, buf, true) {
            Ok(()) => return true,
            Err(QueueError::Full) => {
                // SAFETY: kill with signal 0 only checks for existence.
                assert!(unsafe { libc::kill(relay, 0) } == 0, "the relay died");
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => panic!("send to the root queue: {e}"),
        }
    }
}

/// Sends one hand-built message (`mtext` = header fields and payload) to the root queue.
pub fn send_raw(bus: &Bus, src: &str, dst: &str, msg_type: u32, sync: i32, payload: &[u8]) {
    let root = sysv::open_key(bus.key(), false, 0).expect("root queue");
    let mut m = header(
        &name_field(src),
        &name_field(dst),
        msg_type,
        payload.len() as u32,
        sync,
    );
    m.extend_from_slice(payload);
    let mut buf = Vec::new();
    send_hostile(root, msg_type as c_long, &m, bus.relay_pid(), &mut buf);
}

/// Sends a hand-built NOTICE to the root queue of `bus`, from this (test) process.
pub fn notice(bus: &Bus, src: &str, hold: bool, name: &str, mqd: i32) {
    let root = sysv::open_key(bus.key(), false, 0).expect("root queue");
    let src = MipcName::new(src.as_bytes()).unwrap();
    let name = MipcName::new(name.as_bytes()).unwrap();
    let mut buf = MsgBuf::boxed();
    buf.build(Build {
        mtype: MIPC_MSG_TYPE_NOTICE as c_long,
        src: &src,
        dst: &MipcName::RELAY,
        msg_type: MIPC_MSG_TYPE_NOTICE,
        sync_flag: 0,
        payload: &thread_info_bytes(hold, 0, &name, mqd),
        tag: None,
    });
    sysv::send(root, buf.as_sendable(), false).expect("send a NOTICE");
}
