//! Fuzzes the KMA short-term forecast parser: any bytes, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let now = contracts::Timestamp::from_unix_seconds(1_781_415_000).expect("in range");
    let _ = upstream::kma::parse(data, now);
});
