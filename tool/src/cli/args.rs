//! The command line's pieces below the grammar: an argument split into option and value,
//! the cursor over the arguments, values read as numbers, api ids, hex bytes and names, and
//! the usage error they all report. The verbs and their options are in `cli.rs`.

use std::fmt;

/// A command line that makes no sense; printed with a hint and exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// The verb concerned, for the `--help` hint.
    pub verb: Option<&'static str>,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verb {
            Some(v) => write!(f, "{}\nTry 'mipc {v} --help'.", self.message),
            None => write!(f, "{}\nTry 'mipc --help'.", self.message),
        }
    }
}

/// Parses an api id: decimal or `0x` hex, 1 to `0x7FFFFEFF`.
pub fn parse_api(s: &str) -> Option<u32> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok()?,
        None => s.parse::<u32>().ok()?,
    };
    (1..=mipc::wire::MIPC_API_ID_MAX).contains(&v).then_some(v)
}

/// Reads hex bytes: pairs of digits, optionally separated by spaces, `:` or `-`.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'-' | b'\t' | b'\n'))
        .collect();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

/// One argument, split into option and inline value (`--key=1`, `-k1`).
pub(super) enum Arg<'a> {
    Opt(&'a str, Option<&'a str>),
    Plain(&'a str),
}

pub(super) fn classify(a: &str) -> Arg<'_> {
    if a == "--" {
        Arg::Plain(a)
    } else if let Some(long) = a.strip_prefix("--") {
        match long.split_once('=') {
            Some((k, v)) => Arg::Opt(&a[..k.len() + 2], Some(v)),
            None => Arg::Opt(a, None),
        }
    } else if a.len() > 2 && a.starts_with('-') && !a[1..].starts_with(|c: char| c.is_ascii_digit())
    {
        Arg::Opt(&a[..2], Some(&a[2..]))
    } else if a.len() == 2 && a.starts_with('-') {
        Arg::Opt(a, None)
    } else {
        Arg::Plain(a)
    }
}

pub(super) struct Parser<'a> {
    pub(super) args: &'a [String],
    pub(super) pos: usize,
    pub(super) verb: Option<&'static str>,
}

impl<'a> Parser<'a> {
    pub(super) fn err(&self, message: String) -> UsageError {
        UsageError {
            message,
            verb: self.verb,
        }
    }

    pub(super) fn value(
        &mut self,
        opt: &str,
        inline: Option<&'a str>,
    ) -> Result<&'a str, UsageError> {
        if let Some(v) = inline {
            return Ok(v);
        }
        let v = self.args.get(self.pos).map(String::as_str);
        self.pos += 1;
        v.ok_or_else(|| self.err(format!("{opt} needs a value")))
    }

    pub(super) fn number<T: std::str::FromStr>(
        &mut self,
        opt: &str,
        inline: Option<&'a str>,
    ) -> Result<T, UsageError> {
        let v = self.value(opt, inline)?;
        v.parse()
            .map_err(|_| self.err(format!("{opt}: not a number: {v:?}")))
    }
}

pub(super) fn check_name(p: &Parser<'_>, name: &str) -> Result<(), UsageError> {
    mipc::MipcName::new(name.as_bytes())
        .map(|_| ())
        .map_err(|e| p.err(format!("bad name {name:?}: {e}")))
}
