//! The api's notion of "now", injectable so tests can age data without sleeping.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use contracts::Timestamp;

/// A source of the current instant.
#[derive(Clone, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// A clock that only moves when told to; for tests.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: Timestamp) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start.as_unix_seconds())))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Manual(seconds) => Timestamp::from_unix_seconds(seconds.load(Ordering::SeqCst))
                .expect("manual clock stays in range"),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, seconds: i64) {
        if let Clock::Manual(current) = self {
            current.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}
