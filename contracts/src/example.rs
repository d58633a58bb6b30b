//! `Example`: one canonical, realistic payload per DTO, pinned by snapshot tests and reused by the OpenAPI
//! documents and by tests of the services.

/// A canonical example value of a wire type.
pub trait Example: Sized {
    fn example() -> Self;
}

/// A fixed instant used by every example, so snapshots never depend on the clock: 2026-06-14 17:20 KST.
pub(crate) fn example_time(offset_seconds: i64) -> crate::Timestamp {
    const BASE: i64 = 1_781_425_200; // 2026-06-14T08:20:00Z
    crate::Timestamp::from_unix_seconds(BASE + offset_seconds).expect("example instant is in range")
}
