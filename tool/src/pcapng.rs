//! A pcapng writer for `mipc capture`: one section header, one interface of link type
//! `LINKTYPE_WIRESHARK_UPPER_PDU` (252), and an enhanced packet block per message.
//!
//! Each packet starts with Wireshark's exported-PDU tags naming the dissector (`mipc`,
//! `packaging/wireshark/mipc.lua`), then the MIPC message's `mtext` as the relay saw it.
//! So Wireshark picks the dissector by itself: no per-user link-type table to edit.
//! Blocks are written in the machine's byte order (the section header's magic says which);
//! times are nanoseconds since the epoch (`if_tsresol` 9).

use std::io::{self, Write};

/// Wireshark's "upper PDU" link type: packets that start with exported-PDU tags.
pub const LINKTYPE_WIRESHARK_UPPER_PDU: u16 = 252;
/// Exported-PDU tag: the name of the dissector to call.
pub const EXP_PDU_TAG_DISSECTOR_NAME: u16 = 12;
/// Exported-PDU tag: end of the tags.
pub const EXP_PDU_TAG_END_OF_OPT: u16 = 0;
/// The dissector the Lua script registers.
pub const DISSECTOR: &str = "mipc";

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends one option (code, length, value padded to 4 bytes).
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_ne_bytes());
    out.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(pad4(out.len()), 0);
}

/// Wraps `body` as a block of `kind`: type, total length, body, total length.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    debug_assert_eq!(body.len() % 4, 0);
    let total = (body.len() + 12) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&total.to_ne_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_ne_bytes());
    out
}

/// The exported-PDU tags that come before each message: the dissector's name, then the end.
pub fn exported_pdu_header() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&EXP_PDU_TAG_DISSECTOR_NAME.to_be_bytes());
    let padded = pad4(DISSECTOR.len());
    out.extend_from_slice(&(padded as u16).to_be_bytes());
    out.extend_from_slice(DISSECTOR.as_bytes());
    out.resize(4 + padded, 0);
    out.extend_from_slice(&EXP_PDU_TAG_END_OF_OPT.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out
}

/// Writes a capture: [`Writer::new`] writes the header blocks, [`Writer::packet`] one packet.
pub struct Writer<W: Write> {
    out: W,
    pdu_header: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Writes the section header and the interface description to `out`.
    ///
    /// # Errors
    /// The write's error.
    pub fn new(mut out: W) -> io::Result<Writer<W>> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&BYTE_ORDER_MAGIC.to_ne_bytes());
        shb.extend_from_slice(&1u16.to_ne_bytes());
        shb.extend_from_slice(&0u16.to_ne_bytes());
        shb.extend_from_slice(&(-1i64).to_ne_bytes());
        let appl = format!("mipc {}", env!("CARGO_PKG_VERSION"));
        option(&mut shb, SHB_USERAPPL, appl.as_bytes());
        option(&mut shb, OPT_END, &[]);
        out.write_all(&block(SHB, &shb))?;

        let mut idb = Vec::new();
        idb.extend_from_slice(&LINKTYPE_WIRESHARK_UPPER_PDU.to_ne_bytes());
        idb.extend_from_slice(&0u16.to_ne_bytes());
        idb.extend_from_slice(&0u32.to_ne_bytes()); // snaplen: no limit
        option(&mut idb, IF_NAME, b"mipc");
        option(&mut idb, IF_TSRESOL, &[9]);
        option(&mut idb, OPT_END, &[]);
        out.write_all(&block(IDB, &idb))?;
        Ok(Writer {
            out,
            pdu_header: exported_pdu_header(),
        })
    }

    /// Writes one packet: the message `mtext` at `time_ns` (since the epoch), with an
    /// optional comment (events that are not plain messages say what happened there).
    ///
    /// # Errors
    /// The write's error.
    pub fn packet(&mut self, time_ns: u64, mtext: &[u8], comment: Option<&str>) -> io::Result<()> {
        let len = self.pdu_header.len() + mtext.len();
        let mut epb = Vec::with_capacity(32 + pad4(len));
        epb.extend_from_slice(&0u32.to_ne_bytes()); // interface 0
        epb.extend_from_slice(&((time_ns >> 32) as u32).to_ne_bytes());
        epb.extend_from_slice(&(time_ns as u32).to_ne_bytes());
        epb.extend_from_slice(&(len as u32).to_ne_bytes());
        epb.extend_from_slice(&(len as u32).to_ne_bytes());
        epb.extend_from_slice(&self.pdu_header);
        epb.extend_from_slice(mtext);
        epb.resize(pad4(epb.len()), 0);
        if let Some(c) = comment {
            option(&mut epb, OPT_COMMENT, c.as_bytes());
            option(&mut epb, OPT_END, &[]);
        }
        self.out.write_all(&block(EPB, &epb))
    }

    /// Flushes the output (after each packet, so a reader sees it at once).
    ///
    /// # Errors
    /// The flush's error.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn blocks_are_framed_and_aligned() {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.packet(1_700_000_000_000_000_001, b"abcde", Some("death of x"))
            .unwrap();
        w.packet(5, b"", None).unwrap();
        let b = w.out;
        let mut off = 0;
        let mut kinds = Vec::new();
        while off < b.len() {
            let kind = u32_at(&b, off);
            let len = u32_at(&b, off + 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(&b, off + len - 4) as usize, len, "trailing length");
            kinds.push(kind);
            off += len;
        }
        assert_eq!(off, b.len());
        assert_eq!(kinds, [SHB, IDB, EPB, EPB]);
        assert_eq!(u32_at(&b, 8), BYTE_ORDER_MAGIC);
    }

    #[test]
    fn exported_pdu_names_the_dissector() {
        assert_eq!(
            exported_pdu_header(),
            b"\x00\x0c\x00\x04mipc\x00\x00\x00\x00"
        );
    }
}
