//! The command line: every verb, its options and its help text. No command code here
//! (the verbs run in `command.rs`).
//!
//! Hand-written rather than a crate: the grammar is small (short options with a value,
//! `--long`, `--long=value`, `--` ends options), and the binary goes onto firmware. How one
//! argument is split and a value read is in `cli/args.rs`.

mod args;

use args::{check_name, classify, parse_api, Arg, Parser};
pub use args::{parse_hex, UsageError};

/// Options every verb takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Global {
    /// `-k/--key`: the bus's root key (default `MIPC_ROOT_KEY` or the default key).
    pub key: Option<i32>,
    /// `-t/--timeout`, ms: how long to wait for the relay, an answer, a name, or events.
    pub timeout_ms: Option<u64>,
}

/// Which names and api ids a monitor or capture shows (empty: everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `-n NAME`: events whose source, destination or entry is one of these.
    pub names: Vec<String>,
    /// `-a API_ID`: messages of one of these api ids.
    pub apis: Vec<u32>,
}

/// Where the payload of `call`/`send` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// No payload.
    Empty,
    /// The argument's bytes.
    Text(String),
    /// `--hex`: hex digits, spaces and `:` allowed between bytes.
    Hex(String),
    /// `@FILE` (`@-` is stdin).
    File(String),
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `mipc list [-v] [--json]`.
    List {
        /// `-v`: per-entry traffic counters.
        verbose: bool,
        /// `--json`.
        json: bool,
    },
    /// `mipc ping NAME [-c COUNT] [-i MS]`.
    Ping {
        /// Destination.
        name: String,
        /// `-c`: pings to send (default 4).
        count: u32,
        /// `-i`: ms between pings (default 1000).
        interval_ms: u64,
    },
    /// `mipc call NAME API_ID [DATA]` (sync) or `mipc send ...` (async).
    Call {
        /// Destination.
        name: String,
        /// Api id.
        api: u32,
        /// Payload.
        data: Data,
        /// `--raw`: the answer's bytes as they are.
        raw: bool,
        /// `send`: no answer awaited.
        send: bool,
    },
    /// `mipc wait NAME...`.
    Wait {
        /// Every name awaited.
        names: Vec<String>,
    },
    /// `mipc monitor [filters] [-N COUNT] [--json]`.
    Monitor {
        /// What to show.
        filter: Filter,
        /// `-N`: stop after this many events.
        count: Option<u64>,
        /// `--json`: one object per line.
        json: bool,
    },
    /// `mipc capture [-o FILE|-] [filters] [-N COUNT]`.
    Capture {
        /// What to keep.
        filter: Filter,
        /// `-N`: stop after this many packets.
        count: Option<u64>,
        /// `-o`: a file, or `-` for stdout (the default).
        output: String,
    },
    /// `mipc stats [--json]`.
    Stats {
        /// `--json`.
        json: bool,
    },
    /// `--help` (of a verb, or of the tool).
    Help(Option<&'static str>),
    /// `--version`.
    Version,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Global options.
    pub global: Global,
    /// The verb.
    pub verb: Verb,
}

/// The tool's help.
pub const USAGE: &str = "usage: mipc [-k KEY] [-t MS] VERB [ARGS]

See and drive a live MIPC bus.
  list [-v] [--json]                  registered entries
  ping NAME [-c COUNT] [-i MS]        round-trip times to NAME
  call NAME API_ID [DATA]             sync call; prints the answer (--hex, @FILE, --raw)
  send NAME API_ID [DATA]             async message
  wait NAME...                        until every NAME is registered
  monitor [-n NAME] [-a API] [-N N]   one line per message and event (--json)
  capture [-o FILE|-] [filters]       the same stream as pcapng, for Wireshark
  stats [--json]                      the relay's counters

Global options (before or after the verb):
  -k, --key KEY      bus root key, decimal or 0x hex (default: $MIPC_ROOT_KEY or 0x4D495043)
  -t, --timeout MS   how long to wait (answers, names, events); see each verb's --help
  -h, --help         this text, or a verb's with 'mipc VERB --help'
  -V, --version      version

Exit codes: 0 done, 1 failed, 2 bad usage, 3 no relay on the bus, 4 timed out,
5 the destination failed (no such entry, died, busy, deadlock).";

const HELP_LIST: &str = "usage: mipc list [-v] [--json]

