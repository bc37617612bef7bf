//! The answer printer: a hex dump with the printable bytes beside it (`hexdump -C` layout).

use std::fmt::Write;

/// Writes `bytes` as lines of 16: offset, hex in two groups of 8, then `|text|`.
pub fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", i * 16);
        for j in 0..16 {
            if j == 8 {
                out.push(' ');
            }
            match line.get(j) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        out.extend(line.iter().map(|&b| printable(b)));
        out.push_str("|\n");
    }
    out
}

/// The byte as itself when it is printable ASCII, else `.`.
pub fn printable(b: u8) -> char {
    if (0x20..0x7f).contains(&b) {
        b as char
    } else {
        '.'
    }
}

/// Hex digits of `bytes`, no separators (JSON and short previews).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A one-line preview: the text when the bytes are printable (a trailing NUL allowed),
/// else the first bytes in hex.
pub fn preview(bytes: &[u8], max: usize) -> String {
    let text = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if !text.is_empty() && text.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        let shown: String = text.iter().take(max).map(|&b| b as char).collect();
        let more = if text.len() > max { "..." } else { "" };
        format!("{shown:?}{more}")
    } else {
        let more = if bytes.len() > max / 2 { "..." } else { "" };
        format!("{}{more}", hex(&bytes[..bytes.len().min(max / 2)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_matches_hexdump_c() {
        let d = hexdump(b"Hello, MIPC!\x00\x01\x02\x03\xffxyz");
        assert_eq!(
            d,
            "00000000  48 65 6c 6c 6f 2c 20 4d  49 50 43 21 00 01 02 03  |Hello, MIPC!....|\n\
             00000010  ff 78 79 7a                                       |.xyz|\n"
        );
        assert_eq!(hexdump(b""), "");
    }

    #[test]
    fn previews() {
        assert_eq!(preview(b"ping\0", 16), "\"ping\"");
        assert_eq!(preview(b"\x01\x02", 16), "0102");
        assert_eq!(preview(&[0u8; 20], 8), "00000000...");
    }
}
