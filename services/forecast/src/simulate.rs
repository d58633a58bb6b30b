//! A seeded simulator of Han River parking lots, the evaluation set the forecast is judged on.
//!
//! Each lot has a capacity and a demand curve (share of spaces taken) by day type: weekdays stay quiet with an
//! evening bump after work, weekends and public holidays fill from late morning to a mid-afternoon peak. On top:
//! a seasonal factor (busier in early summer), rain days (demand roughly halved), events at the lot's park
//! (an afternoon-evening surge), a per-day level shock (no two Saturdays alike), AR(1) minute-to-minute noise,
//! readings that go missing at random and whole source outages of one to three hours. Demand above capacity
//! reads as a full lot. Readings come every five minutes in the ingest tables' shape
//! (`lot_id`, `observed_at`, `available`, `capacity`); a missing reading is absent, as it is in
//! `ingest.lot_observation`. The same seed always gives the same history.

use contracts::Timestamp;

use crate::calendar::{self, DayType};

/// One reading, as `ingest.lot_observation` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub observed_at: Timestamp,
    pub available: u32,
}

/// A simulated lot and its readings, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatedLot {
    pub lot_id: String,
    pub capacity: u32,
    pub readings: Vec<Reading>,
}

/// What to simulate.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub lots: usize,
    /// The first day, 00:00 in Seoul.
    pub start: Timestamp,
    pub days: u32,
}

/// The reading interval of the parking portal.
pub const STEP_SECONDS: i64 = 300;

/// SplitMix64: small, fast and fully determined by its seed, which is all a simulator needs.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Share of spaces taken at `hour` (fractional, Seoul time) on a day of `day_type`, before modifiers.
fn demand_curve(day_type: DayType, hour: f64, busyness: f64) -> f64 {
    let bump = |centre: f64, width: f64| (-((hour - centre) / width).powi(2)).exp();
    match day_type {
        DayType::Weekday => 0.12 + 0.18 * bump(12.5, 2.5) + 0.45 * busyness * bump(19.5, 1.8),
        DayType::Weekend => 0.10 + 0.95 * busyness * bump(15.0, 3.2) + 0.25 * bump(19.5, 1.5),
    }
}

/// Busier in May–June and September, quiet in winter: a smooth factor by day of the year.
fn season(day_of_year: i16) -> f64 {
    let angle = std::f64::consts::TAU * (f64::from(day_of_year) - 160.0) / 365.0;
    0.8 + 0.2 * angle.cos()
}

/// Simulates every lot of `scenario`.
pub fn simulate(scenario: &Scenario) -> Vec<SimulatedLot> {
    let mut rng = Rng::new(scenario.seed);
    let seoul = contracts::seoul::zone();
    // Weather and events are shared by the whole city, so draw them per day once.
    let days: Vec<(f64, [bool; 4])> = (0..scenario.days)
        .map(|_| {
            let rain = if rng.uniform() < 0.2 { 0.45 + 0.2 * rng.uniform() } else { 1.0 };
            let events = [(); 4].map(|()| rng.uniform() < 0.06);
            (rain, events)
        })
        .collect();

    (0..scenario.lots)
        .map(|index| {
            let capacity = [64_u32, 99, 180, 356, 520, 1_087][index % 6];
            let busyness = 0.75 + 0.35 * rng.uniform();
            let park = index % 4;
            let mut readings = Vec::new();
            let mut noise = 0.0_f64;
            for day in 0..scenario.days {
                let midnight = scenario.start.as_unix_seconds() + i64::from(day) * 86_400;
                let date = Timestamp::from_unix_seconds(midnight)
                    .expect("in range")
                    .as_jiff()
                    .to_zoned(seoul.clone())
                    .date();
                let day_type =
                    calendar::day_type(Timestamp::from_unix_seconds(midnight).expect("in range"));
                let (rain, events) = days[day as usize];
                let level = 1.0 + 0.12 * rng.normal();
                let outage = (rng.uniform() < 0.03).then(|| {
                    let from = (rng.uniform() * 86_400.0) as i64;
                    from..from + 3_600 + (rng.uniform() * 7_200.0) as i64
                });
                for step in 0..(86_400 / STEP_SECONDS) {
                    let second = step * STEP_SECONDS;
                    let hour = second as f64 / 3_600.0;
                    let mut demand = demand_curve(day_type, hour, busyness)
                        * season(date.day_of_year())
                        * rain
                        * level;
                    if events[park] {
                        demand += 0.35 * (-((hour - 17.0) / 2.5).powi(2)).exp();
                    }
                    noise = 0.92 * noise + 0.015 * rng.normal();
                    let taken = (demand + noise).clamp(0.0, 1.0);
                    let missing = rng.uniform() < 0.02
                        || outage.as_ref().is_some_and(|o| o.contains(&second));
                    if missing {
                        continue;
                    }
                    readings.push(Reading {
                        observed_at: Timestamp::from_unix_seconds(midnight + second)
                            .expect("in range"),
                        available: (f64::from(capacity) * (1.0 - taken)).round() as u32,
                    });
                }
            }
            SimulatedLot { lot_id: format!("sim-{index:04}"), capacity, readings }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(seed: u64) -> Scenario {
        // 2026-05-01 00:00 KST.
        Scenario {
            seed,
            lots: 3,
            start: Timestamp::from_unix_seconds(1_777_561_200).unwrap(),
            days: 14,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_history() {
        assert_eq!(simulate(&scenario(7)), simulate(&scenario(7)));
        assert_ne!(simulate(&scenario(7)), simulate(&scenario(8)));
    }

    #[test]
    fn readings_stay_within_capacity_and_some_go_missing() {
        for lot in simulate(&scenario(1)) {
            let full_days = 14 * (86_400 / STEP_SECONDS) as usize;
            assert!(lot.readings.len() < full_days, "{} lost no reading", lot.lot_id);
            assert!(lot.readings.len() > full_days * 9 / 10);
            assert!(lot.readings.iter().all(|r| r.available <= lot.capacity));
            assert!(lot.readings.windows(2).all(|w| w[0].observed_at < w[1].observed_at));
        }
    }

    #[test]
    fn weekend_afternoons_are_busier_than_weekday_afternoons() {
        let lots = simulate(&scenario(3));
        let mean_at = |day_type: DayType| {
            let values: Vec<f64> = lots
                .iter()
                .flat_map(|lot| lot.readings.iter().map(move |r| (lot.capacity, r)))
                .filter(|(_, r)| {
                    calendar::day_type(r.observed_at) == day_type
                        && calendar::slot(r.observed_at) == 60
                })
                .map(|(capacity, r)| f64::from(r.available) / f64::from(capacity))
                .collect();
            values.iter().sum::<f64>() / values.len() as f64
        };
        assert!(mean_at(DayType::Weekend) < mean_at(DayType::Weekday) - 0.3);
    }
}
