//! Messages to the relay itself (PING) and control types that may not be forwarded.

use super::*;

#[test]
fn ping_to_the_relay_is_answered_with_int_zero() {
    let (mut r, mut p, now) = setup();
    let ping = MIPC_MSG_TYPE_PING;
    assert_eq!(
        r.handle(
            &mut p,
            &mut msg(ping as c_long, "legacy", "mipc_main", ping, -1, &[], None),
            now
        ),
        Ok(Handled::Ponged)
    );
    let (mtype, h, pl) = decode(&p.take(10).unwrap());
    assert_eq!(
        (mtype, h.msg_type, h.tag, pl),
        (ping as c_long, ping, None, 0i32.to_ne_bytes().to_vec())
    );
    let tag = CallTag::request(77).unwrap();
    assert_eq!(
        r.handle(
            &mut p,
            &mut msg(ping as c_long, "a", "mipc_main", ping, -1, &[], Some(tag)),
            now
        ),
        Ok(Handled::Ponged)
    );
    assert_eq!(decode(&p.take(11).unwrap()).1.tag, Some(tag.reply()));
}

#[test]
fn reserved_types_are_not_forwarded() {
    let (mut r, mut p, now) = setup();
    for t in [
        MIPC_MSG_TYPE_WAKE,
        MIPC_MSG_TYPE_ERROR,
        MIPC_MSG_TYPE_NOTICE,
        0x7FFF_FFFF,
    ] {
        let out = r.handle(
            &mut p,
            &mut msg(t as c_long, "a", "b", t, 0, &[], None),
            now,
        );
        assert_eq!(out, Err(Rejected::Control(t, n("a"))));
    }
    // PING to an entry is an application call: forwarded.
    let ping = MIPC_MSG_TYPE_PING;
    assert_eq!(
        r.handle(
            &mut p,
            &mut msg(ping as c_long, "a", "b", ping, -1, &[], None),
            now
        ),
        Ok(Handled::Forwarded)
    );
    assert_eq!(p.pending(12), 1);
}