Prints every registered entry: name, pid, thread, queue id, messages and bytes waiting in
its queue, legacy or greeted (mipc-rs), registered since. The list is one snapshot of the
relay's table, however large.
  -v, --verbose   add the relay's traffic counters per entry (messages and bytes in/out,
                  messages the relay holds for it)
  --json          one JSON object: {\"entries\": [...]}";

const HELP_PING: &str = "usage: mipc ping NAME [-c COUNT] [-i MS]

Sends PING requests to NAME and prints each round-trip time, like ping(8).
  -c, --count N      pings to send (default 4)
  -i, --interval MS  pause between pings (default 1000)
  -t, --timeout MS   wait for each answer (default 1000)
Exit code 0 when every ping was answered, 1 when some were lost, 5 when NAME failed.";

const HELP_CALL: &str = "usage: mipc call NAME API_ID [DATA] [--hex] [--raw]

Sends a sync request with API_ID (decimal or 0x hex) to NAME and prints its answer as a
hex dump with text.
  DATA          the payload: the argument's bytes as text, '@FILE' a file's bytes ('@-' stdin)
  --hex         DATA is hex bytes ('01 02 ff', '0102ff' or '01:02:ff')
  --raw         write the answer's bytes to stdout as they are (for scripts)
  -t, --timeout MS  wait for the answer (default 5000)";

const HELP_SEND: &str = "usage: mipc send NAME API_ID [DATA] [--hex]

Sends an async message with API_ID (decimal or 0x hex) to NAME; no answer is awaited.
  DATA          the payload: the argument's bytes as text, '@FILE' a file's bytes ('@-' stdin)
  --hex         DATA is hex bytes ('01 02 ff', '0102ff' or '01:02:ff')";

const HELP_WAIT: &str = "usage: mipc wait NAME... [-t MS]

Returns once every NAME is registered with the relay (for boot-order races).
  -t, --timeout MS  give up after MS (default: wait forever); exit code 4 then";

const HELP_MONITOR: &str =
    "usage: mipc monitor [-n NAME]... [-a API_ID]... [-N COUNT] [-t MS] [--json]

Prints one line per message the relay forwards and per event (registration, unregistration,
death, rejected message, error answer), flushed per line. Times are UTC. A sync call's
answer shows the call's latency. A monitor that cannot keep up loses events and says how many.
While a monitor is attached the direct path (MIPC_DIRECT=1) is suspended, so no call is missed.
  -n, --name NAME    only events from, to or about NAME (repeat for several)
  -a, --api API_ID   only messages of API_ID (repeat for several)
  -N, --count N      stop after N events
  -t, --timeout MS   stop after MS
  --json             one JSON object per line";

const HELP_CAPTURE: &str =
    "usage: mipc capture [-o FILE|-] [-n NAME]... [-a API_ID]... [-N COUNT] [-t MS]

Writes the monitor's stream as pcapng (link type 252, exported PDUs for the 'mipc'
dissector): open it with wireshark -X lua_script:mipc.lua (packaging/wireshark/mipc.lua).
Refuses to write to a terminal. Stop it with Ctrl-C, -N or -t.
  -o, --output FILE  write to FILE ('-', the default, is stdout)
  -n, -a, -N, -t     as for monitor";

const HELP_STATS: &str = "usage: mipc stats [--json]

Prints the relay's counters: messages forwarded, rejected (by reason), error answers,
entries, monitors, messages held per destination, uptime.
  --json   one JSON object";

/// The help text of `verb`, or the tool's.
pub fn help(verb: Option<&str>) -> &'static str {
    match verb {
        Some("list") => HELP_LIST,
        Some("ping") => HELP_PING,
        Some("call") => HELP_CALL,
        Some("send") => HELP_SEND,
        Some("wait") => HELP_WAIT,
        Some("monitor") => HELP_MONITOR,
        Some("capture") => HELP_CAPTURE,
        Some("stats") => HELP_STATS,
        _ => USAGE,
    }
}

const VERBS: [&str; 8] = [
    "list", "ping", "call", "send", "wait", "monitor", "capture", "stats",
];

