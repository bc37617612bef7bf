//! The exports called as C would call them, with every kind of bad argument: each must
//! return `MIPC_ERROR` with its own reason and `errno`, and write nothing. None of these
//! needs a relay: arguments are checked before anything is sent.

use super::*;
use crate::sysv::{self, QueueId};
use crate::wire::{MIPC_MSG_TYPE_PING, MIPC_OK};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::ptr::{null, null_mut};

fn last() -> String {
    // SAFETY: mipc_last_error always returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(mipc_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn errno() -> i32 {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() }
}

#[track_caller]
fn fails(rc: c_int, reason: &str, err: i32) {
    assert_eq!(rc, MIPC_ERROR, "expected MIPC_ERROR");
    let text = last();
    assert!(text.contains(reason), "reason {text:?} lacks {reason:?}");
    assert_eq!(errno(), err, "errno for {text:?}");
}

struct Queue(QueueId);
impl Queue {
    fn new() -> Queue {
        Queue(sysv::create_private(0o600).expect("a private queue"))
    }
}
impl Drop for Queue {
    fn drop(&mut self) {
        let _ = sysv::remove(self.0);
    }
}

const NAME: *const c_char = c"main_apm".as_ptr();

fn long_name(len: usize) -> Vec<u8> {
    let mut v = vec![b'n'; len];
    v.push(0);
    v
}

#[test]
fn names_are_checked_within_32_bytes() {
    // SAFETY: every pointer is NULL or a NUL-terminated buffer.
    unsafe {
        fails(mipc_init(null()), "name is NULL", libc::EINVAL);
        fails(mipc_init(c"".as_ptr()), "name is empty", libc::EINVAL);
        let n32 = long_name(32);
        fails(
            mipc_init(n32.as_ptr().cast()),
            "longer than 31 bytes",
            libc::ENAMETOOLONG,
        );
        let n4000 = long_name(4000);
        fails(
            mipc_init(n4000.as_ptr().cast()),
            "longer than 31 bytes",
            libc::ENAMETOOLONG,
        );
        // A 31-byte name passes the check and fails only because this thread never
        // registered (no relay is needed to see that).
        let n31 = long_name(31);
        let mut out = 0i32;
        let rc = mipc_send_sync_msg(
            n31.as_ptr().cast(),
            1,
            null(),
            0,
            (&mut out as *mut i32).cast(),
            4,
            -1,
        );
        fails(rc, "never registered", libc::ESRCH);
        fails(
            mipc_ping(n32.as_ptr().cast(), -1),
            "dst: name is longer",
            libc::ENAMETOOLONG,
        );
    }
}

#[test]
fn sync_call_arguments() {
    let mut out = [0u8; 8];
    let o = out.as_mut_ptr().cast::<c_void>();
    let input = [1u8; 16];
    let i = input.as_ptr().cast::<c_void>();
    // SAFETY: the sizes passed never exceed the buffers, except where the
    // size itself is the error under test (then nothing is read).
    unsafe {
        fails(
            mipc_send_sync_msg(null(), 1, i, 16, o, 8, -1),
            "dst is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_send_sync_msg(NAME, 1, null(), 16, o, 8, -1),
            "in is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_send_sync_msg(NAME, 1, i, 16, null_mut(), 8, -1),
            "out is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_send_sync_msg(NAME, 1, i, 2049, o, 8, -1),
            "payload of 2049 bytes is over MIPC_MSG_MAX_LEN",
            libc::EMSGSIZE,
        );
        fails(
            mipc_send_sync_msg(NAME, 1, i, 1 << 31, o, 8, -1),
            "over MIPC_MSG_MAX_LEN",
            libc::EMSGSIZE,
        );
        fails(
            mipc_send_sync_msg(NAME, 1, i, 16, o, 8, 0),
            "timeout must be",
            libc::EINVAL,
        );
        fails(
            mipc_send_sync_msg(NAME, 1, i, 16, o, 8, -7),
            "timeout must be",
            libc::EINVAL,
        );
        fails(
            mipc_send_sync_msg(NAME, 0, i, 16, o, 8, -1),
            "api id must be",
            libc::EINVAL,
        );
        fails(
            mipc_send_sync_msg(NAME, 0x7FFF_FF00, i, 16, o, 8, -1),
            "api id must be",
            libc::EINVAL,
        );
        // 2048 bytes is allowed: the call gets as far as the missing registration.
        let big = [0u8; 2048];
        fails(
            mipc_send_sync_msg(NAME, 1, big.as_ptr().cast(), 2048, o, 8, -1),
            "never registered",
            libc::ESRCH,
        );
        fails(
            mipc_send_sync_msg(NAME, MIPC_MSG_TYPE_PING, null(), 0, null_mut(), 0, 100),
            "never registered",
            libc::ESRCH,
        );
    }
    assert_eq!(out, [0; 8], "nothing written on failure");
}

