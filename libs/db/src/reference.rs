//! Curated reference data (`libs/db/reference/hangang.toml`) and the sync that makes the `reference` schema
//! match it.
//!
//! The file is the source of truth: the sync inserts and updates every park, lot, facility and transit stop
//! it lists and deletes the ones it no longer lists. A lot that already has history cannot be deleted (its
//! observations reference it); the sync then fails with the lot's name, because dropping history needs a
//! deliberate migration, not a data edit.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sqlx::{PgPool, Postgres, Transaction};

/// The curated file shipped with this release.
pub const CURATED: &str = include_str!("../reference/hangang.toml");

/// Languages other than Korean that names may be given in.
const NAME_LANGUAGES: [&str; 3] = ["en", "ja", "zh-Hans"];

/// A latitude/longitude pair.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

/// The parsed, validated reference file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub version: String,
    #[serde(rename = "park")]
    pub parks: Vec<Park>,
    #[serde(skip)]
    pub checksum: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Park {
    pub park_id: String,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    pub short_names: BTreeMap<String, String>,
    pub center: LatLng,
    pub citydata_area: String,
    pub portal_region: i16,
    #[serde(default, rename = "lot")]
    pub lots: Vec<Lot>,
    #[serde(default, rename = "facility")]
    pub facilities: Vec<Facility>,
    #[serde(default, rename = "transit")]
    pub transit: Vec<TransitStop>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lot {
    pub lot_id: String,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    pub portal_names: Vec<String>,
    pub capacity: Option<i32>,
    pub entrance: Option<LatLng>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facility {
    pub facility_id: String,
    pub kind: String,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    pub location: LatLng,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitStop {
    pub stop_id: String,
    pub kind: String,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    #[serde(default)]
    pub lines: Vec<String>,
    pub walk_minutes: Option<i16>,
    pub location: LatLng,
}

/// Why a reference file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("not valid reference TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A rule of the file broken, and where.
    #[error("{0}")]
    Invalid(String),
}

/// `ReferenceError::Invalid` with a formatted message.
macro_rules! invalid {
    ($($message:tt)*) => {
        ReferenceError::Invalid(format!($($message)*))
    };
}

/// What a sync changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    pub version: String,
    /// `false` when the database already held this exact file.
    pub changed: bool,
    pub parks: usize,
    pub lots: usize,
}

impl Reference {
    /// The file shipped with this release.
    pub fn curated() -> Result<Reference, ReferenceError> {
        Reference::parse(CURATED)
    }

    /// Parses and validates a reference file.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let mut reference: Reference = toml::from_str(text)?;
        reference.checksum = crate::translation_key(text);
        reference.validate()?;
        Ok(reference)
    }

    fn validate(&self) -> Result<(), ReferenceError> {
        let mut ids = BTreeSet::new();
        let mut portal_names = BTreeSet::new();
        let mut regions = BTreeSet::new();
        let mut areas = BTreeSet::new();
        let mut unique = |kind: &str, id: &str| {
            if id.is_empty()
                || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid!("{kind} id `{id}` must be lowercase ascii, digits and '-'"));
            }
            if !ids.insert(format!("{kind}:{id}")) {
                return Err(invalid!("duplicate {kind} id `{id}`"));
            }
            Ok(())
        };
        for park in &self.parks {
            unique("park", &park.park_id)?;
            check_names(&park.park_id, &park.names, &NAME_LANGUAGES)?;
            check_names(&park.park_id, &park.short_names, &["ko", "en", "ja", "zh-Hans"])?;
            check_in_seoul(&park.park_id, park.center)?;
            if !regions.insert(park.portal_region) {
                return Err(invalid!(
                    "{}: portal_region {} used twice",
                    park.park_id,
                    park.portal_region
                ));
            }
            if !areas.insert(park.citydata_area.clone()) {
                return Err(invalid!("{}: citydata_area used twice", park.park_id));
            }
            for lot in &park.lots {
                unique("lot", &lot.lot_id)?;
                check_names(&lot.lot_id, &lot.names, &NAME_LANGUAGES)?;
                if lot.portal_names.is_empty() {
                    return Err(invalid!(
                        "{}: lists no portal_names, so no source can be mapped to it",
                        lot.lot_id
                    ));
                }
                for name in &lot.portal_names {
                    if !portal_names.insert(name.clone()) {
                        return Err(invalid!(
                            "{}: portal name `{name}` is already mapped to another lot",
                            lot.lot_id
                        ));
                    }
                }
                if lot.capacity.is_some_and(|capacity| capacity < 0) {
                    return Err(invalid!("{}: negative capacity", lot.lot_id));
                }
                if let Some(entrance) = lot.entrance {
                    check_in_seoul(&lot.lot_id, entrance)?;
                }
            }
            for facility in &park.facilities {
                unique("facility", &facility.facility_id)?;
                check_in_seoul(&facility.facility_id, facility.location)?;
            }
            for stop in &park.transit {
                unique("transit", &stop.stop_id)?;
                check_in_seoul(&stop.stop_id, stop.location)?;
            }
        }
        Ok(())
    }

    pub fn lot_count(&self) -> usize {
        self.parks.iter().map(|park| park.lots.len()).sum()
    }
}

