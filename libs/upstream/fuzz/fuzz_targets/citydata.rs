//! Fuzzes the Seoul citydata parser: any bytes, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = upstream::citydata::parse(data, "여의도한강공원");
});