#[test]
fn send_response_and_ping_arguments() {
    let input = [0u8; 4];
    let i = input.as_ptr().cast::<c_void>();
    // SAFETY: pointers are NULL or valid for the sizes given.
    unsafe {
        fails(
            mipc_send_msg(null(), NAME, 1, i, 4, 0),
            "src is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_send_msg(NAME, null(), 1, i, 4, 0),
            "dst is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_send_msg(NAME, NAME, 1, null(), 4, 0),
            "in is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_send_msg(NAME, NAME, 1, i, 2049, 0),
            "over MIPC_MSG_MAX_LEN",
            libc::EMSGSIZE,
        );
        fails(
            mipc_response_msg(null(), NAME, 1, i, 4),
            "to is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_response_msg(NAME, null(), 1, i, 4),
            "from is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_response_msg(NAME, NAME, 1, null(), 4),
            "out is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_response_msg(NAME, NAME, 1, i, u32::MAX),
            "over MIPC_MSG_MAX_LEN",
            libc::EMSGSIZE,
        );
        fails(
            mipc_response_msg(NAME, NAME, 0, i, 4),
            "api id must be",
            libc::EINVAL,
        );
        fails(mipc_ping(null(), 100), "dst is NULL", libc::EINVAL);
        fails(mipc_ping(NAME, 0), "timeout must be", libc::EINVAL);
    }
}

/// A `pthread_t` for a made-up thread id (an integer on glibc, a pointer on musl).
fn tid(n: u64) -> libc::pthread_t {
    crate::os::ThreadId(n).to_pthread()
}

#[test]
fn table_functions() {
    let mut name = [0x55 as c_char; 32];
    let mut mqd: c_int = -5;
    let q = Queue::new();
    // SAFETY: outputs are 32 bytes and one int, as the contract says.
    unsafe {
        fails(
            mipc_user_thread_info_register(null(), 3, tid(1)),
            "name is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_user_thread_info_register(NAME, -1, tid(1)),
            "queue id is negative",
            libc::EINVAL,
        );
        fails(
            mipc_user_thread_info_find(null_mut(), &mut mqd, tid(1)),
            "name_out is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_user_thread_info_find(name.as_mut_ptr(), null_mut(), tid(1)),
            "mqd_out is NULL",
            libc::EINVAL,
        );
        let unused_tid = tid(0x5EED_0001);
        fails(
            mipc_user_thread_info_find(name.as_mut_ptr(), &mut mqd, unused_tid),
            "never registered",
            libc::ESRCH,
        );
        assert_eq!((name[0], mqd), (0x55, -5), "nothing written on failure");
        // A table with more than MIPC_USER_INFO_NUM (10) entries.
        for k in 0..20 {
            let n = std::ffi::CString::new(format!("t{k}")).unwrap();
            assert_eq!(
                mipc_user_thread_info_register(n.as_ptr(), q.0 .0, tid(0x7000 + k as u64)),
                MIPC_OK
            );
        }
        assert_eq!(
            mipc_user_thread_info_find(name.as_mut_ptr(), &mut mqd, tid(0x7000 + 17)),
            MIPC_OK
        );
        assert_eq!(
            (CStr::from_ptr(name.as_ptr()).to_str().unwrap(), mqd),
            ("t17", q.0 .0)
        );
    }
}

