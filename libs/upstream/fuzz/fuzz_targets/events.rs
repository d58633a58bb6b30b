//! Fuzzes the cultural-events page parser: any bytes, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = upstream::events::parse_page(data);
});