/// Parses the arguments after the program name.
///
/// # Errors
/// [`UsageError`] for an unknown verb or option, a missing or bad value, or missing operands.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let mut p = Parser {
        args,
        pos: 0,
        verb: None,
    };
    let mut global = Global::default();
    let mut operands: Vec<&str> = Vec::new();
    let mut verbose = false;
    let mut json = false;
    let mut raw = false;
    let mut hex = false;
    let mut count: Option<u64> = None;
    let mut interval_ms: Option<u64> = None;
    let mut output: Option<String> = None;
    let mut filter = Filter::default();
    let mut only_operands = false;
    while p.pos < args.len() {
        let a = args[p.pos].as_str();
        p.pos += 1;
        let arg = if only_operands {
            Arg::Plain(a)
        } else {
            classify(a)
        };
        let (opt, inline) = match arg {
            Arg::Plain("--") if !only_operands => {
                only_operands = true;
                continue;
            }
            Arg::Plain(s) => {
                if p.verb.is_none() {
                    match VERBS.iter().find(|v| **v == s) {
                        Some(v) => p.verb = Some(v),
                        None if s == "help" => {
                            let topic = args
                                .get(p.pos)
                                .and_then(|t| VERBS.iter().find(|v| **v == t));
                            return Ok(Command {
                                global,
                                verb: Verb::Help(topic.copied()),
                            });
                        }
                        None => return Err(p.err(format!("unknown verb {s:?}"))),
                    }
                } else {
                    operands.push(s);
                }
                continue;
            }
            Arg::Opt(o, v) => (o, v),
        };
        let verb = p.verb.unwrap_or("");
        // Options that take no value must not have one glued on (`-vx`).
        let flag = |p: &Parser<'_>, set: &mut bool| -> Result<(), UsageError> {
            if inline.is_some() {
                return Err(p.err(format!("{opt} takes no value")));
            }
            *set = true;
            Ok(())
        };
        match opt {
            "-h" | "--help" => {
                return Ok(Command {
                    global,
                    verb: Verb::Help(p.verb),
                })
            }
            "-V" | "--version" => {
                return Ok(Command {
                    global,
                    verb: Verb::Version,
                })
            }
            "-k" | "--key" => {
                let v = p.value(opt, inline)?;
                global.key = Some(
                    mipc::config::parse_key(v).ok_or_else(|| p.err(format!("bad key {v:?}")))?,
                );
            }
            "-t" | "--timeout" => global.timeout_ms = Some(p.number(opt, inline)?),
            "-v" | "--verbose" if verb == "list" => flag(&p, &mut verbose)?,
            "--json" if matches!(verb, "list" | "monitor" | "stats") => flag(&p, &mut json)?,
            "--raw" if verb == "call" => flag(&p, &mut raw)?,
            "--hex" if matches!(verb, "call" | "send") => flag(&p, &mut hex)?,
            "-c" | "--count" if verb == "ping" => count = Some(p.number(opt, inline)?),
            "-i" | "--interval" if verb == "ping" => interval_ms = Some(p.number(opt, inline)?),
            "-N" | "--count" if matches!(verb, "monitor" | "capture") => {
                count = Some(p.number(opt, inline)?)
            }
            "-n" | "--name" if matches!(verb, "monitor" | "capture") => {
                let v = p.value(opt, inline)?;
                check_name(&p, v)?;
                filter.names.push(v.to_string());
            }
            "-a" | "--api" if matches!(verb, "monitor" | "capture") => {
                let v = p.value(opt, inline)?;
                filter
                    .apis
                    .push(parse_api(v).ok_or_else(|| p.err(format!("bad api id {v:?}")))?);
            }
            "-o" | "--output" if verb == "capture" => {
                output = Some(p.value(opt, inline)?.to_string())
            }
            _ if p.verb.is_none() => return Err(p.err(format!("unknown option {opt:?}"))),
            _ => return Err(p.err(format!("mipc {verb}: unknown option {opt:?}"))),
        }
    }
    let Some(verb) = p.verb else {
        return Err(p.err("no verb given".to_string()));
    };
    let operands_at_most = |p: &Parser<'_>, n: usize| {
        if operands.len() > n {
            Err(p.err(format!("unexpected argument {:?}", operands[n])))
        } else {
            Ok(())
        }
    };
    let verb = match verb {
        "list" => {
            operands_at_most(&p, 0)?;
            Verb::List { verbose, json }
        }
        "stats" => {
            operands_at_most(&p, 0)?;
            Verb::Stats { json }
        }
        "ping" => {
            operands_at_most(&p, 1)?;
            let name = operands
                .first()
                .ok_or_else(|| p.err("ping needs a NAME".into()))?;
            check_name(&p, name)?;
            let count = match count {
                Some(0) => return Err(p.err("-c must be at least 1".into())),
                Some(c) => u32::try_from(c).map_err(|_| p.err("-c is too large".into()))?,
                None => 4,
            };
            Verb::Ping {
                name: name.to_string(),
                count,
                interval_ms: interval_ms.unwrap_or(1000),
            }
        }
        "call" | "send" => {
            operands_at_most(&p, 3)?;
            if operands.len() < 2 {
                return Err(p.err(format!("{verb} needs NAME and API_ID")));
            }
            check_name(&p, operands[0])?;
            let api = parse_api(operands[1]).ok_or_else(|| {
                p.err(format!(
                    "bad api id {:?} (1 to 0x7FFFFEFF, decimal or 0x hex)",
                    operands[1]
                ))
            })?;
            let data = match operands.get(2) {
                None => Data::Empty,
                Some(d) if hex => Data::Hex(d.to_string()),
                Some(d) => match d.strip_prefix('@') {
                    Some(f) => Data::File(f.to_string()),
                    None => Data::Text(d.to_string()),
                },
            };
            if let Data::Hex(h) = &data {
                if parse_hex(h).is_none() {
                    return Err(p.err(format!("bad hex bytes {h:?}")));
                }
            }
            Verb::Call {
                name: operands[0].to_string(),
                api,
                data,
                raw,
                send: verb == "send",
            }
        }
        "wait" => {
            if operands.is_empty() {
                return Err(p.err("wait needs at least one NAME".into()));
            }
            for n in &operands {
                check_name(&p, n)?;
            }
            Verb::Wait {
                names: operands.iter().map(|s| s.to_string()).collect(),
            }
        }
        "monitor" => {
            operands_at_most(&p, 0)?;
            Verb::Monitor {
                filter,
                count,
                json,
            }
        }
        "capture" => {
            operands_at_most(&p, 0)?;
            Verb::Capture {
                filter,
                count,
                output: output.unwrap_or_else(|| "-".to_string()),
            }
        }
        _ => unreachable!("verb comes from VERBS"),
    };
    Ok(Command { global, verb })
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
