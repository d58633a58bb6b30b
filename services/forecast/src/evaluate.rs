//! The backtest harness: replays a history the way production sees it and scores the model against two
//! baselines on the same forecasts.
//!
//! Time moves forward in five-minute steps. Every reading is folded into the lot's baseline as soon as it is
//! observed (as the rollup does); the first `train_days` only train. After that, every quarter hour between
//! 07:00 and 22:00 Seoul time (when people decide whether to drive), each lot is forecast from what was known
//! then and scored at each horizon against the reading at the target time, next to persistence (the latest
//! value) and seasonal-naive (the reading at the target time one week earlier). A forecast counts only when
//! all three made one and the target was observed, so every method is judged on the same cases.

use std::collections::HashMap;

use contracts::{Timestamp, v2::RiskBand};

use crate::{
    calendar::{self, DayType},
    model::{self, Evidence, HORIZONS, Stats},
    simulate::{Reading, STEP_SECONDS, SimulatedLot},
};

const WEEK_SECONDS: i64 = 7 * 86_400;
const ISSUE_EVERY_SECONDS: i64 = 900;
const RECENT_WINDOW_SECONDS: i64 = 1_800;

/// Scores at one horizon.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HorizonScore {
    pub horizon_minutes: u16,
    pub forecasts: u64,
    pub model_mae: f64,
    pub persistence_mae: f64,
    pub seasonal_naive_mae: f64,
    /// Share of actuals inside p10–p90.
    pub coverage: f64,
}

impl HorizonScore {
    /// How much lower the model's error is than seasonal-naive's, in percent.
    pub fn improvement_over_seasonal_naive(&self) -> f64 {
        100.0 * (1.0 - self.model_mae / self.seasonal_naive_mae)
    }
}

/// How often the lot really was full, per risk band the model gave.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BandCalibration {
    pub band: Option<RiskBand>,
    pub forecasts: u64,
    pub mean_risk: f64,
    pub observed_full: f64,
}

/// The backtest result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub horizons: Vec<HorizonScore>,
    pub bands: Vec<BandCalibration>,
}

impl Report {
    pub fn worst_improvement(&self) -> f64 {
        self.horizons
            .iter()
            .map(HorizonScore::improvement_over_seasonal_naive)
            .fold(f64::INFINITY, f64::min)
    }

    /// p10–p90 coverage over every scored forecast.
    pub fn coverage(&self) -> f64 {
        let total: u64 = self.horizons.iter().map(|h| h.forecasts).sum();
        let inside: f64 = self.horizons.iter().map(|h| h.coverage * h.forecasts as f64).sum();
        if total == 0 { 0.0 } else { inside / total as f64 }
    }
}

#[derive(Default)]
struct Sums {
    forecasts: u64,
    model: f64,
    persistence: f64,
    seasonal: f64,
    inside: u64,
}

/// Running Welford statistics of one baseline cell.
#[derive(Clone, Copy, Default)]
struct Welford {
    n: i64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn add(&mut self, value: f64) -> Stats {
        self.n += 1;
        let delta = value - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (value - self.mean);
        let variance = if self.n > 1 { self.m2 / (self.n - 1) as f64 } else { 0.0 };
        Stats { n: self.n, mean: self.mean, variance }
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds).expect("in range")
}

fn band_index(band: RiskBand) -> usize {
    match band {
        RiskBand::Low => 0,
        RiskBand::Medium => 1,
        _ => 2,
    }
}

