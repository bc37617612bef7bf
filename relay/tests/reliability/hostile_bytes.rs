//! Guarantee 7 (docs/RELIABILITY.md), generated: 100 000 hostile messages on the root queue
//! change nothing.

use crate::common::{process_cpu, skipped_when_emulated, Bus};
use crate::raw::{header, name_field, send_hostile};
use crate::support::{outcomes, probe, saved_entries, serial, OwnedQueue};
use mipc::sysv;
use mipc::wire::{
    thread_info_bytes, MIPC_MSG_TYPE_ERROR, MIPC_MSG_TYPE_HELLO, MIPC_MSG_TYPE_NOTICE,
    MIPC_MSG_TYPE_PING, MIPC_MSG_TYPE_WAKE, MTEXT_HEADER_LEN,
};
use mipc::MipcName;
use std::os::raw::c_long;
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn mtype(&mut self) -> c_long {
        match self.below(4) {
            0 => 1 + self.below(8) as c_long,
            1 => (0x7FFF_FF00 + self.below(256)) as c_long,
            _ => (self.next() >> 1).max(1) as c_long,
        }
    }
}

/// What the generator needs to know: the two registered entries and a queue of the test's.
struct Victims {
    e1: (String, i32),
    e2: (String, i32),
    mine: i32,
}

