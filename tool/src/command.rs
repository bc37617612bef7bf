//! The verbs: each opens the bus through the library's safe API, does its work, and turns a
//! failure into an exit code and one line for stderr. ping, call and send act as an entry,
//! so they use the native Rust API ([`mipc::Endpoint`]); list, stats, wait and monitor
//! register nothing and talk to the relay's control channel ([`mipc::bus`]).

use crate::cli::{self, Command, Data, Filter, Verb};
use crate::events::{self, capture_packet, Tracker};
use crate::hexdump;
use crate::json::{self, Object};
use crate::pcapng;
use crate::tables::{entry_json, list_text, stats_text};
use mipc::bus::{Closer, ControlLink};
use mipc::wire::tool::{counter_name, EventKind};
use mipc::{Endpoint, MipcError, MipcName, Timeout};
use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit codes (README table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The verb failed (a lost ping, a bad answer, an I/O error).
    Failed = 1,
    /// The command line makes no sense.
    Usage = 2,
    /// No relay serves the chosen bus.
    NoRelay = 3,
    /// The timeout passed.
    Timeout = 4,
    /// The destination failed: no such entry, died, busy, deadlock.
    Destination = 5,
}

/// Why a verb failed: its exit code and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What to print on stderr (empty: nothing).
    pub message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

type Res = Result<(), Failure>;

/// The exit code and message of a library error, `what` naming the operation.
fn fail(what: &str, e: MipcError) -> Failure {
    let exit = match e {
        MipcError::RelayUnavailable => Exit::NoRelay,
        MipcError::Timeout => Exit::Timeout,
        MipcError::NoSuchDestination
        | MipcError::PeerDied
        | MipcError::DestinationBusy
        | MipcError::Deadlock
        | MipcError::NotServed => Exit::Destination,
        _ => Exit::Failed,
    };
    let message = match e {
        MipcError::RelayUnavailable => format!(
            "no relay on bus {:#x} (is mipc_main running with this key?)",
            mipc::config::root_key()
        ),
        e => format!("{what}: {e}"),
    };
    Failure::new(exit, message)
}

fn io_fail(what: &str, e: std::io::Error) -> Failure {
    Failure::new(Exit::Failed, format!("{what}: {e}"))
}

