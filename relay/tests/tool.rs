//! The `mipc` tool against a real relay: every verb, each test on its own bus (issue 9).
//!
//! Run: `cargo build --release && make c-tests && cargo test -p mipc-relay --test tool`
//! (the test builds the `mipc` binary beside `mipc_main` itself).

mod common;

use common::Bus;
use mipc::sysv::{self, QueueId};
use mipc::wire::{self, Build, MsgBuf, MIPC_MSG_TYPE_NOTICE};
use mipc::MipcName;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The `mipc` binary, built (once per test run) into the directory of `mipc_main`.
fn mipc_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let relay = Path::new(env!("CARGO_BIN_EXE_mipc_main"));
            let dir = relay.parent().expect("target dir");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-q", "-p", "mipc-tool", "--bin", "mipc"]);
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            let st = cmd.status().expect("cargo build -p mipc-tool");
            assert!(st.success(), "building the mipc tool failed");
            dir.join("mipc")
        })
        .clone()
}

fn mipc_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(mipc_bin());
    cmd.args(args);
    cmd
}

/// Runs `mipc ARGS` on the bus to completion.
fn mipc(bus: &mut Bus, args: &[&str]) -> common::Finished {
    let id = bus.spawn_command("mipc", mipc_cmd(args));
    bus.wait_exit(id)
}

fn code(f: &common::Finished) -> i32 {
    f.status.code().unwrap_or(-1)
}

/// Starts `mipc monitor ARGS` and returns once it is attached: it sends messages to a name
/// nobody holds until the monitor shows one being rejected (no sleeping).
fn attached_monitor(bus: &mut Bus, args: &[&str]) -> common::ProcId {
    let mut all = vec!["monitor"];
    all.extend_from_slice(args);
    let id = bus.spawn_command("mipc monitor", mipc_cmd(&all));
    for _ in 0..200 {
        mipc(bus, &["send", "attach-probe", "1"]);
        if bus
            .wait_line_for(
                id,
                |l| l.contains("attach-probe"),
                Some(Duration::from_millis(100)),
            )
            .is_some()
        {
            return id;
        }
    }
    panic!("the monitor never attached: {}", bus.relay_log());
}

/// Registers `n` legacy entries straight on the root queue (NOTICE bytes, SPEC §2), each
/// with a queue of its own; returns the queues (removed by the caller).
fn register_many(bus: &Bus, n: usize) -> Vec<QueueId> {
    let root = sysv::open_key(bus.key(), false, 0).expect("root queue");
    let mut queues = Vec::with_capacity(n);
    let mut buf = MsgBuf::boxed();
    for i in 0..n {
        let q = sysv::create_private(0o600).expect("queue");
        queues.push(q);
        let name = MipcName::new(format!("bulk_{i:04}").as_bytes()).unwrap();
        let info = wire::thread_info_bytes(true, 1000 + i as u64, &name, q.0);
        buf.build(Build {
            mtype: MIPC_MSG_TYPE_NOTICE as _,
            src: &name,
            dst: &MipcName::RELAY,
            msg_type: MIPC_MSG_TYPE_NOTICE,
            sync_flag: 0,
            payload: &info,
            tag: None,
        });
        sysv::send(root, buf.as_sendable(), false).expect("NOTICE");
    }
    queues
}

