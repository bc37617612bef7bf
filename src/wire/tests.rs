//! Codec tests: round trips, and every SPEC §2 rejection.

use super::*;

fn name(s: &str) -> MipcName {
    MipcName::new(s.as_bytes()).unwrap()
}

#[test]
fn build_then_decode_round_trips() {
    let mut b = MsgBuf::boxed();
    let (src, dst) = (name("main_apm"), name("alarm_apm"));
    let tag = CallTag::request(7);
    b.build(Build {
        mtype: 42,
        src: &src,
        dst: &dst,
        msg_type: 42,
        sync_flag: -1,
        payload: b"hello",
        tag,
    });
    let h = b.decode().unwrap();
    assert_eq!(
        (h.src, h.dst, h.msg_type, h.msg_size, h.sync_flag),
        (src, dst, 42, 5, -1)
    );
    assert_eq!(h.tag, tag);
    assert_eq!(payload(b.mtext(), &h), b"hello");
    assert_eq!(b.mtype(), 42);
    assert_eq!(
        b.as_sendable_untagged(&h).len(),
        MTYPE_LEN + MTEXT_HEADER_LEN + 5
    );
}

#[test]
fn legacy_bytes_have_no_tag() {
    let mut b = MsgBuf::boxed();
    let n = name("a");
    b.build(Build {
        mtype: 1,
        src: &n,
        dst: &n,
        msg_type: 1,
        sync_flag: 0,
        payload: &[],
        tag: None,
    });
    assert_eq!(b.mtext_len(), MTEXT_HEADER_LEN);
    assert_eq!(b.decode().unwrap().tag, None);
}

#[test]
fn rejects_what_the_spec_rejects() {
    let mut b = MsgBuf::boxed();
    let n = name("a");
    b.build(Build {
        mtype: 1,
        src: &n,
        dst: &n,
        msg_type: 1,
        sync_flag: 0,
        payload: &[1; 10],
        tag: None,
    });
    let m = b.mtext().to_vec();
    assert_eq!(decode(&m[..10]), Err(WireError::Truncated { len: 10 }));
    assert!(matches!(
        decode(&m[..m.len() - 1]),
        Err(WireError::SizeMismatch { .. })
    ));
    let mut big = m.clone();
    big[OFF_SIZE..OFF_SIZE + 4].copy_from_slice(&2049u32.to_ne_bytes());
    assert_eq!(
        decode(&big),
        Err(WireError::PayloadTooLarge { msg_size: 2049 })
    );
    let mut unterminated = m.clone();
    unterminated[..32].fill(b'x');
    assert!(matches!(
        decode(&unterminated),
        Err(WireError::BadSource(NameError::TooLong))
    ));
    let mut zero_tag = m.clone();
    zero_tag.extend_from_slice(&0u32.to_ne_bytes());
    assert_eq!(decode(&zero_tag), Err(WireError::BadTag));
}

#[test]
fn thread_info_round_trips() {
    let n = name("middleware");
    let bytes = thread_info_bytes(true, 99, &n, 1234);
    let info = decode_thread_info(&bytes).unwrap();
    assert_eq!(
        info,
        ThreadInfo {
            hold: true,
            thread_id: 99,
            name: n,
            mqd: 1234
        }
    );
    assert!(decode_thread_info(&bytes[1..]).is_err());
    assert_eq!(bytes.len(), size_of::<MIPC_THREAD_INFO_T>());
}

/// The bytes a C program of the given word size writes for a `MIPC_THREAD_INFO_T`.
fn c_thread_info(word: usize, hold: i32, tid: u64, name: &[u8], mqd: i32) -> Vec<u8> {
    let mut b = vec![0u8; 2 * word + MIPC_NAME_MAX_LEN + 4 + if word == 8 { 4 } else { 0 }];
    b[0..4].copy_from_slice(&hold.to_ne_bytes());
    if word == 8 {
        b[8..16].copy_from_slice(&tid.to_ne_bytes());
    } else {
        b[4..8].copy_from_slice(&(tid as u32).to_ne_bytes());
    }
    b[2 * word..2 * word + name.len()].copy_from_slice(name);
    let mqd_off = 2 * word + MIPC_NAME_MAX_LEN;
    b[mqd_off..mqd_off + 4].copy_from_slice(&mqd.to_ne_bytes());
    b
}