/// Runs a parsed command.
///
/// # Errors
/// [`Failure`] with the exit code and message to print.
pub fn run(cmd: Command) -> Res {
    if let Some(key) = cmd.global.key {
        // Before any thread starts: the library reads the key from the environment.
        std::env::set_var("MIPC_ROOT_KEY", key.to_string());
    }
    let timeout = cmd.global.timeout_ms.map(Duration::from_millis);
    match cmd.verb {
        Verb::Help(v) => {
            println!("{}", cli::help(v));
            Ok(())
        }
        Verb::Version => {
            println!("mipc {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Verb::List { verbose, json } => list(timeout, verbose, json),
        Verb::Stats { json } => stats(timeout, json),
        Verb::Wait { names } => wait(timeout, &names),
        Verb::Ping {
            name,
            count,
            interval_ms,
        } => ping(timeout, &name, count, interval_ms),
        Verb::Call {
            name,
            api,
            data,
            raw,
            send,
        } => call(timeout, &name, api, &data, raw, send),
        Verb::Monitor {
            filter,
            count,
            json,
        } => monitor(timeout, &filter, count, Sink::Lines { json }),
        Verb::Capture {
            filter,
            count,
            output,
        } => {
            let out: Box<dyn Write> = if output == "-" {
                if std::io::stdout().is_terminal() {
                    return Err(Failure::new(
                        Exit::Usage,
                        "capture: refusing to write pcapng to a terminal (use -o FILE or a pipe)",
                    ));
                }
                Box::new(std::io::stdout().lock())
            } else {
                let f = std::fs::File::create(&output)
                    .map_err(|e| io_fail(&format!("capture: {output}"), e))?;
                if f.is_terminal() {
                    return Err(Failure::new(
                        Exit::Usage,
                        "capture: refusing to write pcapng to a terminal",
                    ));
                }
                Box::new(std::io::BufWriter::new(f))
            };
            let w = pcapng::Writer::new(out).map_err(|e| io_fail("capture", e))?;
            monitor(timeout, &filter, count, Sink::Pcap(w))
        }
    }
}

fn open() -> Result<ControlLink, Failure> {
    ControlLink::open().map_err(|e| fail("open", e))
}

/// What the signal thread needs: the queue to remove, and a flag for the verb.
type Stopper = (Arc<Mutex<Option<Closer>>>, Arc<AtomicBool>);

/// SIGINT/SIGTERM end a blocking verb cleanly: a thread takes them and removes the verb's
/// queue, which ends its wait; the flag tells the verb it was stopped.
fn stop_on_signals() -> Result<Stopper, Failure> {
    let signals = mipc::os::signals::StopSignals::block()
        .map_err(|e| io_fail("blocking SIGINT/SIGTERM", e))?;
    let closer: Arc<Mutex<Option<Closer>>> = Arc::new(Mutex::new(None));
    let stopped = Arc::new(AtomicBool::new(false));
    let (c, s) = (closer.clone(), stopped.clone());
    std::thread::Builder::new()
        .name("mipc-signals".into())
        .spawn(move || {
            signals.wait();
            s.store(true, Ordering::SeqCst);
            if let Ok(Some(closer)) = c.lock().map(|g| *g) {
                closer.close();
            }
        })
        .map_err(|e| io_fail("starting the signal thread", e))?;
    Ok((closer, stopped))
}

// ---- list ----

fn list(timeout: Option<Duration>, verbose: bool, json: bool) -> Res {
    let (closer, _) = stop_on_signals()?;
    let mut link = open()?;
    *closer
        .lock()
        .map_err(|_| Failure::new(Exit::Failed, "lock"))? = Some(link.closer());
    let mut entries = link.list(timeout).map_err(|e| fail("list", e))?;
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut out = std::io::stdout().lock();
    let text = if json {
        let items = entries.iter().map(|e| entry_json(e, verbose));
        Object::new().raw("entries", &json::array(items)).end() + "\n"
    } else {
        list_text(&entries, verbose)
    };
    out.write_all(text.as_bytes())
        .map_err(|e| io_fail("stdout", e))
}

// ---- stats ----

fn stats(timeout: Option<Duration>, json: bool) -> Res {
    let (closer, _) = stop_on_signals()?;
    let mut link = open()?;
    *closer
        .lock()
        .map_err(|_| Failure::new(Exit::Failed, "lock"))? = Some(link.closer());
    let r = link.stats(timeout).map_err(|e| fail("stats", e))?;
    let text = if json {
        let mut o = Object::new();
        for (id, v) in &r.counters {
            o = o.num(&counter_name(*id), *v);
        }
        let backlog = r.backlog.iter().map(|(n, c)| {
            Object::new()
                .str("name", &n.to_string())
                .num("held", *c)
                .end()
        });
        o.raw("backlog", &json::array(backlog)).end() + "\n"
    } else {
        stats_text(&r)
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| io_fail("stdout", e))
}

// ---- wait ----

fn wait(timeout: Option<Duration>, names: &[String]) -> Res {
    let (closer, stopped) = stop_on_signals()?;
    let names: Vec<MipcName> = names
        .iter()
        .map(|n| MipcName::new(n.as_bytes()).expect("checked by the parser"))
        .collect();
    let mut link = open()?;
    *closer
        .lock()
        .map_err(|_| Failure::new(Exit::Failed, "lock"))? = Some(link.closer());
    match link.wait_for(&names, timeout) {
        Ok(()) => Ok(()),
        Err(_) if stopped.load(Ordering::SeqCst) => Err(Failure::new(Exit::Failed, "")),
        Err(MipcError::Timeout) => Err(Failure::new(
            Exit::Timeout,
            format!(
                "wait: timed out after {} ms",
                timeout.map_or(0, |t| t.as_millis())
            ),
        )),
        Err(e) => Err(fail("wait", e)),
    }
}

// ---- ping, call, send: through an entry of our own, on the native Rust API ----

/// The exit code and message of an [`mipc::Error`] (the native API's errors), as [`fail`].
fn ep_fail(what: &str, e: mipc::Error) -> Failure {
    use mipc::Error as E;
    let exit = match e {
        E::RelayUnavailable => Exit::NoRelay,
        E::Timeout => Exit::Timeout,
        E::NoSuchDestination | E::PeerDied | E::DestinationBusy | E::Deadlock | E::NotServed => {
            Exit::Destination
        }
        _ => Exit::Failed,
    };
    let message = match e {
        E::RelayUnavailable => format!(
            "no relay on bus {:#x} (is mipc_main running with this key?)",
            mipc::config::root_key()
        ),
        e => format!("{what}: {e}"),
    };
    Failure::new(exit, message)
}

/// Registers an [`Endpoint`] named after this process (`mipc-PID`) for ping/call/send; it
/// unregisters when dropped.
fn own_endpoint() -> Result<Endpoint, Failure> {
    // Fail fast, in one line, when there is no relay (registering would wait for one).
    drop(open()?);
    Endpoint::new(&format!("mipc-{}", std::process::id())).map_err(|e| ep_fail("register", e))
}

/// A call's wait: `-t MS` or `default_ms`, at least 1 ms (`-t 0` is the shortest wait).
fn call_timeout(timeout: Option<Duration>, default_ms: u64) -> Timeout {
    Timeout::After(
        timeout
            .unwrap_or(Duration::from_millis(default_ms))
            .max(Duration::from_millis(1)),
    )
}

fn ping(timeout: Option<Duration>, name: &str, count: u32, interval_ms: u64) -> Res {
    let ep = own_endpoint()?;
    let wait = call_timeout(timeout, 1000);
    let mut times: Vec<f64> = Vec::new();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "PING {name}");
    for seq in 1..=count {
        let t0 = Instant::now();
        match ep.ping(name, wait) {
            Ok(()) => {
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                times.push(ms);
                let _ = writeln!(out, "answer from {name}: seq={seq} time={ms:.3} ms");
            }
            Err(mipc::Error::Timeout) => {
                let _ = writeln!(out, "no answer from {name}: seq={seq} timed out");
            }
            Err(e) => return Err(ep_fail(&format!("ping {name}"), e)),
        }
        let _ = out.flush();
        if seq < count {
            std::thread::sleep(Duration::from_millis(interval_ms));
        }
    }
    let lost = count as usize - times.len();
    let _ = writeln!(
        out,
        "--- {name} ping statistics ---\n{count} sent, {} answered, {}% lost",
        times.len(),
        lost * 100 / count as usize
    );
    if !times.is_empty() {
        let min = times.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = times.iter().cloned().fold(0.0, f64::max);
        let avg = times.iter().sum::<f64>() / times.len() as f64;
        let _ = writeln!(
            out,
            "round-trip min/avg/max = {min:.3}/{avg:.3}/{max:.3} ms"
        );
    }
    if lost > 0 {
        Err(Failure::new(Exit::Failed, ""))
    } else {
        Ok(())
    }
}

fn payload(data: &Data) -> Result<Vec<u8>, Failure> {
    let bytes = match data {
        Data::Empty => Vec::new(),
        Data::Text(t) => t.as_bytes().to_vec(),
        Data::Hex(h) => cli::parse_hex(h).expect("checked by the parser"),
        Data::File(f) if f == "-" => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| io_fail("stdin", e))?;
            b
        }
        Data::File(f) => std::fs::read(f).map_err(|e| io_fail(f, e))?,
    };
    if bytes.len() > mipc::wire::MIPC_MSG_MAX_LEN {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "payload of {} bytes is over 2048 (MIPC_MSG_MAX_LEN)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

fn call(
    timeout: Option<Duration>,
    name: &str,
    api: u32,
    data: &Data,
    raw: bool,
    send: bool,
) -> Res {
    let input = payload(data)?;
    let ep = own_endpoint()?;
    if send {
        return ep.send(name, api, &input).map_err(|e| ep_fail("send", e));
    }
    let wait = call_timeout(timeout, 5000);
    let answer = ep
        .call(name, api, &input, wait)
        .map_err(|e| ep_fail(&format!("call {name} {api:#x}"), e))?;
    let mut out = std::io::stdout().lock();
    if raw {
        out.write_all(&answer)
    } else if answer.is_empty() {
        writeln!(out, "(empty answer)")
    } else {
        out.write_all(hexdump::hexdump(&answer).as_bytes())
    }
    .map_err(|e| io_fail("stdout", e))
}

// ---- monitor and capture ----

enum Sink {
    Lines { json: bool },
    Pcap(pcapng::Writer<Box<dyn Write>>),
}

fn monitor(timeout: Option<Duration>, filter: &Filter, count: Option<u64>, mut sink: Sink) -> Res {
    let (closer, stopped) = stop_on_signals()?;
    let link = open()?;
    let mut mon = link.monitor(None).map_err(|e| fail("monitor", e))?;
    *closer
        .lock()
        .map_err(|_| Failure::new(Exit::Failed, "lock"))? = Some(mon.closer());
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut tracker = Tracker::default();
    let mut seen = 0u64;
    let mut record = Vec::new();
    let stdout = std::io::stdout();
    loop {
        if count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
        let ev = match mon.next(deadline) {
            Ok(Some(ev)) => ev,
            Ok(None) => return Ok(()),
            Err(_) if stopped.load(Ordering::SeqCst) => return Ok(()),
            Err(e) => return Err(fail("monitor", e)),
        };
        let shown = tracker.show(&ev);
        let stopping = shown.kind == EventKind::RelayStopping;
        if !stopping && !events::matches(filter, &shown) {
            continue;
        }
        seen += 1;
        let written = match &mut sink {
            Sink::Lines { json } => {
                let line = if *json {
                    events::json_line(&shown)
                } else {
                    events::text_line(&shown)
                };
                let mut out = stdout.lock();
                writeln!(out, "{line}").and_then(|_| out.flush())
            }
            Sink::Pcap(w) => {
                record.clear();
                ev.encode(&mut record);
                let (pkt, comment) = capture_packet(&shown, &record);
                w.packet(shown.time_ns, &pkt, comment.as_deref())
                    .and_then(|_| w.flush())
            }
        };
        if stopping {
            // The relay is gone: say so once and end (exit code 3, as with no relay).
            let _ = written;
            return Err(Failure::new(Exit::NoRelay, "the relay stopped"));
        }
        if let Err(e) = written {
            // A closed pipe (| head) ends the monitor quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(io_fail("output", e));
        }
    }
}