/// The `mtext` of message `i` of the flood (the caller adds a random `mtype`).
fn hostile(i: u64, sizes: &mut u64, rng: &mut Rng, v: &Victims) -> Vec<u8> {
    let pool = |rng: &mut Rng| name_field(&format!("stranger{}", rng.below(50)));
    let sync = |rng: &mut Rng| match rng.below(3) {
        0 => 0,
        1 => -1,
        _ => 1 + rng.below(5000) as i32,
    };
    let variant = i / 16;
    match i % 16 {
        // Random bytes of every size from 0 to MSGMAX in turn.
        0..=5 => {
            let len = (*sizes * 7919 % 8193) as usize;
            *sizes += 1;
            rng.bytes(len)
        }
        // A valid header whose msg_size lies.
        6 => {
            let len = rng.below(2049) as u32;
            let lie = match variant % 7 {
                0 => len + 1,
                1 => len.saturating_sub(1) + u32::from(len == 0) * 3,
                2 => len + 5,
                3 => 2049,
                4 => u32::MAX,
                5 => 0x8000_0000,
                _ => rng.next() as u32 | 1 << 12,
            };
            let mut m = header(
                &pool(rng),
                &pool(rng),
                1 + rng.below(100) as u32,
                lie,
                sync(rng),
            );
            m.extend(rng.bytes(len as usize));
            m
        }
        // Unterminated (or empty) names, sizes right.
        7 => {
            let len = rng.below(2049) as usize;
            let long = [b'A' + (variant % 26) as u8; 32];
            let (src, dst) = match variant % 4 {
                0 => (long, pool(rng)),
                1 => (pool(rng), long),
                2 => ([0u8; 32], pool(rng)),
                _ => (pool(rng), [0u8; 32]),
            };
            let mut m = header(&src, &dst, 1, len as u32, sync(rng));
            m.extend(rng.bytes(len));
            m
        }
        // NOTICEs that claim another entry's queue or name, or are malformed.
        8 => {
            let relay = name_field("mipc_main");
            let (src, hold, name, mqd, size_fix): (String, bool, String, i32, Option<usize>) =
                match variant % 7 {
                    0 => (
                        format!("evil{}", variant % 100),
                        true,
                        format!("evil{}", variant % 100),
                        v.e1.1,
                        None,
                    ),
                    1 => (v.e1.0.clone(), true, v.e1.0.clone(), v.mine, None),
                    2 => (v.e1.0.clone(), false, v.e1.0.clone(), v.mine, None),
                    3 => (v.e2.0.clone(), false, v.e2.0.clone(), v.e1.1, None),
                    4 => ("stranger1".into(), false, v.e2.0.clone(), v.e2.1, None),
                    5 => (v.e2.0.clone(), true, v.e2.0.clone(), 0x7fff_fff0, None),
                    _ => (
                        v.e1.0.clone(),
                        false,
                        v.e1.0.clone(),
                        v.e1.1,
                        Some(rng.below(100) as usize),
                    ),
                };
            let name = MipcName::new(name.as_bytes()).unwrap();
            let mut info = thread_info_bytes(hold, 0, &name, mqd);
            if let Some(n) = size_fix {
                // A payload of the wrong size (never exactly one MIPC_THREAD_INFO_T).
                info.resize(if n == info.len() { n + 1 } else { n }, 0x55);
            }
            let mut m = header(
                &name_field(&src),
                &relay,
                MIPC_MSG_TYPE_NOTICE,
                info.len() as u32,
                0,
            );
            m.extend(info);
            m
        }
        // HELLOs that claim another entry's name or queue, or are malformed.
        9 => {
            let relay = name_field("mipc_main");
            let mut p = Vec::new();
            // (HELLOs naming an entry's own queue are the subject of
            // hello_claiming_an_entrys_queue_puts_nothing_on_it.)
            let (src, pid, mqd): (String, i32, i32) = match variant % 4 {
                0 => (v.e1.0.clone(), 1, v.mine),
                1 => (v.e2.0.clone(), 1, v.mine),
                2 => (v.e2.0.clone(), 0, v.e2.1),
                _ => (v.e1.0.clone(), -5, v.e1.1),
            };
            p.extend_from_slice(&1u32.to_ne_bytes());
            p.extend_from_slice(&pid.to_ne_bytes());
            p.extend_from_slice(&mqd.to_ne_bytes());
            p.extend_from_slice(&0u32.to_ne_bytes());
            p.truncate(if variant % 9 == 0 { 6 } else { 16 });
            let mut m = header(
                &name_field(&src),
                &relay,
                MIPC_MSG_TYPE_HELLO,
                p.len() as u32,
                500,
            );
            m.extend(p);
            m
        }
        // Control types of the reserved range, to the entries and to the relay.
        10 => {
            let ty = 0x7FFF_FF00 + rng.below(256) as u32;
            let (src, dst) = match variant % 5 {
                0 => (pool(rng), name_field(&v.e1.0)),
                1 => (pool(rng), name_field(&v.e2.0)),
                2 => (pool(rng), name_field("mipc_main")),
                3 => (name_field(&v.e1.0), name_field(&v.e2.0)),
                _ => {
                    // In the name of an entry, to the relay (a PING in an entry's name is the
                    // subject of forged_ping_in_an_entrys_name_does_not_bounce_forever).
                    let who = if variant % 2 == 0 { &v.e1.0 } else { &v.e2.0 };
                    let mut m = header(
                        &name_field(who),
                        &name_field("mipc_main"),
                        ty | 0x10,
                        4,
                        sync(rng),
                    );
                    m.extend_from_slice(&[0; 4]);
                    return m;
                }
            };
            // A PING to an entry is ordinary traffic that it answers: not this test's business.
            let ty = if ty == MIPC_MSG_TYPE_PING
                || (dst == name_field("mipc_main") && ty <= MIPC_MSG_TYPE_HELLO)
            {
                if ty & 1 == 0 {
                    MIPC_MSG_TYPE_WAKE
                } else {
                    MIPC_MSG_TYPE_ERROR
                }
            } else {
                ty
            };
            let len = rng.below(64) as usize;
            let mut m = header(&src, &dst, ty, len as u32, sync(rng));
            m.extend(rng.bytes(len));
            if rng.below(2) == 0 {
                m.extend_from_slice(&(rng.next() as u32 | 1).to_ne_bytes());
            }
            m
        }
        // Well-formed messages to names nobody registered, tagged, untagged, tag 0.
        11 | 12 => {
            let len = rng.below(2049) as usize;
            let mut m = header(
                &pool(rng),
                &pool(rng),
                1 + rng.below(1000) as u32,
                len as u32,
                sync(rng),
            );
            m.extend(rng.bytes(len));
            match rng.below(3) {
                0 => {}
                1 => m.extend_from_slice(&(rng.next() as u32 | 1).to_ne_bytes()),
                _ => m.extend_from_slice(&0u32.to_ne_bytes()),
            }
            m
        }
        // Random bytes with terminated names and a matching size, so decoding goes deep.
        _ => {
            let len = rng.below(2049) as usize;
            let mut m = rng.bytes(MTEXT_HEADER_LEN + len);
            let (s, d) = (rng.below(32) as usize, rng.below(32) as usize);
            m[s] = 0;
            m[32 + d] = 0;
            m[68..72].copy_from_slice(&(len as u32).to_ne_bytes());
            m
        }
    }
}