/// Backtests `lots` from `start` (00:00 in Seoul), training on the first `train_days`.
pub fn evaluate(lots: &[SimulatedLot], start: Timestamp, days: u32, train_days: u32) -> Report {
    let mut sums: Vec<Sums> = HORIZONS.iter().map(|_| Sums::default()).collect();
    let mut bands = [(0_u64, 0.0_f64, 0_u64); 3];
    let scoring_from = start.as_unix_seconds() + i64::from(train_days) * 86_400;
    let end = start.as_unix_seconds() + i64::from(days) * 86_400;

    for lot in lots {
        let by_time: HashMap<i64, u32> =
            lot.readings.iter().map(|r| (r.observed_at.as_unix_seconds(), r.available)).collect();
        let mut cells: HashMap<(DayType, i16), Welford> = HashMap::new();
        let mut evidence = Evidence { capacity: Some(lot.capacity), ..Evidence::default() };
        let mut next = 0;
        let mut now = start.as_unix_seconds();
        while now < end {
            // Fold in everything observed up to now.
            while let Some(&Reading { observed_at, available }) = lot.readings.get(next) {
                if observed_at.as_unix_seconds() > now {
                    break;
                }
                let key = (calendar::day_type(observed_at), calendar::slot(observed_at));
                let stats = cells.entry(key).or_default().add(f64::from(available));
                evidence.baseline.insert(key, stats);
                next += 1;
            }
            let local_hour = (now - start.as_unix_seconds()).rem_euclid(86_400) / 3_600;
            if now >= scoring_from
                && now % ISSUE_EVERY_SECONDS == 0
                && (7..22).contains(&local_hour)
            {
                let known = &lot.readings[..next];
                let latest_at = known.last().map_or(i64::MIN, |r| r.observed_at.as_unix_seconds());
                let window_start = known.partition_point(|r| {
                    r.observed_at.as_unix_seconds() <= latest_at - RECENT_WINDOW_SECONDS
                });
                evidence.recent =
                    known[window_start..].iter().map(|r| (r.observed_at, r.available)).collect();
                let forecast = model::forecast(&evidence, at(now));
                if let Some(&(_, latest)) = evidence.recent.last() {
                    for (index, horizon) in forecast.horizons.iter().enumerate() {
                        let target = now + i64::from(horizon.horizon_minutes) * 60;
                        let (Some(&actual), Some(&week_ago)) =
                            (by_time.get(&target), by_time.get(&(target - WEEK_SECONDS)))
                        else {
                            continue;
                        };
                        let error = |predicted: u32| f64::from(predicted.abs_diff(actual));
                        let sum = &mut sums[index];
                        sum.forecasts += 1;
                        sum.model += error(horizon.p50);
                        sum.persistence += error(latest);
                        sum.seasonal += error(week_ago);
                        sum.inside += u64::from((horizon.p10..=horizon.p90).contains(&actual));
                        let band = &mut bands[band_index(horizon.risk)];
                        band.0 += 1;
                        band.1 += horizon.risk_full;
                        band.2 += u64::from(actual == 0);
                    }
                }
            }
            now += STEP_SECONDS;
        }
    }

    let horizons = HORIZONS
        .iter()
        .zip(&sums)
        .map(|(&minutes, sum)| {
            let mean =
                |total: f64| if sum.forecasts == 0 { 0.0 } else { total / sum.forecasts as f64 };
            HorizonScore {
                horizon_minutes: minutes,
                forecasts: sum.forecasts,
                model_mae: mean(sum.model),
                persistence_mae: mean(sum.persistence),
                seasonal_naive_mae: mean(sum.seasonal),
                coverage: mean(sum.inside as f64),
            }
        })
        .collect();
    let bands = [RiskBand::Low, RiskBand::Medium, RiskBand::High]
        .into_iter()
        .zip(bands)
        .map(|(band, (forecasts, risk, full))| BandCalibration {
            band: Some(band),
            forecasts,
            mean_risk: if forecasts == 0 { 0.0 } else { risk / forecasts as f64 },
            observed_full: if forecasts == 0 { 0.0 } else { full as f64 / forecasts as f64 },
        })
        .collect();
    Report { horizons, bands }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Scenario, simulate};

    #[test]
    fn the_model_beats_the_baselines_on_a_small_history() {
        // 2026-04-06 00:00 KST, three weeks to train, one to score.
        let start = Timestamp::from_unix_seconds(1_775_401_200).unwrap();
        let lots = simulate(&Scenario { seed: 11, lots: 2, start, days: 28 });
        let report = evaluate(&lots, start, 28, 21);
        assert_eq!(report.horizons.len(), 4);
        for horizon in &report.horizons {
            assert!(horizon.forecasts > 500, "{horizon:?}");
            assert!(horizon.model_mae < horizon.seasonal_naive_mae, "{horizon:?}");
            assert!((0.0..=1.0).contains(&horizon.coverage));
        }
        // Persistence is hard to beat a quarter hour out and easy two hours out.
        let (first, last) = (report.horizons[0], report.horizons[3]);
        assert!(first.persistence_mae < last.persistence_mae);
        assert!(last.model_mae < last.persistence_mae, "{last:?}");
    }
}
