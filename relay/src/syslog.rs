//! `mipc_main --syslog`: log lines go to the system logger (`/dev/log`, RFC 3164 framing:
//! `<PRI>mipc_main[PID]: text`) instead of stderr. A Unix datagram per line; no libc
//! `syslog(3)`, so the relay stays free of unsafe code.

use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

/// Facility `daemon` (3), as procd and systemd expect of a system daemon.
const FACILITY_DAEMON: u8 = 3;

static SOCKET: OnceLock<Option<UnixDatagram>> = OnceLock::new();

/// Connects to `/dev/log`; returns whether the logger is reachable. Later lines go there.
pub fn open() -> bool {
    SOCKET
        .get_or_init(|| {
            let s = UnixDatagram::unbound().ok()?;
            s.connect("/dev/log").ok()?;
            Some(s)
        })
        .is_some()
}

/// Whether lines go to syslog.
pub fn active() -> bool {
    matches!(SOCKET.get(), Some(Some(_)))
}

/// The datagram of one line at `severity` (0 emergency ... 7 debug).
pub fn frame(severity: u8, text: &str) -> String {
    let pri = FACILITY_DAEMON * 8 + severity.min(7);
    format!("<{pri}>mipc_main[{}]: {text}", std::process::id())
}

/// Sends one line; falls back to stderr when the logger went away.
pub fn send(severity: u8, text: &str) {
    let line = frame(severity, text);
    let sent = match SOCKET.get() {
        Some(Some(s)) => s.send(line.as_bytes()).is_ok(),
        _ => false,
    };
    if !sent {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            format!("mipc_main: {text}\n").as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_are_rfc3164() {
        let f = super::frame(6, "ready");
        assert!(f.starts_with("<30>mipc_main["), "{f}");
        assert!(f.ends_with("]: ready"));
        assert!(super::frame(9, "x").starts_with("<31>"));
    }
}