#[test]
fn queue_functions() {
    let q = Queue::new();
    let mut buf = [0u8; crate::wire::DEFAULT_MAX_MSG_SIZE];
    let b = buf.as_mut_ptr().cast::<c_void>();
    let size = buf.len() as c_int;
    // SAFETY: buf has `size` bytes.
    unsafe {
        fails(
            mipc_mq_receive(q.0 .0, null_mut(), size, 0, 0),
            "buf is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_mq_receive(q.0 .0, b, 2, 0, 0),
            "smaller than a message's type",
            libc::EINVAL,
        );
        fails(
            mipc_mq_receive(-1, b, size, 0, 0),
            "queue id is negative",
            libc::EINVAL,
        );
        fails(
            mipc_mq_receive(q.0 .0, b, size, 0, -3),
            "timeout must be",
            libc::EINVAL,
        );
        fails(
            mipc_mq_receive(q.0 .0, b, size, 0, 0),
            "timeout",
            libc::ETIMEDOUT,
        );
        fails(
            mipc_mq_send(q.0 .0, null(), 10, 0),
            "buf is NULL",
            libc::EINVAL,
        );
        fails(mipc_mq_send(q.0 .0, b, -1, 0), "size must be", libc::EINVAL);
        fails(
            mipc_mq_send(q.0 .0, b, i32::MAX, 0),
            "size must be",
            libc::EINVAL,
        );
        fails(
            mipc_mq_send(q.0 .0, b, 10, 0x1234),
            "flag must be",
            libc::EINVAL,
        );
        // Bytes that are not a MIPC message are refused (SPEC §2), and consumed.
        let long = std::mem::size_of::<std::os::raw::c_long>();
        buf[..long].copy_from_slice(&(9 as std::os::raw::c_long).to_ne_bytes());
        buf[long..long + 5].copy_from_slice(b"hello");
        assert_eq!(mipc_mq_send(q.0 .0, b, 5, libc::IPC_NOWAIT), MIPC_OK);
        fails(
            mipc_mq_receive(q.0 .0, b, size, 9, 1000),
            "malformed message",
            libc::EBADMSG,
        );
        // A round trip of a real message through a plain queue, with a receive timeout.
        let mut m = crate::wire::MsgBuf::boxed();
        let name = crate::MipcName::new(b"main_apm").unwrap();
        m.build(crate::wire::Build {
            mtype: 9,
            src: &name,
            dst: &name,
            msg_type: 9,
            sync_flag: 0,
            payload: b"hello",
            tag: None,
        });
        let bytes = m.as_sendable();
        let n = (bytes.len() - long) as c_int;
        assert_eq!(
            mipc_mq_send(q.0 .0, bytes.as_ptr().cast(), n, libc::IPC_NOWAIT),
            MIPC_OK
        );
        buf.fill(0);
        assert_eq!(mipc_mq_receive(q.0 .0, b, size, 9, 1000), n);
        assert_eq!(&buf[..bytes.len()], bytes);
        let start = std::time::Instant::now();
        fails(
            mipc_mq_receive(q.0 .0, b, size, 0, 50),
            "timeout",
            libc::ETIMEDOUT,
        );
        assert!(start.elapsed() >= std::time::Duration::from_millis(50));
        // A closed queue.
        let gone = Queue::new();
        let id = gone.0 .0;
        drop(gone);
        fails(
            mipc_mq_send(id, b, 13, libc::IPC_NOWAIT),
            "queue removed",
            libc::EIDRM,
        );
        fails(
            mipc_mq_receive(id, b, size, 0, 0),
            "queue removed",
            libc::EIDRM,
        );
        fails(
            mipc_clear_resp_msgq(NAME, id, 1),
            "queue removed",
            libc::EIDRM,
        );
        fails(
            mipc_clear_resp_msgq(null(), q.0 .0, 1),
            "name is NULL",
            libc::EINVAL,
        );
        let mut out = [0u8; 4];
        fails(
            mipc_receive_response_msg(NAME, q.0 .0, 1, out.as_mut_ptr().cast(), 4, 30),
            "timeout",
            libc::ETIMEDOUT,
        );
        fails(
            mipc_receive_response_msg(NAME, q.0 .0, 1, null_mut(), 4, 30),
            "out is NULL",
            libc::EINVAL,
        );
    }
    let made = mipc_mq_create();
    assert!(made >= 0);
    let st = sysv::stat(QueueId(made)).unwrap();
    assert_eq!(
        st.mode, 0o600,
        "queues are private to their owner by default"
    );
    sysv::remove(QueueId(made)).unwrap();
}

