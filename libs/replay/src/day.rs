//! The day script: what the sources say at a given moment in Seoul, from the curated reference data.
//!
//! Lots fill through the morning and peak mid-afternoon, more on weekends; each lot has its own phase so the
//! screen is not uniform. Congestion follows the same curve. Between 02:00 and 05:00 city data has no data
//! (`INFO-200`), as the real service often does; on weekdays the portal fails from 13:00 to 14:00.

use std::collections::BTreeMap;

use jiff::civil::{DateTime, Weekday};

use crate::{Area, BoardEntry, CulturalEvent, PortalLot, WorldState};

/// A stable number in `0.0..1.0` for a name (so every lot has its own character).
fn unit(name: &str) -> f64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % 10_000) as f64 / 10_000.0
}

/// How full lots are, `0.0..=1.05`, at `hour` (fractional) on a weekday or weekend.
fn occupancy(hour: f64, weekend: bool, phase: f64) -> f64 {
    let peak = if weekend { 1.05 } else { 0.7 };
    let centre = 15.0 + 2.0 * (phase - 0.5);
    let spread: f64 = if weekend { 4.5 } else { 3.5 };
    let bump = (-((hour - centre) / spread).powi(2)).exp();
    (0.08 + peak * bump).min(1.05)
}

/// The scene at `kst` (`YYYY-MM-DDTHH:MM`).
pub fn scene_at(kst: &str) -> anyhow::Result<WorldState> {
    let at: DateTime = kst.parse()?;
    let hour = f64::from(at.hour()) + f64::from(at.minute()) / 60.0;
    let weekend = matches!(at.weekday(), Weekday::Saturday | Weekday::Sunday);
    let reference = db::reference::Reference::curated()?;

    let mut lots = Vec::new();
    let mut areas = BTreeMap::new();
    // City data lags about 15 minutes and is published on 5-minute steps.
    let observed = at.checked_sub(jiff::Span::new().minutes(15 + i64::from(at.minute() % 5)))?;
    for park in &reference.parks {
        for lot in &park.lots {
            let name = lot.portal_names[0].clone();
            let phase = unit(&name);
            let capacity = lot.capacity.map_or(120 + (phase * 480.0) as u32, |c| c.max(0) as u32);
            let full = occupancy(hour, weekend, phase);
            let available = ((1.0 - full).max(0.0) * f64::from(capacity)).round() as u32;
            lots.push(PortalLot {
                region: park.portal_region as u8,
                address: format!("서울특별시 {} 한강공원", park.name_ko),
                name,
                available: Some(available),
                capacity,
            });
        }
        let crowd = occupancy(hour, weekend, unit(&park.park_id));
        let population = (4_000.0 + 40_000.0 * crowd) as u32;
        let (level, message) = match population {
            0..15_000 => ("여유", "사람이 적어 여유로워요."),
            15_000..25_000 => ("보통", "사람이 몰려있을 수 있지만 크게 붐비지는 않아요."),
            25_000..35_000 => ("약간 붐빔", "사람들이 몰려있을 가능성이 커요."),
            _ => ("붐빔", "사람이 많아 붐벼요."),
        };
        areas.insert(
            park.citydata_area.clone(),
            Area {
                level_ko: level.to_owned(),
                message_ko: message.to_owned(),
                population: (population / 1_000 * 1_000, population / 1_000 * 1_000 + 2_000),
                observed_kst: observed.strftime("%Y-%m-%d %H:%M").to_string(),
                temperature_c: 18.0 + 8.0 * ((hour - 9.0) / 24.0 * std::f64::consts::TAU).sin(),
                precipitation_ko: "없음".to_owned(),
                sky_ko: if weekend { "맑음" } else { "구름많음" }.to_owned(),
                rain_chance: 20,
                no_data: (2.0..5.0).contains(&hour),
            },
        );
    }

    let date = at.date();
    let day =
        |offset: i64| date.checked_add(jiff::Span::new().days(offset)).unwrap_or(date).to_string();
    let events = vec![
        CulturalEvent {
            title: "한강 여름축제".into(),
            place: "여의도한강공원 물빛광장".into(),
            starts_on: day(-2),
            ends_on: day(5),
            free: true,
        },
        CulturalEvent {
            title: "달빛무지개분수 음악회".into(),
            place: "반포 한강 달빛광장".into(),
            starts_on: day(0),
            ends_on: day(0),
            free: true,
        },
        CulturalEvent {
            title: "세종문화회관 정기공연".into(),
            place: "세종문화회관 대극장".into(),
            starts_on: day(-10),
            ends_on: day(20),
            free: false,
        },
    ];
    let notices = vec![BoardEntry {
        id: 1001,
        title: "잠실한강공원 수영장 임시 휴장 안내".into(),
        date: day(-1),
    }];

    // KMA publishes base times 02, 05, …, 23 at HH:10.
    let published = at.checked_sub(jiff::Span::new().minutes(10))?;
    let base_hour = [23, 20, 17, 14, 11, 8, 5, 2].into_iter().find(|&h| h <= published.hour());
    let (base_date, base_hour) = match base_hour {
        Some(h) => (published.date(), h),
        None => (published.date().yesterday()?, 23),
    };
    let kma_base = (base_date.strftime("%Y%m%d").to_string(), format!("{base_hour:02}00"));

    // The failing hour: on weekdays from 13:00 the portal answers 503 for an hour.
    let mut scripted_faults = BTreeMap::new();
    if !weekend && at.hour() == 13 {
        scripted_faults.insert(crate::Endpoint::ParkingPortal, crate::Fault::Status(503));
    }

    Ok(WorldState {
        lots,
        areas,
        events,
        event_links: BTreeMap::new(),
        notices,
        notice_links: BTreeMap::new(),
        faults: BTreeMap::new(),
        scripted_faults,
        kma_base,
        requests: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekend_afternoons_fill_lots_and_mornings_are_empty() {
        let morning = scene_at("2026-06-13T08:00").unwrap();
        let afternoon = scene_at("2026-06-13T15:30").unwrap();
        let free =
            |state: &WorldState| state.lots.iter().filter_map(|lot| lot.available).sum::<u32>();
        assert_eq!(morning.lots.len(), 30);
        assert!(
            free(&morning) > 3 * free(&afternoon),
            "{} vs {}",
            free(&morning),
            free(&afternoon)
        );
        assert!(
            afternoon.lots.iter().any(|lot| lot.available == Some(0)),
            "some lot is full on a weekend afternoon"
        );
    }

    #[test]
    fn weekdays_have_a_failing_hour() {
        assert!(
            scene_at("2026-06-15T13:20")
                .unwrap()
                .scripted_faults
                .contains_key(&crate::Endpoint::ParkingPortal)
        );
        assert!(scene_at("2026-06-15T14:00").unwrap().scripted_faults.is_empty());
        assert!(
            scene_at("2026-06-13T13:20").unwrap().scripted_faults.is_empty(),
            "not on Saturdays"
        );
    }

    #[test]
    fn nights_have_no_city_data() {
        let night = scene_at("2026-06-13T03:00").unwrap();
        assert!(night.areas.values().all(|area| area.no_data));
    }
}
