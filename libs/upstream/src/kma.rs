//! KMA short-term forecast (`getVilageFcst`, data.go.kr 15084084).
//!
//! Decision (ARCHITECTURE.md): Seoul city data already carries current weather for every park; KMA is
//! collected every 3 hours as the fallback for parks whose city-data weather is missing, and for the rain
//! chance of the coming hour. Rows are stored as `kma_forecast` weather with the forecast's base time as
//! their observation time, so a fresh city-data reading always wins.
//!
//! Quirks: grid coordinates (nx, ny) on KMA's 5 km Lambert conformal conic grid; base times 02, 05, …, 23
//! published at HH:10; quota errors arrive as gateway XML with HTTP 200 even when JSON was requested.

use contracts::{
    Timestamp,
    v2::{PrecipitationType, Sky},
};
use serde_json::Value;

use crate::seoul::{self, count, number, text};
use crate::{
    kst,
    outcome::{ErrorClass, Failure},
};

/// The forecast for the first hour after `now`, for one grid cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    /// The base (issue) time.
    pub issued_at: Timestamp,
    pub target_at: Timestamp,
    pub temperature_c: Option<f64>,
    pub precipitation: Option<PrecipitationType>,
    pub sky: Option<Sky>,
    pub rain_chance_percent: Option<u8>,
}

/// KMA's DFS grid cell for a WGS84 point (Lambert conformal conic, the published conversion).
pub fn grid(lat: f64, lng: f64) -> (i32, i32) {
    const RE: f64 = 6371.00877; // earth radius, km
    const GRID: f64 = 5.0; // km
    const SLAT1: f64 = 30.0;
    const SLAT2: f64 = 60.0;
    const OLON: f64 = 126.0;
    const OLAT: f64 = 38.0;
    const XO: f64 = 43.0;
    const YO: f64 = 136.0;
    let pi = std::f64::consts::PI;
    let degrad = pi / 180.0;
    let re = RE / GRID;
    let (slat1, slat2, olon, olat) = (SLAT1 * degrad, SLAT2 * degrad, OLON * degrad, OLAT * degrad);
    let sn = ((slat1.cos() / slat2.cos()).ln())
        / ((pi * 0.25 + slat2 * 0.5).tan() / (pi * 0.25 + slat1 * 0.5).tan()).ln();
    let sf = (pi * 0.25 + slat1 * 0.5).tan().powf(sn) * slat1.cos() / sn;
    let ro = re * sf / (pi * 0.25 + olat * 0.5).tan().powf(sn);
    let ra = re * sf / (pi * 0.25 + lat * degrad * 0.5).tan().powf(sn);
    let mut theta = lng * degrad - olon;
    if theta > pi {
        theta -= 2.0 * pi;
    }
    if theta < -pi {
        theta += 2.0 * pi;
    }
    theta *= sn;
    (
        (ra * theta.sin() + XO + 0.5).floor() as i32,
        (ro - ra * theta.cos() + YO + 0.5).floor() as i32,
    )
}

/// The latest base time published by `now`: (`YYYYMMDD`, `HHMM`) in KST.
pub fn base_time(now: Timestamp) -> (String, String) {
    // Published at HH:10 for base hours 02, 05, 08, 11, 14, 17, 20, 23.
    let published =
        Timestamp::from_unix_seconds(now.as_unix_seconds() - 10 * 60).expect("in range");
    let local = contracts::seoul::datetime(published);
    let hour = i64::from(local.hour());
    let base_hour = [23, 20, 17, 14, 11, 8, 5, 2].into_iter().find(|&h| h <= hour);
    let (date, base_hour) = match base_hour {
        Some(h) => (local.date(), h),
        None => (local.date().yesterday().expect("in range"), 23),
    };
    (date.strftime("%Y%m%d").to_string(), format!("{base_hour:02}00"))
}

