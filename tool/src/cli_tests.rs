//! Tests of the command line.

use super::*;

fn parse_str(s: &str) -> Result<Command, UsageError> {
    let args: Vec<String> = s.split_whitespace().map(String::from).collect();
    parse(&args)
}

#[test]
fn globals_go_before_or_after_the_verb() {
    let a = parse_str("-k 0x1234 -t 50 list -v --json").unwrap();
    let b = parse_str("list --key=0x1234 -v --timeout=50 --json").unwrap();
    let c = parse_str("list -k4660 -t50 --json --verbose").unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a.global.key, Some(0x1234));
    assert_eq!(a.global.timeout_ms, Some(50));
    assert_eq!(
        a.verb,
        Verb::List {
            verbose: true,
            json: true
        }
    );
}

#[test]
fn call_reads_text_hex_and_files() {
    let c = parse_str("call omci 0x101 hello").unwrap();
    assert_eq!(
        c.verb,
        Verb::Call {
            name: "omci".into(),
            api: 0x101,
            data: Data::Text("hello".into()),
            raw: false,
            send: false
        }
    );
    let c = parse_str("send omci 257 --hex 0102ff").unwrap();
    assert!(matches!(
        c.verb,
        Verb::Call {
            api: 257,
            data: Data::Hex(_),
            send: true,
            ..
        }
    ));
    let c = parse_str("call omci 1 @/tmp/x --raw").unwrap();
    assert!(
        matches!(c.verb, Verb::Call { data: Data::File(ref f), raw: true, .. } if f == "/tmp/x")
    );
    assert_eq!(parse_hex("01 02:ff-0A"), Some(vec![1, 2, 0xff, 0x0a]));
    assert_eq!(parse_hex("012"), None);
    assert_eq!(parse_hex("zz"), None);
    assert!(parse_str("call omci 1 --hex 0g").is_err());
    assert!(parse_str("call omci 0").is_err());
    assert!(parse_str("call omci 0x7FFFFF00").is_err());
    assert!(parse_str("call omci").is_err());
    assert!(parse_str("send omci 1 a b").is_err());
    assert!(parse_str("send omci 1 --raw").is_err(), "--raw is call's");
}

#[test]
fn monitor_filters_repeat() {
    let c = parse_str("monitor -n a -n b -a 5 -a 0x10 -N 3 -t 100 --json").unwrap();
    assert_eq!(
        c.verb,
        Verb::Monitor {
            filter: Filter {
                names: vec!["a".into(), "b".into()],
                apis: vec![5, 16]
            },
            count: Some(3),
            json: true
        }
    );
    assert_eq!(c.global.timeout_ms, Some(100));
    let c = parse_str("capture -o out.pcapng -n a").unwrap();
    assert!(matches!(c.verb, Verb::Capture { ref output, .. } if output == "out.pcapng"));
    assert!(parse_str("capture --json").is_err());
}

#[test]
fn ping_wait_and_help() {
    assert_eq!(
        parse_str("ping omci -c 3 -i 10").unwrap().verb,
        Verb::Ping {
            name: "omci".into(),
            count: 3,
            interval_ms: 10
        }
    );
    assert!(parse_str("ping omci -c 0").is_err());
    assert_eq!(
        parse_str("wait a b -t 10").unwrap().verb,
        Verb::Wait {
            names: vec!["a".into(), "b".into()]
        }
    );
    assert!(parse_str("wait").is_err());
    assert_eq!(
        parse_str("monitor --help").unwrap().verb,
        Verb::Help(Some("monitor"))
    );
    assert_eq!(
        parse_str("help stats").unwrap().verb,
        Verb::Help(Some("stats"))
    );
    assert_eq!(parse_str("--help").unwrap().verb, Verb::Help(None));
    for v in VERBS {
        assert!(help(Some(v)).starts_with(&format!("usage: mipc {v}")));
    }
}

#[test]
fn mistakes_are_usage_errors_naming_the_verb() {
    let e = parse_str("list -x").unwrap_err();
    assert_eq!(e.verb, Some("list"));
    assert!(e.to_string().contains("mipc list --help"));
    assert!(parse_str("").is_err());
    assert!(parse_str("frobnicate").is_err());
    assert!(parse_str("list -k").is_err());
    assert!(parse_str("list -k nokey").is_err());
    assert!(parse_str("list -vx").is_err());
    assert!(parse_str("ping -- -dash-name").is_ok());
    assert!(parse_str("ping this_name_is_far_too_long_for_mipc_32").is_err());
}