#[test]
fn thread_info_of_a_32_bit_peer() {
    let bytes = c_thread_info(4, 1, 0xb6f4_3460, b"legacy32", 77);
    assert_eq!(bytes.len(), THREAD_INFO_LEN_32);
    let info = decode_thread_info(&bytes).unwrap();
    assert_eq!(
        info,
        ThreadInfo {
            hold: true,
            thread_id: 0xb6f4_3460,
            name: name("legacy32"),
            mqd: 77
        }
    );
    let bytes = c_thread_info(4, 0, 5, b"legacy32", 78);
    let info = decode_thread_info(&bytes).unwrap();
    assert!(!info.hold);
    assert_eq!(info.mqd, 78);
}

#[test]
fn thread_info_of_a_64_bit_peer() {
    let bytes = c_thread_info(8, 1, 0x7f12_3456_7890, b"legacy64", 1 << 20);
    assert_eq!(bytes.len(), THREAD_INFO_LEN_64);
    let info = decode_thread_info(&bytes).unwrap();
    assert_eq!(
        info,
        ThreadInfo {
            hold: true,
            thread_id: 0x7f12_3456_7890,
            name: name("legacy64"),
            mqd: 1 << 20
        }
    );
    // Between the two sizes, or around them: rejected.
    for len in [0, 43, 45, 48, 52, 55, 57, 64] {
        let mut b = bytes.clone();
        b.resize(len, 0);
        assert!(decode_thread_info(&b).is_err(), "length {len}");
    }
    // A bad name is still refused in either layout.
    assert!(decode_thread_info(&c_thread_info(8, 1, 1, b"", 1)).is_err());
    assert!(decode_thread_info(&c_thread_info(4, 1, 1, b"", 1)).is_err());
}

#[test]
fn direct_requests_carry_the_reply_queue() {
    let mut b = MsgBuf::boxed();
    let n = name("a");
    let tag = CallTag::request(3);
    b.build(Build {
        mtype: 1,
        src: &n,
        dst: &n,
        msg_type: 1,
        sync_flag: -1,
        payload: b"xy",
        tag,
    });
    b.append_reply_queue(77);
    let h = b.decode().unwrap();
    assert_eq!((h.tag, h.reply_queue, h.msg_size), (tag, Some(77), 2));
    assert_eq!(b.mtext_len(), MTEXT_HEADER_LEN + 2 + 8);
    assert_eq!(
        b.as_sendable_untagged(&h).len(),
        MTYPE_LEN + MTEXT_HEADER_LEN + 2
    );
    // An answer's tag may not carry a reply queue.
    let mut m = b.mtext().to_vec();
    let body = MTEXT_HEADER_LEN + 2;
    m[body..body + 4].copy_from_slice(&tag.unwrap().reply().raw().to_ne_bytes());
    assert_eq!(decode(&m), Err(WireError::BadTag));
}

#[test]
fn tags() {
    assert_eq!(CallTag::request(0), None);
    assert_eq!(CallTag::request(TAG_REPLY), None);
    let t = CallTag::request(5).unwrap();
    assert!(!t.is_reply() && t.reply().is_reply());
    assert_eq!(t.reply().id(), 5);
}

/// A message of type 3 from and to `n`.
fn built(n: &MipcName, sync_flag: i32, payload: &[u8], tag: Option<CallTag>) -> Box<MsgBuf> {
    let mut b = MsgBuf::boxed();
    b.build(Build {
        mtype: 3,
        src: n,
        dst: n,
        msg_type: 3,
        sync_flag,
        payload,
        tag,
    });
    b
}