fn check_names(
    owner: &str,
    names: &BTreeMap<String, String>,
    required: &[&str],
) -> Result<(), ReferenceError> {
    for lang in required {
        if names.get(*lang).is_none_or(|name| name.trim().is_empty()) {
            return Err(invalid!("{owner}: missing `{lang}` name"));
        }
    }
    Ok(())
}

/// Catches swapped or mistyped coordinates: everything we describe lies in Seoul.
fn check_in_seoul(owner: &str, point: LatLng) -> Result<(), ReferenceError> {
    if (37.4..=37.7).contains(&point.lat) && (126.7..=127.2).contains(&point.lng) {
        Ok(())
    } else {
        Err(invalid!("{owner}: ({}, {}) is not in Seoul", point.lat, point.lng))
    }
}

/// Makes the `reference` schema match `reference`. Runs in one transaction under an advisory lock, so two
/// replicas syncing at once apply it once, and readers never see a half-synced state.
pub async fn sync(pool: &PgPool, reference: &Reference) -> anyhow::Result<SyncReport> {
    let mut tx = pool.begin().await?;
    // Arbitrary but fixed key: "reference sync".
    sqlx::query("select pg_advisory_xact_lock(7245310001)").execute(&mut *tx).await?;
    let current: Option<(String,)> = sqlx::query_as("select checksum from reference.sync_state")
        .fetch_optional(&mut *tx)
        .await?;
    let report = SyncReport {
        version: reference.version.clone(),
        changed: current.as_ref().map(|(checksum,)| checksum) != Some(&reference.checksum),
        parks: reference.parks.len(),
        lots: reference.lot_count(),
    };
    if !report.changed {
        tx.commit().await?;
        return Ok(report);
    }
    write_all(&mut tx, reference).await?;
    sqlx::query(
        "insert into reference.sync_state (singleton, version, checksum, synced_at)
         values (true, $1, $2, now())
         on conflict (singleton) do update
         set version = excluded.version, checksum = excluded.checksum, synced_at = excluded.synced_at",
    )
    .bind(&reference.version)
    .bind(&reference.checksum)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(version = %report.version, parks = report.parks, lots = report.lots, "reference data synced");
    Ok(report)
}

