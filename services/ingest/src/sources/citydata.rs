//! Seoul real-time city data, one request per park: congestion now and Seoul's hourly outlook, weather, and
//! the area's events. Each park's request is its share of the run; `INFO-200` for a park is "no item".

use contracts::freshness::SourceId;
use upstream::{citydata, events};

use super::{
    CollectError, Collector, Context, host_down, key_or_missing, parks, parks_not_reached,
    seoul_url,
};
use crate::{
    batch::{
        Batch, CongestionReading, EventReading, EventSet, OfficialForecast, PartResult,
        WeatherReading,
    },
    outcome::Failure,
};

/// Seoul real-time city data, one request per park.
#[derive(Debug, Default)]
pub struct Citydata;

impl Collector for Citydata {
    fn source(&self) -> SourceId {
        SourceId::SeoulCitydata
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, CollectError> {
        let key = key_or_missing(&ctx.upstreams.seoul_openapi_key, "SEOUL_OPENAPI_KEY")?;
        let parks = parks(&ctx.pool).await?;
        let mut batch = Batch::default();
        // The area's events block lists what is on now; it is not a complete list, so nothing is inferred
        // from an event's absence.
        let mut area_events =
            EventSet { source: SourceId::SeoulCitydata, items: Vec::new(), complete: false };
        for (index, park) in parks.iter().enumerate() {
            let url = seoul_url(
                &ctx.upstreams.seoul_openapi_url,
                &key,
                "citydata",
                (1, 5),
                &[&park.citydata_area],
            );
            let label = format!("citydata {}", park.park_id);
            let parsed = ctx
                .fetcher
                .get(&url, &label, &[])
                .await
                .and_then(|fetched| citydata::parse(&fetched.body, &park.citydata_area))
                .map_err(|failure| {
                    Failure::new(failure.class, format!("{label}: {}", failure.message))
                });
            let reading = match parsed {
                Ok(Some(reading)) => reading,
                Ok(None) => {
                    batch.part(&park.park_id, PartResult::NoData);
                    continue;
                }
                Err(failure) => {
                    let stop = host_down(&failure);
                    batch.part(&park.park_id, PartResult::Failed(failure.clone()));
                    if stop {
                        let rest = parks[index + 1..].iter().map(|park| park.park_id.as_str());
                        parks_not_reached(&mut batch, rest, &failure);
                        break;
                    }
                    continue;
                }
            };
            batch.part(&park.park_id, PartResult::Delivered);
            if let Some(congestion) = reading.congestion {
                let issued_at = congestion.observed_at;
                batch.official_forecast.extend(reading.forecast.into_iter().map(|hour| {
                    OfficialForecast {
                        park_id: park.park_id.clone(),
                        issued_at,
                        target_at: hour.target_at,
                        level: hour.level,
                        population_min: hour.population_min,
                        population_max: hour.population_max,
                    }
                }));
                batch.congestion.push(CongestionReading {
                    park_id: park.park_id.clone(),
                    observed_at: congestion.observed_at,
                    level: congestion.level,
                    message_ko: congestion.message_ko,
                    population_min: congestion.population_min,
                    population_max: congestion.population_max,
                });
            }
            if let Some(weather) = reading.weather {
                batch.weather.push(WeatherReading {
                    park_id: park.park_id.clone(),
                    observed_at: weather.observed_at,
                    source: SourceId::SeoulCitydata,
                    temperature_c: weather.temperature_c,
                    precipitation: weather.precipitation,
                    sky: weather.sky,
                    rain_chance_percent: weather.rain_chance_percent,
                    pm10: weather.pm10,
                    pm25: weather.pm25,
                });
            }
            for event in reading.events {
                let content_key =
                    events::event_id(&event.title_ko, event.place_ko.as_deref(), event.starts_on);
                area_events.items.push(EventReading {
                    url: batch.link(&content_key, event.link),
                    content_key,
                    park_id: park.park_id.clone(),
                    cancelled: event.cancelled,
                    title_ko: event.title_ko,
                    place_ko: event.place_ko,
                    starts_on: event.starts_on,
                    ends_on: event.ends_on,
                    free: event.free,
                });
            }
        }
        batch.events = Some(area_events);
        Ok(batch.unless_no_park_answered()?)
    }
}
