//! Seoul real-time city data (`citydata`, OA-21285): congestion now and Seoul's hourly congestion forecast,
//! the weather block and the events block, for one area (park) per request.
//!
//! Quirks: `RESULT.CODE` keys (see [`crate::seoul`]); blocks as list, object or nested under their own name;
//! numbers as strings; times in KST without offset; congestion levels in Korean, anything else is drift.
//! Free text is capped ([`crate::text`]) and an event's link kept only when it is https ([`crate::link`]).

use contracts::{
    Timestamp,
    v2::{CongestionLevel, PrecipitationType, Sky},
};
use serde_json::Value;

use crate::seoul::{self, Answer, block, count, number, text};
use crate::{kst, link::Link, outcome::Failure, text as caps};

/// What one area's reading carried. Every part is optional: a park may have no weather block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    pub congestion: Option<Congestion>,
    pub forecast: Vec<ForecastHour>,
    pub weather: Option<Weather>,
    pub events: Vec<AreaEvent>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Congestion {
    pub observed_at: Timestamp,
    pub level: CongestionLevel,
    pub message_ko: Option<String>,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ForecastHour {
    pub target_at: Timestamp,
    pub level: CongestionLevel,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Weather {
    pub observed_at: Timestamp,
    pub temperature_c: Option<f64>,
    pub precipitation: Option<PrecipitationType>,
    /// From the next hour's forecast.
    pub sky: Option<Sky>,
    pub rain_chance_percent: Option<u8>,
    pub pm10: Option<u32>,
    pub pm25: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AreaEvent {
    pub title_ko: String,
    pub place_ko: Option<String>,
    pub starts_on: jiff::civil::Date,
    pub ends_on: jiff::civil::Date,
    pub free: Option<bool>,
    /// The event's page, if it is an https link.
    pub link: Link,
    /// The organiser marked it cancelled (`crate::events::marked_cancelled`, read on the whole title).
    pub cancelled: bool,
}

/// Seoul's four congestion levels; anything else fails loudly as drift.
pub fn level(korean: &str) -> Result<CongestionLevel, Failure> {
    match korean.trim() {
        "여유" => Ok(CongestionLevel::Relaxed),
        "보통" => Ok(CongestionLevel::Normal),
        "약간 붐빔" => Ok(CongestionLevel::SlightlyCrowded),
        "붐빔" => Ok(CongestionLevel::Crowded),
        other => Err(Failure::drift(format!("unknown congestion level `{other}`"))),
    }
}

/// Parses a `citydata` answer. `Ok(None)` means the source has no data for the area (`INFO-200`, or an
/// answer for another area).
pub fn parse(body: &[u8], area: &str) -> Result<Option<Reading>, Failure> {
    let value = match seoul::classify(body, "citydata")? {
        Answer::NoData => return Ok(None),
        Answer::Data(value) => value,
    };
    let Some(city) = value.get("CITYDATA").filter(|city| city.is_object()) else {
        return Err(Failure::drift("citydata: no CITYDATA object"));
    };
    if let Some(name) = text(city.get("AREA_NM"))
        && name != area
    {
        return Err(Failure::drift(format!("asked for {area}, answered for {name}")));
    }

    let mut reading = Reading::default();
    if let Some(live) = block(city, "LIVE_PPLTN_STTS").first() {
        let observed_at = text(live.get("PPLTN_TIME"))
            .and_then(|time| kst::parse_datetime(&time))
            .ok_or_else(|| Failure::drift("LIVE_PPLTN_STTS without a readable PPLTN_TIME"))?;
        let level_text = text(live.get("AREA_CONGEST_LVL"))
            .ok_or_else(|| Failure::drift("no AREA_CONGEST_LVL"))?;
        reading.congestion = Some(Congestion {
            observed_at,
            level: level(&level_text)?,
            message_ko: text(live.get("AREA_CONGEST_MSG"))
                .map(|message| caps::cap(message, caps::MESSAGE_CHARS)),
            population_min: count(live.get("AREA_PPLTN_MIN")),
            population_max: count(live.get("AREA_PPLTN_MAX")),
        });
        for hour in block(live, "FCST_PPLTN") {
            let (Some(target_at), Some(level_text)) = (
                text(hour.get("FCST_TIME")).and_then(|time| kst::parse_datetime(&time)),
                text(hour.get("FCST_CONGEST_LVL")),
            ) else {
                return Err(Failure::drift("FCST_PPLTN entry without time or level"));
            };
            reading.forecast.push(ForecastHour {
                target_at,
                level: level(&level_text)?,
                population_min: count(hour.get("FCST_PPLTN_MIN")),
                population_max: count(hour.get("FCST_PPLTN_MAX")),
            });
        }
    }
    if let Some(weather) = block(city, "WEATHER_STTS").first() {
        reading.weather = parse_weather(weather)?;
    }
    for event in block(city, "EVENT_STTS") {
        if let Some(event) = parse_event(event) {
            reading.events.push(event);
        }
    }
    Ok(Some(reading))
}

fn parse_weather(weather: &Value) -> Result<Option<Weather>, Failure> {
    let Some(observed_at) =
        text(weather.get("WEATHER_TIME")).and_then(|time| kst::parse_datetime(&time))
    else {
        return Err(Failure::drift("WEATHER_STTS without a readable WEATHER_TIME"));
    };
    let precipitation = text(weather.get("PRECPT_TYPE")).map(|kind| match kind.as_str() {
        "없음" => PrecipitationType::None,
        "비" => PrecipitationType::Rain,
        "비/눈" | "눈/비" => PrecipitationType::RainSnow,
        "눈" => PrecipitationType::Snow,
        "소나기" => PrecipitationType::Shower,
        _ => PrecipitationType::Unknown,
    });
    let next_hour = block(weather, "FCST24HOURS").into_iter().next();
    let sky = next_hour.and_then(|hour| text(hour.get("SKY_STTS"))).map(|sky| match sky.as_str() {
        "맑음" => Sky::Clear,
        "구름많음" => Sky::PartlyCloudy,
        "흐림" => Sky::Overcast,
        _ => Sky::Unknown,
    });
    Ok(Some(Weather {
        observed_at,
        temperature_c: number(weather.get("TEMP")).filter(|t| (-50.0..=60.0).contains(t)),
        precipitation,
        sky,
        rain_chance_percent: next_hour
            .and_then(|hour| count(hour.get("RAIN_CHANCE")))
            .and_then(|chance| u8::try_from(chance.min(100)).ok()),
        pm10: count(weather.get("PM10")),
        pm25: count(weather.get("PM25")),
    }))
}

fn parse_event(event: &Value) -> Option<AreaEvent> {
    let title = text(event.get("EVENT_NM"))?;
    let period = text(event.get("EVENT_PERIOD"))?;
    let (start, end) = period.split_once('~').unwrap_or((&period, &period));
    Some(AreaEvent {
        cancelled: crate::events::marked_cancelled(&title),
        title_ko: caps::cap(title, caps::TITLE_CHARS),
        place_ko: text(event.get("EVENT_PLACE")).map(|place| caps::cap(place, caps::NAME_CHARS)),
        starts_on: kst::parse_date(start)?,
        ends_on: kst::parse_date(end)?,
        free: text(event.get("PAY_YN")).map(|paid| paid != "Y" && paid != "유료"),
        link: Link::read(event.get("URL").and_then(Value::as_str)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorClass;

    const YEOUIDO: &[u8] = include_bytes!("../fixtures/citydata/yeouido.json");
    const NESTED: &[u8] = include_bytes!("../fixtures/citydata/banpo_nested_blocks.json");

    #[test]
    fn reads_congestion_forecast_weather_and_events() {
        let reading = parse(YEOUIDO, "여의도한강공원").unwrap().unwrap();
        let congestion = reading.congestion.unwrap();
        assert_eq!(congestion.level, CongestionLevel::SlightlyCrowded);
        assert_eq!(congestion.observed_at.to_string(), "2026-06-14T08:20:00Z");
        assert_eq!(
            (congestion.population_min, congestion.population_max),
            (Some(34_000), Some(36_000))
        );
        assert_eq!(reading.forecast.len(), 2);
        assert_eq!(reading.forecast[0].level, CongestionLevel::Crowded);
        let weather = reading.weather.unwrap();
        assert_eq!(weather.temperature_c, Some(26.3));
        assert_eq!(weather.precipitation, Some(PrecipitationType::None));
        assert_eq!(weather.sky, Some(Sky::PartlyCloudy));
        assert_eq!(weather.rain_chance_percent, Some(20));
        assert_eq!(reading.events.len(), 1);
        assert_eq!(reading.events[0].ends_on.to_string(), "2026-06-30");
    }

    #[test]
    fn an_area_event_link_is_kept_only_when_it_is_https_and_text_is_capped() {
        let with_url = |url: &str| {
            let body = String::from_utf8_lossy(YEOUIDO)
                .replace("https://example.org/events/summer", url)
                .replace(
                    "\"AREA_CONGEST_MSG\":\"",
                    &format!("\"AREA_CONGEST_MSG\":\"{}", "붐빔 ".repeat(400)),
                );
            parse(body.as_bytes(), "여의도한강공원").unwrap().unwrap()
        };
        let safe = with_url("https://example.org/festival");
        assert_eq!(
            safe.events[0].link.url().map(|url| url.as_str()),
            Some("https://example.org/festival")
        );
        assert_eq!(with_url("http://example.org/festival").events[0].link.url(), None);
        let message = safe.congestion.unwrap().message_ko.unwrap();
        assert_eq!(message.chars().count(), caps::MESSAGE_CHARS);
        let unsafe_link = with_url("javascript:alert(1)");
        assert_eq!(unsafe_link.events.len(), 1, "the event stays");
        assert_eq!(unsafe_link.events[0].link.dropped().map(|why| why.label()), Some("javascript"));
    }

    #[test]
    fn blocks_as_objects_or_nested_under_their_name_read_the_same() {
        let reading = parse(NESTED, "반포한강공원").unwrap().unwrap();
        assert_eq!(reading.congestion.unwrap().level, CongestionLevel::Relaxed);
        assert_eq!(reading.weather.unwrap().temperature_c, Some(21.0));
    }

    #[test]
    fn info_200_is_no_data() {
        let body = r#"{"RESULT":{"RESULT.CODE":"INFO-200","RESULT.MESSAGE":"해당하는 데이터가 없습니다."}}"#.as_bytes();
        assert_eq!(parse(body, "강서한강공원").unwrap(), None);
    }

    #[test]
    fn an_unknown_congestion_level_is_drift() {
        let body = String::from_utf8_lossy(YEOUIDO).replace("\"약간 붐빔\"", "\"매우 붐빔\"");
        assert_eq!(
            parse(body.as_bytes(), "여의도한강공원").unwrap_err().class,
            ErrorClass::SchemaDrift
        );
    }

    #[test]
    fn an_answer_for_another_area_is_drift() {
        assert_eq!(parse(YEOUIDO, "반포한강공원").unwrap_err().class, ErrorClass::SchemaDrift);
    }

    #[test]
    fn truncated_and_wrongly_typed_bodies_fail_without_panicking() {
        assert_eq!(
            parse(&YEOUIDO[..YEOUIDO.len() / 2], "여의도한강공원").unwrap_err().class,
            ErrorClass::UnexpectedContent
        );
        let wrong = String::from_utf8_lossy(YEOUIDO)
            .replace("\"PPLTN_TIME\":\"2026-06-14 17:20\"", "\"PPLTN_TIME\":1718");
        assert_eq!(
            parse(wrong.as_bytes(), "여의도한강공원").unwrap_err().class,
            ErrorClass::SchemaDrift
        );
    }
}
