//! `cargo xtask eval forecast`: simulates the evaluation set from its committed seed, backtests the model and
//! prints MAE by horizon and p10–p90 coverage next to persistence and seasonal-naive, measured in the same run.

#![allow(clippy::print_stdout, reason = "an evaluation prints its table")]

use contracts::Timestamp;
use forecast::{
    evaluate::{self, Report},
    simulate::{self, Scenario},
};

/// The evaluation set: its seed is the data. Changing any of these changes every number in the report.
const SEED: u64 = 20_260_614;
const LOTS: usize = 40;
const DAYS: u32 = 70;
const TRAIN_DAYS: u32 = 42;
/// 2026-04-01 00:00 in Seoul: spring into early summer, with Children's Day, Buddha's Birthday, Memorial Day
/// and the local-election holiday inside.
const START_UNIX: i64 = 1_774_969_200;

fn print(report: &Report) {
    println!(
        "{:>8} {:>9} {:>10} {:>12} {:>15} {:>14} {:>9}",
        "horizon",
        "forecasts",
        "model MAE",
        "persistence",
        "seasonal-naive",
        "vs s-naive",
        "p10-p90"
    );
    for h in &report.horizons {
        println!(
            "{:>6}m {:>9} {:>10.2} {:>12.2} {:>15.2} {:>13.1}% {:>8.1}%",
            h.horizon_minutes,
            h.forecasts,
            h.model_mae,
            h.persistence_mae,
            h.seasonal_naive_mae,
            h.improvement_over_seasonal_naive(),
            100.0 * h.coverage
        );
    }
    println!();
    println!("{:>8} {:>9} {:>10} {:>14}", "risk", "forecasts", "mean risk", "observed full");
    for band in &report.bands {
        let name = band.band.map_or("?", |band| band.as_str());
        println!(
            "{:>8} {:>9} {:>9.1}% {:>13.1}%",
            name,
            band.forecasts,
            100.0 * band.mean_risk,
            100.0 * band.observed_full
        );
    }
}

fn main() {
    let start = Timestamp::from_unix_seconds(START_UNIX).expect("valid start");
    let scenario = Scenario { seed: SEED, lots: LOTS, start, days: DAYS };
    let began = std::time::Instant::now();
    let lots = simulate::simulate(&scenario);
    let readings: usize = lots.iter().map(|lot| lot.readings.len()).sum();
    println!(
        "evaluation set: seed {SEED}, {LOTS} lots x {DAYS} days ({readings} readings), train {TRAIN_DAYS} days, \
         score {} days, forecasts every 15 min 07:00-22:00 KST",
        DAYS - TRAIN_DAYS
    );
    let report = evaluate::evaluate(&lots, start, DAYS, TRAIN_DAYS);
    print(&report);
    println!("({:.1} s)", began.elapsed().as_secs_f64());
    println!(
        "worst-horizon improvement over seasonal-naive {:.1}%, p10-p90 coverage {:.1}%",
        report.worst_improvement(),
        100.0 * report.coverage()
    );
}
