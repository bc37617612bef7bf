//! The shipped Lua dissector decodes what the pcapng writer writes (needs `tshark`).

use crate::events::{capture_packet, Tracker};
use crate::pcapng::Writer;
use mipc::wire::tool::{EventKind, EventRecord};
use mipc::wire::{Build, CallTag, MsgBuf};
use mipc::MipcName;
use std::path::PathBuf;
use std::process::Command;

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

fn dissector() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging/wireshark/mipc.lua")
}

/// Runs tshark with the dissector on `file` and returns one line per packet.
pub fn tshark_fields(file: &std::path::Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-X")
        .arg(format!("lua_script:{}", dissector().display()))
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark runs (apt-get install tshark; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn tshark_decodes_a_synthetic_capture() {
    let dir = std::env::temp_dir().join(format!("mipc-dissector-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("synthetic.pcapng");
    let t = CallTag::request(7).unwrap();
    let events: Vec<(EventKind, u64, Vec<u8>)> = vec![
        (
            EventKind::Message,
            1_000_000_000,
            msg("cli", "srv", 0x101, 1000, Some(t), b"hello"),
        ),
        (
            EventKind::Message,
            1_000_250_000,
            msg("srv", "cli", 0x101, 0, Some(t.reply()), b"world"),
        ),
        (
            EventKind::Message,
            1_001_000_000,
            msg("old", "srv", 5, 0, None, b"\x01\x02"),
        ),
        (EventKind::ErrorAnswer, 1_002_000_000, {
            let mut p = 1i32.to_ne_bytes().to_vec();
            p.extend_from_slice(&9u32.to_ne_bytes());
            msg(
                "mipc_main",
                "cli",
                0x7FFF_FF03,
                0,
                Some(CallTag::request(8).unwrap().reply()),
                &p,
            )
        }),
        (EventKind::Died, 1_003_000_000, Vec::new()),
    ];
    {
        let f = std::fs::File::create(&file).unwrap();
        let mut w = Writer::new(f).unwrap();
        let mut tr = Tracker::default();
        for (kind, time, m) in &events {
            let rec = EventRecord {
                kind: *kind,
                time_ns: *time,
                seq: 0,
                lost: 0,
                pid: 42,
                code: 1,
                name: (*kind == EventKind::Died).then(|| name("srv")),
                msg: m,
            };
            let mut bytes = Vec::new();
            rec.encode(&mut bytes);
            let shown = tr.show(&rec);
            let (pkt, comment) = capture_packet(&shown, &bytes);
            w.packet(*time, &pkt, comment.as_deref()).unwrap();
        }
        w.flush().unwrap();
    }
    let lines = tshark_fields(
        &file,
        &[
            "mipc.src",
            "mipc.dst",
            "mipc.msg_type",
            "mipc.payload",
            "mipc.call_id",
            "mipc.kind",
            "mipc.request_in",
            "mipc.control",
            "frame.comment",
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(lines[0], "cli|srv|0x00000101|68656c6c6f|7|sync|||");
    assert_eq!(lines[1], "srv|cli|0x00000101|776f726c64|7|answer|1||");
    assert_eq!(lines[2], "old|srv|0x00000005|0102||async|||");
    assert!(lines[3].starts_with("mipc_main|cli|0x7fffff03|0100000009000000|8|answer||ERROR|error answer: mipc_main -> cli api ERROR 8 B: no such destination"), "{}", lines[3]);
    assert!(
        lines[4].starts_with("mipc_main|srv|0x7fffff0a|"),
        "{}",
        lines[4]
    );
    assert!(
        lines[4].contains("|async||MONITOR_EVENT|srv died (pid 42)"),
        "{}",
        lines[4]
    );
}