/// 100 000 generated messages on the root queue (random bytes of every size from 0 to
/// MSGMAX, lying msg_size, unterminated names, NOTICEs and HELLOs claiming the entries' names
/// and queues, reserved control types, messages to nobody): the relay stays up, its memory
/// does not grow (under 1 MiB of allocator slack), it stays idle afterwards (no loop), and
/// the two registered entries keep their names and queues, get nothing of the flood, and
/// deliver byte for byte.
#[test]
fn hostile_bytes_on_the_root_queue_change_nothing() {
    let _serial = serial();
    let mut bus = Bus::start("hostile_bytes");
    let (e1, q1) = probe(&mut bus, "victim_probe", &[]);
    let e2 = bus.spawn_ready("middleware_server", &["victim_mw"]);
    // A warm-up round trip, so that the relay's memory is measured after its first calls
    // (and the state file has been written after both greetings).
    let warm = bus.run("stress_client", &["1", "20", "warm", "victim_mw"]);
    warm.assert_success();
    let before = saved_entries(&bus);
    let q2 = before.get("victim_mw").expect("victim_mw registered").0;
    let rss0 = bus.relay_rss_kib();
    let threads0 = bus.relay_status_field("Threads");
    let mine = OwnedQueue::new();
    let v = Victims {
        e1: ("victim_probe".into(), q1),
        e2: ("victim_mw".into(), q2),
        mine: mine.0 .0,
    };
    let root = sysv::open_key(bus.key(), false, 0).expect("root queue");
    let relay = bus.relay_pid();
    let mut rng = Rng(0x00C0_FFEE_1234_5678);
    let mut sizes = 0u64;
    let mut buf = Vec::new();
    let total: u64 = 100_000;
    let t0 = Instant::now();
    let cpu0 = process_cpu(relay);
    let mut bytes = 0usize;
    for i in 0..total {
        let m = hostile(i, &mut sizes, &mut rng, &v);
        bytes += m.len();
        let ty = rng.mtype();
        send_hostile(root, ty, &m, relay, &mut buf);
    }
    let spent = t0.elapsed();
    let mine_after = sysv::stat(mine.0).expect("the test's queue");
    drop(mine);
    // A ping through the root queue: when it is answered, the flood has been handled.
    let check = bus.run(
        "caller",
        &[
            "checker",
            "ping",
            "mipc_main",
            "10000",
            "call",
            "victim_probe",
            "1",
            "5000",
            "byte for byte \x01\x7f",
            "call",
            "victim_probe",
            "4",
            "500",
            "idle?",
        ],
    );
    check.assert_success();
    let cpu_flood = process_cpu(relay) - cpu0;
    let o = outcomes(&check);
    assert!(
        o[0].ok,
        "the relay does not answer a ping: {}",
        check.describe()
    );
    assert!(
        o[1].ok && o[1].text == "byte for byte \x01\x7f",
        "{}",
        check.describe()
    );
    assert!(
        !o[2].ok && o[2].text.contains("timeout"),
        "{}",
        check.describe()
    );
    let rss1 = bus.relay_rss_kib();
    let threads1 = bus.relay_status_field("Threads");
    eprintln!(
        "hostile flood: {total} messages ({} MiB) in {spent:?}, relay CPU {cpu_flood:?}, VmRSS {rss0} -> {rss1} KiB, threads {threads0} -> {threads1}",
        bytes >> 20
    );

    // The relay is idle once the flood is over (nothing bounces between it and an entry):
    // measured over a 500 ms wait.
    let cpu_a = bus.relay_cpu();
    let idle = bus.run(
        "caller",
        &["idler", "call", "victim_probe", "4", "500", "x"],
    );
    let idle_cpu = bus.relay_cpu() - cpu_a;
    assert!(!outcomes(&idle)[0].ok, "{}", idle.describe());
    eprintln!("relay CPU during 500 ms after the flood: {idle_cpu:?}");
    assert!(
        idle_cpu < Duration::from_millis(25),
        "the relay is busy after the flood: {idle_cpu:?}"
    );

    // SAFETY: kill with signal 0 only checks for existence.
    assert!(unsafe { libc::kill(relay, 0) } == 0, "the relay died");
    if !skipped_when_emulated(
        "the relay's memory bound",
        "VmRSS counts the emulator's own",
    ) {
        assert!(
            rss1 <= rss0 + 1024,
            "relay memory grew by {} KiB under the flood",
            rss1 as i64 - rss0 as i64
        );
    }
    assert_eq!(threads0, threads1, "the flood started relay threads");
    let after = saved_entries(&bus);
    for name in ["victim_probe", "victim_mw"] {
        assert_eq!(
            before.get(name),
            after.get(name),
            "entry {name} changed: {after:?}"
        );
    }
    for name in after.keys() {
        assert!(
            before.contains_key(name) || name == "checker" || name == "idler",
            "the flood registered {name:?}"
        );
    }
    // Byte for byte, every size from 12 to 2048, through the second entry.
    let stress = bus.run("stress_client", &["2", "100", "after", "victim_mw"]);
    stress.assert_success().assert_line("ok 200");
    eprintln!(
        "the test's own queue (named in the NOTICEs and HELLOs claiming an entry's name) got {} messages",
        mine_after.messages
    );

    // The entries saw nothing of the flood: victim_probe served only our three calls.
    let e1_out = bus.kill(e1);
    let got: Vec<&String> = e1_out
        .stdout
        .iter()
        .filter(|l| l.starts_with("got"))
        .collect();
    assert_eq!(
        got,
        [
            "got 1 from checker",
            "got 4 from checker",
            "got 4 from idler"
        ],
        "{}",
        e1_out.describe()
    );
    assert!(e1_out.stderr.is_empty(), "{}", e1_out.describe());
    let e2_out = bus.kill(e2);
    assert!(e2_out.stderr.is_empty(), "{}", e2_out.describe());
    bus.finish();
}