#[test]
fn taking_a_message_apart() {
    let mut m = [0u8; crate::wire::DEFAULT_MAX_MSG_SIZE];
    let off = std::mem::size_of::<std::os::raw::c_long>();
    m[off..off + 5].copy_from_slice(b"alarm");
    m[off + 64..off + 68].copy_from_slice(&77u32.to_ne_bytes());
    let mut src = [0x55 as c_char; 32];
    let mut api: c_uint = 0;
    // SAFETY: m is a whole message buffer, src 32 bytes, api one uint.
    unsafe {
        fails(
            mipc_receive_msg(src.as_mut_ptr(), &mut api, null()),
            "msg is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_receive_msg(null_mut(), &mut api, m.as_ptr().cast()),
            "src_out is NULL",
            libc::EINVAL,
        );
        fails(
            mipc_receive_msg(src.as_mut_ptr(), null_mut(), m.as_ptr().cast()),
            "api_id_out is NULL",
            libc::EINVAL,
        );
        assert_eq!(
            mipc_receive_msg(src.as_mut_ptr(), &mut api, m.as_ptr().cast()),
            MIPC_OK
        );
        assert_eq!(
            (CStr::from_ptr(src.as_ptr()).to_bytes(), api),
            (&b"alarm"[..], 77)
        );
        m[off..off + 32].fill(b'x');
        src[0] = 0x55;
        api = 0;
        fails(
            mipc_receive_msg(src.as_mut_ptr(), &mut api, m.as_ptr().cast()),
            "src_name: name is longer",
            libc::ENAMETOOLONG,
        );
        assert_eq!((src[0], api), (0x55, 0), "nothing written on failure");
    }
}

unsafe extern "C-unwind" fn handler(msg: *mut c_char, size: c_int) -> c_int {
    // SAFETY: called by mthread_check_mq_msg with the test's own buffer.
    unsafe { *msg = b'!' as c_char };
    size * 2
}

#[test]
fn handler_table() {
    let (mut ti, mut mi) = (-1, -1);
    let mut msg = [0 as c_char; 100];
    let q = Queue::new();
    let id = q.0 .0;
    // SAFETY: index pointers are valid ints; msg has 100 bytes.
    unsafe {
        fails(
            mthread_register_mq(id, None, &mut ti, &mut mi),
            "handler is NULL",
            libc::EINVAL,
        );
        fails(
            mthread_register_mq(id, Some(handler), null_mut(), &mut mi),
            "thread_index is NULL",
            libc::EINVAL,
        );
        fails(
            mthread_register_mq(-3, Some(handler), &mut ti, &mut mi),
            "queue id is negative",
            libc::EINVAL,
        );
        assert_eq!(
            mthread_register_mq(id, Some(handler), &mut ti, &mut mi),
            MIPC_OK
        );
        assert!(ti >= 0 && mi >= 0);
        fails(
            mthread_check_mq_msg(ti, mi, null_mut(), 10),
            "msg is NULL",
            libc::EINVAL,
        );
        fails(
            mthread_check_mq_msg(ti, mi, msg.as_mut_ptr(), -1),
            "size is out of range",
            libc::EINVAL,
        );
        fails(
            mthread_check_mq_msg(ti, 999, msg.as_mut_ptr(), 10),
            "no handler",
            libc::EINVAL,
        );
        fails(
            mthread_check_mq_msg(-1, mi, msg.as_mut_ptr(), 10),
            "negative handler index",
            libc::EINVAL,
        );
        assert_eq!(mthread_check_mq_msg(ti, mi, msg.as_mut_ptr(), 50), 100);
        assert_eq!(msg[0], b'!' as c_char);
    }
}

#[test]
fn exit_without_entries_and_version() {
    fails(mipc_exit(), "never registered", libc::ESRCH);
    // SAFETY: mipc_version returns a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(mipc_version()) }.to_str().unwrap();
    assert_eq!(
        v,
        format!("MIPC 1.0 (mipc-rs {})", env!("CARGO_PKG_VERSION"))
    );
}