async fn write_all(
    tx: &mut Transaction<'_, Postgres>,
    reference: &Reference,
) -> anyhow::Result<()> {
    let json = |names: &BTreeMap<String, String>| {
        serde_json::to_value(names).expect("string maps serialize")
    };
    let park_ids: Vec<&str> = reference.parks.iter().map(|p| p.park_id.as_str()).collect();
    let lots: Vec<(&Park, &Lot)> = reference
        .parks
        .iter()
        .flat_map(|park| park.lots.iter().map(move |lot| (park, lot)))
        .collect();
    let lot_ids: Vec<&str> = lots.iter().map(|(_, lot)| lot.lot_id.as_str()).collect();
    let facility_ids: Vec<&str> = reference
        .parks
        .iter()
        .flat_map(|p| p.facilities.iter().map(|f| f.facility_id.as_str()))
        .collect();
    let stop_ids: Vec<&str> =
        reference.parks.iter().flat_map(|p| p.transit.iter().map(|t| t.stop_id.as_str())).collect();

    // Children first, so deleting a park never trips a foreign key of a row we were about to delete anyway.
    sqlx::query("delete from reference.facility where facility_id <> all($1)")
        .bind(&facility_ids)
        .execute(&mut **tx)
        .await?;
    sqlx::query("delete from reference.transit where stop_id <> all($1)")
        .bind(&stop_ids)
        .execute(&mut **tx)
        .await?;
    let removed_lots: Vec<(String,)> =
        sqlx::query_as("select lot_id from reference.lot where lot_id <> all($1)")
            .bind(&lot_ids)
            .fetch_all(&mut **tx)
            .await?;
    for (lot_id,) in removed_lots {
        sqlx::query("delete from reference.lot where lot_id = $1").bind(&lot_id).execute(&mut **tx).await.map_err(
            |error| anyhow::anyhow!("lot `{lot_id}` was removed from the reference file but cannot be deleted ({error}); it probably has history, which needs a deliberate migration"),
        )?;
    }

    for (order, park) in reference.parks.iter().enumerate() {
        sqlx::query(
            "insert into reference.park (park_id, name_ko, names, short_names, center_lat, center_lng,
                                         citydata_area, portal_region, sort_order)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             on conflict (park_id) do update set
                name_ko = excluded.name_ko, names = excluded.names, short_names = excluded.short_names,
                center_lat = excluded.center_lat, center_lng = excluded.center_lng,
                citydata_area = excluded.citydata_area, portal_region = excluded.portal_region,
                sort_order = excluded.sort_order, updated_at = now()",
        )
        .bind(&park.park_id)
        .bind(&park.name_ko)
        .bind(json(&park.names))
        .bind(json(&park.short_names))
        .bind(park.center.lat)
        .bind(park.center.lng)
        .bind(&park.citydata_area)
        .bind(park.portal_region)
        .bind(order as i16)
        .execute(&mut **tx)
        .await?;
    }
    for (order, (park, lot)) in lots.iter().enumerate() {
        sqlx::query(
            "insert into reference.lot (lot_id, park_id, name_ko, names, capacity, entrance_lat, entrance_lng,
                                        portal_names, sort_order)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             on conflict (lot_id) do update set
                park_id = excluded.park_id, name_ko = excluded.name_ko, names = excluded.names,
                capacity = excluded.capacity, entrance_lat = excluded.entrance_lat,
                entrance_lng = excluded.entrance_lng, portal_names = excluded.portal_names,
                sort_order = excluded.sort_order, updated_at = now()",
        )
        .bind(&lot.lot_id)
        .bind(&park.park_id)
        .bind(&lot.name_ko)
        .bind(json(&lot.names))
        .bind(lot.capacity)
        .bind(lot.entrance.map(|point| point.lat))
        .bind(lot.entrance.map(|point| point.lng))
        .bind(&lot.portal_names)
        .bind(order as i16)
        .execute(&mut **tx)
        .await?;
    }
    for park in &reference.parks {
        for (order, facility) in park.facilities.iter().enumerate() {
            sqlx::query(
                "insert into reference.facility (facility_id, park_id, kind, name_ko, names, lat, lng, sort_order)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)
                 on conflict (facility_id) do update set
                    park_id = excluded.park_id, kind = excluded.kind, name_ko = excluded.name_ko,
                    names = excluded.names, lat = excluded.lat, lng = excluded.lng, sort_order = excluded.sort_order",
            )
            .bind(&facility.facility_id)
            .bind(&park.park_id)
            .bind(&facility.kind)
            .bind(&facility.name_ko)
            .bind(json(&facility.names))
            .bind(facility.location.lat)
            .bind(facility.location.lng)
            .bind(order as i16)
            .execute(&mut **tx)
            .await?;
        }
        for (order, stop) in park.transit.iter().enumerate() {
            sqlx::query(
                "insert into reference.transit (stop_id, park_id, kind, name_ko, names, lines, walk_minutes, lat, lng,
                                                sort_order)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 on conflict (stop_id) do update set
                    park_id = excluded.park_id, kind = excluded.kind, name_ko = excluded.name_ko,
                    names = excluded.names, lines = excluded.lines, walk_minutes = excluded.walk_minutes,
                    lat = excluded.lat, lng = excluded.lng, sort_order = excluded.sort_order",
            )
            .bind(&stop.stop_id)
            .bind(&park.park_id)
            .bind(&stop.kind)
            .bind(&stop.name_ko)
            .bind(json(&stop.names))
            .bind(&stop.lines)
            .bind(stop.walk_minutes)
            .bind(stop.location.lat)
            .bind(stop.location.lng)
            .bind(order as i16)
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query("delete from reference.park where park_id <> all($1)")
        .bind(&park_ids)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curated_file_covers_all_eleven_parks() {
        let reference = Reference::curated().unwrap();
        assert_eq!(reference.parks.len(), 11);
        assert_eq!(reference.lot_count(), 30);
        let regions: BTreeSet<i16> = reference.parks.iter().map(|p| p.portal_region).collect();
        assert_eq!(regions, (1..=11).collect());
    }

    #[test]
    fn rejects_a_portal_name_mapped_twice() {
        let text = CURATED.replacen(
            "portal_names = [\"여의도2주차장\"]",
            "portal_names = [\"여의도1주차장\"]",
            1,
        );
        let error = Reference::parse(&text).unwrap_err().to_string();
        assert!(error.contains("여의도1주차장") && error.contains("already mapped"), "{error}");
    }

    #[test]
    fn rejects_swapped_coordinates() {
        let text = CURATED.replacen(
            "center = { lat = 37.5285, lng = 126.9337 }",
            "center = { lat = 126.9337, lng = 37.5285 }",
            1,
        );
        let error = Reference::parse(&text).unwrap_err().to_string();
        assert!(error.contains("yeouido") && error.contains("not in Seoul"), "{error}");
    }

    #[test]
    fn rejects_a_missing_translation() {
        let text = CURATED.replacen(", ja = \"ヨイド漢江公園\"", "", 1);
        let error = Reference::parse(&text).unwrap_err().to_string();
        assert_eq!(error, "yeouido: missing `ja` name");
    }
}