/// Parses an answer; `Ok(None)` for `03 NODATA_ERROR`.
pub fn parse(body: &[u8], now: Timestamp) -> Result<Option<Forecast>, Failure> {
    let value = seoul::parse_json(body)?;
    let header =
        value.pointer("/response/header").ok_or_else(|| Failure::drift("no response.header"))?;
    let code = text(header.get("resultCode")).unwrap_or_default();
    let message = text(header.get("resultMsg")).unwrap_or_default();
    let failure = |class| Failure::new(class, format!("getVilageFcst: {code} {message}"));
    match code.as_str() {
        "00" => {}
        "03" => return Ok(None),
        "22" => return Err(failure(ErrorClass::Quota)),
        "20" | "21" | "30" | "31" | "32" | "33" => return Err(failure(ErrorClass::Auth)),
        "10" | "11" | "12" => return Err(failure(ErrorClass::SchemaDrift)),
        _ => return Err(failure(ErrorClass::UpstreamError)),
    }
    let items = value
        .pointer("/response/body/items/item")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::drift("no response.body.items.item list"))?;
    let mut issued_at = None;
    let mut target: Option<Timestamp> = None;
    let mut values: Vec<(String, Timestamp, String)> = Vec::new();
    for item in items {
        let (Some(category), Some(date), Some(time), Some(base_date), Some(base_time)) = (
            text(item.get("category")),
            text(item.get("fcstDate")),
            text(item.get("fcstTime")),
            text(item.get("baseDate")),
            text(item.get("baseTime")),
        ) else {
            return Err(Failure::drift(
                "an item without category, fcstDate/fcstTime or baseDate/baseTime",
            ));
        };
        let (Some(at), Some(base)) = (
            kst::parse_compact(&format!("{date}{time}")),
            kst::parse_compact(&format!("{base_date}{base_time}")),
        ) else {
            return Err(Failure::drift(format!("unreadable forecast time {date} {time}")));
        };
        issued_at.get_or_insert(base);
        let value = item
            .get("fcstValue")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default();
        if at > now && target.is_none_or(|t| at < t) {
            target = Some(at);
        }
        values.push((category, at, value));
    }
    let (Some(issued_at), Some(target_at)) = (issued_at, target) else { return Ok(None) };
    let get = |category: &str| {
        values
            .iter()
            .find(|(c, at, _)| c == category && *at == target_at)
            .map(|(_, _, value)| Value::String(value.clone()))
    };
    Ok(Some(Forecast {
        issued_at,
        target_at,
        temperature_c: number(get("TMP").as_ref()),
        precipitation: get("PTY").and_then(|v| count(Some(&v))).map(|code| match code {
            0 => PrecipitationType::None,
            1 | 5 => PrecipitationType::Rain,
            2 | 6 => PrecipitationType::RainSnow,
            3 | 7 => PrecipitationType::Snow,
            4 => PrecipitationType::Shower,
            _ => PrecipitationType::Unknown,
        }),
        sky: get("SKY").and_then(|v| count(Some(&v))).map(|code| match code {
            1 => Sky::Clear,
            3 => Sky::PartlyCloudy,
            4 => Sky::Overcast,
            _ => Sky::Unknown,
        }),
        rain_chance_percent: get("POP")
            .and_then(|v| count(Some(&v)))
            .and_then(|p| u8::try_from(p.min(100)).ok()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &[u8] = include_bytes!("../fixtures/kma/vilage_fcst.json");

    #[test]
    fn grid_matches_kma_reference_points() {
        // Seoul City Hall is the published example: nx 60, ny 127.
        assert_eq!(grid(37.5665, 126.9780), (60, 127));
    }

    #[test]
    fn base_time_is_the_latest_published() {
        let at = |kst_text: &str| kst::parse_datetime(kst_text).unwrap();
        assert_eq!(base_time(at("2026-06-14 14:09")), ("20260614".into(), "1100".into()));
        assert_eq!(base_time(at("2026-06-14 14:10")), ("20260614".into(), "1400".into()));
        assert_eq!(base_time(at("2026-06-14 01:00")), ("20260613".into(), "2300".into()));
    }

    #[test]
    fn reads_the_next_hour() {
        let now = kst::parse_datetime("2026-06-14 14:30").unwrap();
        let forecast = parse(ANSWER, now).unwrap().unwrap();
        assert_eq!(forecast.target_at.to_string(), "2026-06-14T06:00:00Z");
        assert_eq!(forecast.temperature_c, Some(27.0));
        assert_eq!(forecast.rain_chance_percent, Some(20));
        assert_eq!(forecast.sky, Some(Sky::PartlyCloudy));
        assert_eq!(forecast.precipitation, Some(PrecipitationType::None));
    }

    #[test]
    fn quota_xml_with_http_200_is_quota() {
        let xml = include_bytes!("../fixtures/kma/quota.xml");
        let now = kst::parse_datetime("2026-06-14 14:30").unwrap();
        assert_eq!(parse(xml, now).unwrap_err().class, ErrorClass::Quota);
    }

    #[test]
    fn no_data_code_is_no_data() {
        let body = br#"{"response":{"header":{"resultCode":"03","resultMsg":"NODATA_ERROR"}}}"#;
        assert_eq!(parse(body, kst::parse_datetime("2026-06-14 14:30").unwrap()).unwrap(), None);
    }
}
