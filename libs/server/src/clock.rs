//! A service's notion of "now", injectable so tests can age data without sleeping.
//!
//! Production uses [`Clock::System`]. Unit tests pin time with [`Clock::manual`]; the end-to-end sandbox gives
//! every service one [`Clock::shifted`] clock, so "an hour later" is one call while data keeps arriving in
//! real time.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use contracts::Timestamp;

/// A source of the current instant.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that only moves when told to.
    Manual(Arc<AtomicI64>),
    /// The system clock moved forward by an offset in seconds that [`Clock::advance`] grows; clones share it.
    Shifted(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: Timestamp) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start.as_unix_seconds())))
    }

    /// The system clock, until [`Clock::advance`] moves it ahead.
    pub fn shifted() -> Clock {
        Clock::Shifted(Arc::new(AtomicI64::new(0)))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Manual(seconds) => Timestamp::from_unix_seconds(seconds.load(Ordering::SeqCst))
                .expect("manual clock stays in range"),
            Clock::Shifted(offset) => {
                let now = Timestamp::now().as_unix_seconds() + offset.load(Ordering::SeqCst);
                Timestamp::from_unix_seconds(now).expect("shifted clock stays in range")
            }
        }
    }

    /// Moves a manual or shifted clock forward; a no-op on the system clock.
    pub fn advance(&self, seconds: i64) {
        if let Clock::Manual(current) | Clock::Shifted(current) = self {
            current.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_runs_ahead_of_the_system_clock_for_every_clone() {
        let clock = Clock::shifted();
        let other = clock.clone();
        clock.advance(3_600);
        let ahead = other.now().as_unix_seconds() - Timestamp::now().as_unix_seconds();
        assert!((3_599..=3_601).contains(&ahead), "{ahead}");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = Timestamp::from_unix_seconds(1_800_000_000).unwrap();
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        clock.advance(90);
        assert_eq!(clock.now().as_unix_seconds(), 1_800_000_090);
    }
}
