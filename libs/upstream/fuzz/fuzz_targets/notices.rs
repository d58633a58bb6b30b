//! Fuzzes the notice-board parser: any bytes, no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let parks = [upstream::notices::ParkNames {
        park_id: "yeouido".into(),
        name_ko: "여의도한강공원".into(),
        short_ko: "여의도".into(),
    }];
    let _ = upstream::notices::parse_board(&String::from_utf8_lossy(data), "https://example.org/notices", &parks);
});
