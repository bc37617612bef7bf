//! Runs the fuzz target bodies (`mipc_relay::fuzzing`) on stable Rust: the saved corpus in
//! fuzz/corpus (crash inputs included) and a few thousand inputs from a fixed-seed generator.
//! The real fuzzing is `cargo +nightly fuzz run wire|router` (fuzz/README.md).

use mipc_relay::fuzzing;
use std::path::Path;

/// xorshift64*: deterministic, so a failure here reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() as usize) % max;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect()
}

#[test]
fn wire_target() {
    for input in corpus("wire") {
        fuzzing::wire(&input);
    }
    let mut rng = Rng(0x5EED_0001);
    for _ in 0..20_000 {
        let mut m = rng.bytes(2300);
        // Half the inputs get a plausible header so decoding goes deep.
        if m.len() >= 76 && rng.next() % 2 == 0 {
            let size = (m.len() - 76) as u32 - (rng.next() % 5) as u32 % (m.len() as u32 - 75);
            m[68..72].copy_from_slice(&size.to_ne_bytes());
            m[5] = 0;
            m[40] = 0;
        }
        fuzzing::wire(&m);
    }
}

#[test]
fn router_target() {
    for input in corpus("router") {
        fuzzing::router(&input);
    }
    let mut rng = Rng(0x5EED_0002);
    for _ in 0..3_000 {
        fuzzing::router(&rng.bytes(600));
    }
}