/// `mipc list` shows each entry's subscriptions (issue 10): a C entry subscribed to a prefix
/// and an exact name shows both, in -v and --json; a legacy entry shows none.
#[test]
fn list_shows_each_entrys_subscriptions() {
    let mut bus = Bus::start("tool_list_subs");
    let sub = bus.spawn(
        "events_peer",
        &[
            "subber", "sub", "alarm.*", "sub", "link.up", "ready", "recv", "1", "20000",
        ],
    );
    bus.wait_line_starting(sub, "ready");
    let queues = register_many(&bus, 1);

    let text = mipc(&mut bus, &["list", "-v"]);
    assert_eq!(code(&text), 0, "{}", text.describe());
    assert!(text.stdout[0].trim_end().ends_with("SUBSCRIPTIONS"));
    let line = |name: &str| {
        text.stdout
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed: {}", text.describe()))
            .clone()
    };
    assert!(
        line("subber").ends_with(" alarm.*,link.up"),
        "{}",
        line("subber")
    );
    assert!(line("bulk_0000").ends_with(" -"), "{}", line("bulk_0000"));

    let out = mipc(&mut bus, &["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", out.describe());
    let json = out.stdout.join("\n");
    assert!(
        json.contains("\"subscriptions\":[\"alarm.*\",\"link.up\"]"),
        "{json}"
    );
    let legacy = json
        .split("\"name\":\"bulk_0000\"")
        .nth(1)
        .expect("bulk_0000");
    assert!(
        legacy
            .split('}')
            .next()
            .unwrap()
            .contains("\"subscriptions\":[]"),
        "{json}"
    );
    for q in queues {
        let _ = sysv::remove(q);
    }
    bus.kill(sub);
    bus.finish();
}

#[test]
fn list_shows_a_thousand_entries_from_one_snapshot() {
    let mut bus = Bus::start("tool_list_1000");
    let server = bus.spawn_ready("probe_server", &["probe"]);
    let queues = register_many(&bus, 1000);
    // The NOTICEs are on the root queue before this request, so the relay has them all.
    let out = mipc(&mut bus, &["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", out.describe());
    let json = out.stdout.join("\n");
    let bulk = json.matches("\"name\":\"bulk_").count();
    assert_eq!(bulk, 1000, "{}", &json[..json.len().min(400)]);
    assert!(json.contains("\"name\":\"probe\""), "{json:.400}");
    assert!(json.contains("\"kind\":\"greeted\"") && json.contains("\"kind\":\"legacy\""));

    let text = mipc(&mut bus, &["list", "-v"]);
    assert_eq!(code(&text), 0, "{}", text.describe());
    assert!(text.stdout[0].starts_with("NAME") && text.stdout[0].contains("BYTES_OUT"));
    assert_eq!(text.last_line(), "1001 entries");
    let probe = text
        .stdout
        .iter()
        .find(|l| l.starts_with("probe "))
        .expect("probe listed");
    assert!(probe.contains(&bus.pid(server).to_string()), "{probe}");
    for q in queues {
        let _ = sysv::remove(q);
    }
    bus.kill(server);
    bus.finish();
}

#[test]
fn ping_call_and_send_reach_a_daemon() {
    let mut bus = Bus::start("tool_ping_call");
    let server = bus.spawn_ready("probe_server", &["probe"]);
    let ping = mipc(&mut bus, &["ping", "probe", "-c", "3", "-i", "0"]);
    assert_eq!(code(&ping), 0, "{}", ping.describe());
    assert_eq!(
        ping.stdout
            .iter()
            .filter(|l| l.starts_with("answer from probe: seq="))
            .count(),
        3
    );
    ping.assert_line("3 sent, 3 answered, 0% lost");

    let call = mipc(&mut bus, &["call", "probe", "1", "Hello, MIPC!"]);
    assert_eq!(code(&call), 0, "{}", call.describe());
    call.assert_line("00000000  48 65 6c 6c 6f 2c 20 4d  49 50 43 21              |Hello, MIPC!|");
    let raw = mipc(
        &mut bus,
        &["call", "probe", "0x1", "--hex", "00 01 ff", "--raw"],
    );
    assert_eq!(code(&raw), 0, "{}", raw.describe());
    let file = std::env::temp_dir().join(format!("mipc-call-{}", std::process::id()));
    std::fs::write(&file, b"from a file\n").unwrap();
    let at = format!("@{}", file.display());
    let from_file = mipc(&mut bus, &["call", "probe", "1", &at, "--raw"]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code(&from_file), 0, "{}", from_file.describe());
    from_file.assert_line("from a file");
    // A monitor with -t stops by itself.
    let quiet = mipc(&mut bus, &["monitor", "-t", "50", "-n", "nobody-at-all"]);
    assert_eq!(code(&quiet), 0, "{}", quiet.describe());
    assert!(quiet.stdout.is_empty(), "{}", quiet.describe());
    let send = mipc(&mut bus, &["send", "probe", "1", "async"]);
    assert_eq!(code(&send), 0, "{}", send.describe());
    bus.wait_line(server, |l| l.starts_with("got 1 from mipc-"));

    // Failures: a name nobody holds, a daemon that never answers.
    let nobody = mipc(&mut bus, &["call", "nobody", "1"]);
    assert_eq!(code(&nobody), 5, "{}", nobody.describe());
    assert!(
        nobody.stderr.contains("no such destination"),
        "{}",
        nobody.stderr
    );
    let never = mipc(&mut bus, &["-t", "100", "call", "probe", "4"]);
    assert_eq!(code(&never), 4, "{}", never.describe());
    bus.kill(server);
    bus.finish();
}

#[test]
fn wait_returns_when_a_late_daemon_registers_and_times_out_otherwise() {
    let mut bus = Bus::start("tool_wait");
    let timed_out = mipc(&mut bus, &["wait", "late", "-t", "100"]);
    assert_eq!(code(&timed_out), 4, "{}", timed_out.describe());
    assert!(
        timed_out.stderr.contains("timed out"),
        "{}",
        timed_out.stderr
    );

    let waiter = bus.spawn_command("mipc wait", mipc_cmd(&["wait", "late", "other"]));
    let other = bus.spawn_ready("probe_server", &["other"]);
    let late = bus.spawn_ready("probe_server", &["late"]);
    let done = bus.wait_exit(waiter);
    assert_eq!(code(&done), 0, "{}", done.describe());
    // Already registered: at once.
    let again = mipc(&mut bus, &["wait", "late", "-t", "5000"]);
    assert_eq!(code(&again), 0, "{}", again.describe());
    bus.kill(other);
    bus.kill(late);
    bus.finish();
}

#[test]
fn monitor_sees_calls_with_latency_messages_registrations_deaths_and_rejections() {
    let mut bus = Bus::start("tool_monitor");
    let mon = attached_monitor(&mut bus, &["--json"]);
    let server = bus.spawn_ready("probe_server", &["probe"]);
    bus.wait_line(mon, |l| {
        l.contains("\"event\":\"register\"") && l.contains("\"name\":\"probe\"")
    });
    let greet = bus.wait_line(mon, |l| {
        l.contains("\"event\":\"greet\"") && l.contains("\"name\":\"probe\"")
    });
    assert!(
        greet.contains(&format!("\"pid\":{}", bus.pid(server))),
        "{greet}"
    );

    // A sync call that takes at least 30 ms (SLOW: u32 delay then text).
    let caller = bus.run("caller", &["cli", "call", "probe", "6", "1000", "30:pong"]);
    caller.assert_success().assert_line_starts("ok ");
    let req = bus.wait_line(mon, |l| {
        l.contains("\"src\":\"cli\",\"dst\":\"probe\",\"api\":6")
    });
    assert!(req.contains("\"type\":\"sync\""), "{req}");
    let ans = bus.wait_line(mon, |l| {
        l.contains("\"src\":\"probe\",\"dst\":\"cli\",\"api\":6")
    });
    assert!(ans.contains("\"type\":\"answer\""), "{ans}");
    let latency: f64 = ans
        .split("\"latency_ms\":")
        .nth(1)
        .and_then(|s| s.trim_end_matches('}').parse().ok())
        .unwrap_or_else(|| panic!("no latency in {ans}"));
    assert!((30.0..1000.0).contains(&latency), "{latency} ms in {ans}");
    assert!(
        ans.contains(&format!("\"payload\":\"{}\"", hex(b"pong"))),
        "{ans}"
    );

    // An async message, and one the relay rejects.
    mipc(&mut bus, &["send", "probe", "0x10", "tick"]);
    let asy = bus.wait_line(mon, |l| l.contains("\"api\":16"));
    assert!(
        asy.contains("\"type\":\"async\"") && asy.contains(&hex(b"tick")),
        "{asy}"
    );
    mipc(&mut bus, &["send", "nobody", "3"]);
    let rej = bus.wait_line(mon, |l| {
        l.contains("\"event\":\"reject\"") && l.contains("\"dst\":\"nobody\"")
    });
    assert!(rej.contains("no such destination"), "{rej}");

    // A death.
    let pid = bus.pid(server);
    bus.kill(server);
    let died = bus.wait_line(mon, |l| l.contains("\"event\":\"death\""));
    assert!(
        died.contains("\"name\":\"probe\"") && died.contains(&format!("\"pid\":{pid}")),
        "{died}"
    );
    bus.signal(mon, libc::SIGINT);
    let m = bus.wait_exit(mon);
    assert_eq!(code(&m), 0, "{}", m.describe());
    bus.finish();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_stuck_monitor_loses_events_and_slows_nobody() {
    let mut bus = Bus::start("tool_stuck_monitor");
    let server = bus.spawn_ready("probe_server", &["probe"]);
    let mon = attached_monitor(&mut bus, &[]);
    bus.signal(mon, libc::SIGSTOP);
    // Far more events than a default queue (16 KiB) holds.
    let flood = bus.run("caller", &["cli", "flood", "probe", "1", "2000"]);
    flood.assert_success();
    let line = flood.last_line().to_string();
    assert!(line.starts_with("flood ok=2000 "), "{}", flood.describe());
    let stats = mipc(&mut bus, &["stats", "--json"]);
    let json = stats.stdout.join("");
    let lost: u64 = json
        .split("\"monitor_events_lost\":")
        .nth(1)
        .and_then(|s| s.split([',', '}']).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(lost > 0, "{json}");
    bus.signal(mon, libc::SIGCONT);
    // The first event after the queue drained says how many were lost. An event the relay
    // makes before the continued monitor has made room is lost too, so send until one says it.
    let mut told = None;
    for _ in 0..50 {
        mipc(&mut bus, &["send", "nobody", "1"]);
        told = bus.wait_line_for(
            mon,
            |l| l.contains("events lost]"),
            Some(Duration::from_millis(200)),
        );
        if told.is_some() {
            break;
        }
    }
    let told = told.expect("the monitor never said how many events it lost");
    let n: u64 = told
        .split('[')
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Sent once the queue had room again, after the relay counted `lost`: maybe more since.
    assert!(n >= lost, "{told} (relay: {lost} lost)");
    bus.signal(mon, libc::SIGTERM);
    let m = bus.wait_exit(mon);
    assert_eq!(code(&m), 0, "{}", m.describe());
    bus.kill(server);
    bus.finish();
}

/// Direct callers that follow the relay's routes page (they find it in the relay's state
/// directory): the first monitor moves its epoch on.
#[test]
fn direct_calls_are_not_missed_by_a_monitor() {
    direct_calls_seen_by_a_monitor("tool_direct", None);
}

/// Direct callers that cannot see the routes page (a state directory that does not exist): the relay sends
/// them DROP_ROUTES, which they look for before each direct send.
#[test]
fn direct_calls_without_the_routes_page_are_not_missed_by_a_monitor() {
    direct_calls_seen_by_a_monitor("tool_direct_probe", Some("/nonexistent/mipc-state"));
}

fn direct_calls_seen_by_a_monitor(label: &str, state_dir: Option<&str>) {
    let mut bus = Bus::start(label);
    let mut env = vec![("MIPC_DIRECT", "1")];
    if let Some(dir) = state_dir {
        env.push(("MIPC_STATE_DIR", dir));
    }
    let server = bus.spawn_ready("probe_server", &["probe"]);
    // A direct caller whose route exists before the monitor attaches.
    let caller = bus.spawn_stdin(
        "caller",
        &[
            "dcli", "call", "probe", "1", "1000", "before", "line", "call", "probe", "1", "1000",
            "after",
        ],
        &env,
    );
    bus.wait_line_starting(caller, "ok ");
    let mon = attached_monitor(
        &mut bus,
        &["--json", "-n", "dcli", "-n", "dcli2", "-n", "attach-probe"],
    );
    bus.write_line(caller, "go");
    bus.wait_line_starting(caller, "ok ");
    let req = bus.wait_line(mon, |l| {
        l.contains(&hex(b"after")) && l.contains("\"type\":\"sync\"")
    });
    assert!(req.contains("\"src\":\"dcli\""), "{req}");
    bus.wait_line(mon, |l| {
        l.contains("\"dst\":\"dcli\"") && l.contains("\"type\":\"answer\"")
    });
    // And a new direct caller while the monitor is attached.
    let fresh = bus.spawn_env(
        "caller",
        &["dcli2", "call", "probe", "1", "1000", "fresh"],
        &env,
    );
    bus.wait_exit(fresh).assert_success();
    bus.wait_line(mon, |l| {
        l.contains(&hex(b"fresh")) && l.contains("\"src\":\"dcli2\"")
    });
    bus.wait_line(mon, |l| {
        l.contains("\"dst\":\"dcli2\"") && l.contains("\"type\":\"answer\"")
    });
    bus.signal(mon, libc::SIGINT);
    bus.wait_exit(mon);
    bus.wait_exit(caller).assert_success();
    bus.kill(server);
    bus.finish();
}

#[test]
fn stats_and_no_relay() {
    let mut bus = Bus::start("tool_stats");
    mipc(&mut bus, &["send", "nobody", "1"]);
    let s = mipc(&mut bus, &["stats"]);
    assert_eq!(code(&s), 0, "{}", s.describe());
    assert!(
        s.stdout.iter().any(|l| l.starts_with("uptime")),
        "{}",
        s.describe()
    );
    assert!(
        s.stdout
            .iter()
            .any(|l| l.trim_start().starts_with("no such destination")
                && l.trim_end().ends_with(" 1")),
        "{}",
        s.describe()
    );
    let j = mipc(&mut bus, &["stats", "--json"]);
    assert!(
        j.stdout
            .join("")
            .contains("\"rejected.no_such_destination\":1"),
        "{}",
        j.describe()
    );
    // The relay's exit line reads the same counters, written for people.
    let end = bus.shutdown();
    assert!(
        end.relay_status.success() && end.leftovers.is_empty(),
        "{end:?}"
    );
    let line = end
        .relay_log
        .lines()
        .find(|l| l.contains("stopped"))
        .unwrap_or_else(|| panic!("{}", end.relay_log));
    assert!(
        line.contains("messages forwarded") && line.contains("1 rejected (1 no such destination)"),
        "{line}"
    );

    // No relay on the bus: one line, exit code 3, for every verb.
    for args in [
        vec!["list"],
        vec!["stats"],
        vec!["wait", "x"],
        vec!["monitor"],
        vec!["ping", "x"],
        vec!["call", "x", "1"],
    ] {
        let mut cmd = mipc_cmd(&["-k", "0x1ee7c0de"]);
        cmd.args(&args);
        let out = cmd.output().expect("run mipc");
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("no relay"), "{err}");
    }
}

/// Waits until the relay reports `n` monitors (`mipc stats`; each round trip is the pause).
fn wait_monitors(bus: &mut Bus, n: u64) {
    for _ in 0..500 {
        let s = mipc(bus, &["stats", "--json"]);
        if s.stdout.join("").contains(&format!("\"monitors\":{n},")) {
            return;
        }
    }
    panic!("the relay never reported {n} monitors");
}

/// Runs `tshark` with the shipped dissector on `file`, one `|`-separated line per packet.
fn tshark(file: &Path, fields: &[&str]) -> Vec<String> {
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/wireshark/mipc.lua");
    let mut cmd = Command::new("tshark");
    cmd.arg("-X")
        .arg(format!("lua_script:{}", lua.display()))
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark (apt-get install tshark)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn json_field<'a>(line: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let rest = line.split(&pat).nth(1).unwrap_or("");
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    rest.split(['"', ',', '}']).next().unwrap_or("")
}

#[test]
fn capture_of_the_demo_decodes_in_tshark() {
    let mut bus = Bus::start("tool_capture");
    let dir = std::env::temp_dir().join(format!("mipc-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("demo.pcapng");
    let names = ["-n", "middleware", "-n", "alarm_apm"];
    let mon = {
        let mut args = vec!["monitor", "--json"];
        args.extend_from_slice(&names);
        bus.spawn_command("mipc monitor", mipc_cmd(&args))
    };
    wait_monitors(&mut bus, 1);
    // The README demo's traffic.
    let mw = bus.spawn_ready("middleware_server", &["-v"]);
    bus.run("middleware_client", &["middleware", "mw_client"])
        .assert_success();
    let alarm = bus.spawn_ready("alarm_apm", &[]);
    bus.run("main_apm", &[]).assert_success();
    bus.kill(mw);
    bus.kill(alarm);
    // Both deaths (in either order).
    for _ in 0..2 {
        bus.wait_line(mon, |l| l.contains("\"event\":\"death\""));
    }
    bus.signal(mon, libc::SIGINT);
    let seen: Vec<String> = bus.wait_exit(mon).stdout;
    let messages: Vec<&String> = seen
        .iter()
        .filter(|l| l.contains("\"event\":\"message\""))
        .collect();
    assert!(messages.len() >= 10, "{seen:#?}");

    // Now the same traffic again, captured: the capture stops by itself after as many
    // events as the monitor saw.
    let count = seen.len().to_string();
    let mut args = vec!["capture", "-o", file.to_str().unwrap(), "-N", &count];
    args.extend_from_slice(&names);
    let cap = bus.spawn_command("mipc capture", mipc_cmd(&args));
    wait_monitors(&mut bus, 1);
    let mw = bus.spawn_ready("middleware_server", &["-v"]);
    bus.run("middleware_client", &["middleware", "mw_client"])
        .assert_success();
    let alarm = bus.spawn_ready("alarm_apm", &[]);
    bus.run("main_apm", &[]).assert_success();
    bus.kill(mw);
    bus.kill(alarm);
    let done = bus.wait_exit(cap);
    assert_eq!(code(&done), 0, "{}", done.describe());

    let rows = tshark(
        &file,
        &[
            "mipc.src",
            "mipc.dst",
            "mipc.msg_type",
            "mipc.payload",
            "mipc.kind",
            "frame.comment",
        ],
    );
    let decoded: Vec<(String, String, u64, String)> = rows
        .iter()
        .filter(|r| r.ends_with('|')) // no comment: a plain forwarded message
        .map(|r| {
            let f: Vec<&str> = r.split('|').collect();
            let api = u64::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap();
            (f[0].to_string(), f[1].to_string(), api, f[3].to_string())
        })
        .collect();
    let want: Vec<(String, String, u64, String)> = messages
        .iter()
        .map(|l| {
            (
                json_field(l, "src").to_string(),
                json_field(l, "dst").to_string(),
                json_field(l, "api").parse().unwrap(),
                json_field(l, "payload").to_string(),
            )
        })
        .collect();
    assert_eq!(decoded, want, "{rows:#?}");
    assert!(
        decoded.iter().any(|(s, d, api, p)| s == "mw_client"
            && d == "middleware"
            && *api == 2
            && !p.is_empty()),
        "{decoded:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    bus.finish();
}

#[test]
fn the_relay_tells_systemd_when_it_is_ready() {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!("mipc-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(common::default_limit()))
        .unwrap();
    let bus = Bus::start_with(
        "tool_notify",
        common::default_limit(),
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("READY=1 from mipc_main");
    assert_eq!(&buf[..n], b"READY=1");
    bus.finish();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mipc_wait_for_from_c_returns_when_a_late_daemon_registers_and_times_out_otherwise() {
    let mut bus = Bus::start("tool_wait_for_c");
    let none = bus.run("wait_for", &["nobody", "100"]);
    assert_eq!(code(&none), 1, "{}", none.describe());
    none.assert_line_starts("wait_for nobody -> MIPC_ERROR: mipc_wait_for: ");
    assert!(
        none.stdout
            .iter()
            .any(|l| l.contains("timeout (errno 110)")),
        "{}",
        none.describe()
    );
    let w = bus.spawn_ready("wait_for", &["late", "-1"]);
    let late = bus.spawn_ready("probe_server", &["late"]);
    let done = bus.wait_exit(w);
    done.assert_success()
        .assert_line("wait_for late -> MIPC_OK");
    let bad = bus.run("wait_for", &["late", "0"]);
    assert_eq!(code(&bad), 1, "timeout 0 is refused: {}", bad.describe());
    bus.kill(late);
    bus.finish();
}

#[test]
fn a_monitor_ends_when_the_relay_stops() {
    let mut bus = Bus::start("tool_relay_stops");
    let mon = attached_monitor(&mut bus, &[]);
    // SAFETY: kill with the pid of the relay this bus started (not reaped yet).
    unsafe { libc::kill(bus.relay_pid(), libc::SIGTERM) };
    let m = bus.wait_exit(mon);
    assert_eq!(code(&m), 3, "{}", m.describe());
    assert!(
        m.last_line().ends_with(" the relay is stopping"),
        "{}",
        m.describe()
    );
    assert!(m.stderr.contains("the relay stopped"), "{}", m.describe());
    bus.finish();
}

#[test]
fn a_waiting_tool_ends_when_the_relay_stops() {
    let mut bus = Bus::start_with(
        "tool_wait_relay_stops",
        common::default_limit(),
        &[("MIPC_LOG", "debug")],
    );
    let w = bus.spawn_command("mipc wait", mipc_cmd(&["wait", "never"]));
    // The relay logs the request it recorded (nothing else asks it anything here).
    bus.wait_log("answered a tool's request");
    // SAFETY: kill with the pid of the relay this bus started (not reaped yet).
    unsafe { libc::kill(bus.relay_pid(), libc::SIGTERM) };
    let done = bus.wait_exit(w);
    assert_eq!(code(&done), 3, "{}", done.describe());
    bus.finish();
}

#[test]
fn a_killed_monitor_is_detached_and_its_queue_removed() {
    let mut bus = Bus::start("tool_monitor_killed");
    let mon = attached_monitor(&mut bus, &[]);
    let pid = bus.pid(mon);
    bus.kill(mon);
    // The relay learns of the death through pidfd, detaches it and removes its queue; the
    // stats say so (0 monitors), and `finish` fails on any queue left behind.
    for _ in 0..500 {
        let s = mipc(&mut bus, &["stats", "--json"]);
        if s.stdout.join("").contains("\"monitors\":0,") {
            bus.finish();
            return;
        }
    }
    panic!("monitor {pid} was never detached");
}
