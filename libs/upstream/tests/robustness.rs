//! Parsers never panic: every fixture, cut at every length, with bytes flipped and garbage spliced in, must
//! give a result (usually an error with a class), never a crash. A deterministic mutation run in every test
//! run; `cargo xtask fuzz <parser>` explores further with libFuzzer.

use contracts::Timestamp;
use upstream::{citydata, events, kma, notices, parking_portal};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Truncations at many lengths, byte flips, and inserted junk.
fn mutations(input: &[u8]) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ input.len() as u64);
    let mut out = Vec::new();
    let step = (input.len() / 97).max(1);
    for cut in (0..input.len()).step_by(step) {
        out.push(input[..cut].to_vec());
    }
    for _ in 0..300 {
        let mut mutated = input.to_vec();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(mutated.len());
            match rng.below(4) {
                0 => mutated[at] = rng.next() as u8,
                1 => {
                    mutated.remove(at);
                }
                2 => mutated
                    .splice(
                        at..at,
                        [b'"', b'{', b'[', b'<', b'\\', 0xff]
                            .into_iter()
                            .cycle()
                            .take(1 + rng.below(6)),
                    )
                    .for_each(drop),
                _ => mutated.splice(at..at, b"<td>-1</td>".iter().copied()).for_each(drop),
            }
            if mutated.is_empty() {
                break;
            }
        }
        out.push(mutated);
    }
    out.push((0..4096).map(|i| (i * 31 % 251) as u8).collect());
    out
}

const PORTAL: &[u8] = include_bytes!("../fixtures/parking_portal/region8.html");
const CITYDATA: &[u8] = include_bytes!("../fixtures/citydata/yeouido.json");
const NESTED: &[u8] = include_bytes!("../fixtures/citydata/banpo_nested_blocks.json");
const EVENTS: &[u8] = include_bytes!("../fixtures/events/page1.json");
const KMA: &[u8] = include_bytes!("../fixtures/kma/vilage_fcst.json");
const BOARD: &[u8] = include_bytes!("../fixtures/notices/board.html");

#[test]
fn parsers_never_panic_on_mutated_fixtures() {
    let now = Timestamp::from_unix_seconds(1_781_415_000).unwrap();
    let parks = vec![notices::ParkNames {
        park_id: "yeouido".into(),
        name_ko: "여의도한강공원".into(),
        short_ko: "여의도".into(),
    }];
    let mut cases = 0;
    for input in mutations(PORTAL) {
        let _ = parking_portal::parse_region_page(&String::from_utf8_lossy(&input));
        cases += 1;
    }
    for fixture in [CITYDATA, NESTED] {
        for input in mutations(fixture) {
            let _ = citydata::parse(&input, "여의도한강공원");
            cases += 1;
        }
    }
    for input in mutations(EVENTS) {
        let _ = events::parse_page(&input);
        cases += 1;
    }
    for input in mutations(KMA) {
        let _ = kma::parse(&input, now);
        cases += 1;
    }
    for input in mutations(BOARD) {
        let _ = notices::parse_board(&String::from_utf8_lossy(&input), "https://x/notices", &parks);
        cases += 1;
    }
    assert!(cases > 2_000, "{cases}");
}
