//! KMA short-term forecast, the fallback weather source: one request per grid cell, which is the share of
//! every park in that cell.

use std::collections::HashMap;

use contracts::freshness::SourceId;
use upstream::kma;

use super::{
    CollectError, Collector, Context, encode_segment, host_down, key_or_missing, parks,
    parks_not_reached,
};
use crate::batch::{Batch, PartResult, WeatherReading};

/// KMA short-term forecast per grid cell.
#[derive(Debug, Default)]
pub struct KmaWeather;

impl Collector for KmaWeather {
    fn source(&self) -> SourceId {
        SourceId::KmaForecast
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, CollectError> {
        let key = key_or_missing(&ctx.upstreams.kma_api_key, "KMA_API_KEY")?;
        let parks = parks(&ctx.pool).await?;
        let (base_date, base_time) = kma::base_time(ctx.now);
        let mut by_cell: HashMap<(i32, i32), Vec<String>> = HashMap::new();
        for park in &parks {
            by_cell
                .entry(kma::grid(park.center.0, park.center.1))
                .or_default()
                .push(park.park_id.clone());
        }
        let mut cells: Vec<_> = by_cell.into_iter().collect();
        cells.sort();
        let mut batch = Batch::default();
        for (index, ((nx, ny), park_ids)) in cells.iter().enumerate() {
            let url = ctx.upstreams.kma_api_url.join(&format!(
                "/getVilageFcst?serviceKey={}&pageNo=1&numOfRows=1000&dataType=JSON&base_date={base_date}&base_time={base_time}&nx={nx}&ny={ny}",
                encode_segment(&key)
            ));
            let label = format!("getVilageFcst {nx},{ny}");
            let parsed = ctx
                .fetcher
                .get(&url, &label, &[])
                .await
                .and_then(|fetched| kma::parse(&fetched.body, ctx.now));
            match parsed {
                Ok(Some(forecast)) => {
                    for park_id in park_ids {
                        batch.part(park_id, PartResult::Delivered);
                        batch.weather.push(WeatherReading {
                            park_id: park_id.clone(),
                            observed_at: forecast.issued_at,
                            source: SourceId::KmaForecast,
                            temperature_c: forecast.temperature_c,
                            precipitation: forecast.precipitation,
                            sky: forecast.sky,
                            rain_chance_percent: forecast.rain_chance_percent,
                            pm10: None,
                            pm25: None,
                        });
                    }
                }
                Ok(None) => {
                    for park_id in park_ids {
                        batch.part(park_id, PartResult::NoData);
                    }
                }
                Err(failure) => {
                    for park_id in park_ids {
                        batch.part(park_id, PartResult::Failed(failure.clone()));
                    }
                    if host_down(&failure) {
                        let rest =
                            cells[index + 1..].iter().flat_map(|(_, ids)| ids).map(String::as_str);
                        parks_not_reached(&mut batch, rest, &failure);
                        break;
                    }
                }
            }
        }
        Ok(batch.unless_no_park_answered()?)
    }
}
