//! Fuzzes the parking portal's region-page parser: any bytes, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = upstream::parking_portal::parse_region_page(&String::from_utf8_lossy(data));
});