#[test]
fn sender_trailer_after_the_tag_or_alone() {
    let n = name("a");
    for tag in [
        None,
        CallTag::request(9),
        CallTag::request(9).map(CallTag::reply),
    ] {
        let b = built(&n, 0, b"abc", tag);
        let plain = b.decode().unwrap();
        assert_eq!(plain.sender_pid, None);
        let mut c = MsgBuf::boxed();
        c.copy_with_sender(&b, &plain, true, 4242);
        let h = c.decode().unwrap();
        assert_eq!((h.tag, h.sender_pid, h.msg_size), (tag, Some(4242), 3));
        assert_eq!(payload(c.mtext(), &h), b"abc");
        // A legacy receiver's bytes are the body alone.
        assert_eq!(
            c.as_sendable_untagged(&h).len(),
            MTYPE_LEN + MTEXT_HEADER_LEN + 3
        );
        // Without the tag: body and trailer.
        c.copy_with_sender(&b, &plain, false, 7);
        let h = c.decode().unwrap();
        assert_eq!((h.tag, h.sender_pid), (None, Some(7)));
    }
    // A direct request's reply queue is never followed by a trailer.
    let mut b = built(&n, -1, b"", CallTag::request(1));
    b.append_reply_queue(5);
    b.append_sender(1);
    assert_eq!(b.decode(), Err(WireError::BadTag));
    // The mark alone after a body is not a tag: id 0.
    let mut m = b.mtext()[..MTEXT_HEADER_LEN].to_vec();
    m.extend_from_slice(&SENDER_MARK.to_ne_bytes());
    assert_eq!(decode(&m), Err(WireError::BadTag));
}

/// The relay's offer to answer straight back (docs/PROTOCOL.md §11): reply queue, slot and
/// stamp between the tag and the trailer, whose pid is the caller's; refused without the
/// trailer, after an answer's tag, or with a negative queue.
#[test]
fn an_offer_lies_between_the_tag_and_the_sender_trailer() {
    let n = name("a");
    let mut b = built(&n, -1, b"abc", CallTag::request(9));
    b.append_offer(17, 4, 0xFFFF_FFFE);
    b.append_sender(77);
    let h = b.decode().unwrap();
    assert_eq!(h.payload(b.mtext()), b"abc");
    assert_eq!(
        (h.tag, h.reply_queue, h.sender_pid),
        (CallTag::request(9), Some(17), Some(77))
    );
    assert_eq!(
        h.offer,
        Some(Offer {
            slot: 4,
            stamp: 0xFFFF_FFFE,
            caller_pid: 77
        })
    );
    assert_eq!(
        b.mtext_len(),
        MTEXT_HEADER_LEN + 3 + TAG_LEN + OFFER_LEN + SENDER_LEN
    );
    // An offer needs the trailer after it, a request's tag and a reply queue of 0 or more.
    let offered = b.mtext().to_vec();
    let body = MTEXT_HEADER_LEN + 3;
    let mut no_trailer = offered[..offered.len() - SENDER_LEN].to_vec();
    assert!(decode(&no_trailer).is_err());
    no_trailer.truncate(body + TAG_LEN + 4);
    assert_eq!(
        decode(&no_trailer).unwrap().offer,
        None,
        "a direct request, no offer"
    );
    let mut reply = offered.clone();
    reply[body..body + 4]
        .copy_from_slice(&CallTag::request(9).unwrap().reply().raw().to_ne_bytes());
    assert_eq!(decode(&reply), Err(WireError::BadTag));
    let mut negative = offered.clone();
    negative[body + 4..body + 8].copy_from_slice(&(-1i32).to_ne_bytes());
    assert_eq!(decode(&negative), Err(WireError::BadTag));
    // A full-size offered request fits a buffer.
    const { assert!(MTEXT_MAX + TAG_LEN + OFFER_LEN + SENDER_LEN <= MTEXT_MAX_TAGGED) };
}

#[test]
fn lookup_of_the_first_version_has_no_flags() {
    use super::control::{Control, Lookup, LOOKUP_FLAG_PAGE};
    let dst = name("server");
    let old = Lookup::get(dst.field()).expect("a 32-byte LOOKUP still decodes");
    assert_eq!((old.name, old.flags), (dst, 0));
    let mut bytes = [0u8; Lookup::LEN];
    Lookup {
        name: dst,
        flags: LOOKUP_FLAG_PAGE,
    }
    .put(&mut bytes);
    assert_eq!(&bytes[..32], dst.field());
    assert_eq!(Lookup::get(&bytes).map(|l| l.flags), Some(LOOKUP_FLAG_PAGE));
}
