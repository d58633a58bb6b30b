//! Installations and their preferences. Every change after registration needs the installation's secret;
//! a wrong secret and an unknown installation get the same answer, so ids cannot be probed.

use contracts::Timestamp;
use sqlx::PgPool;

use crate::secret;

/// Why a request about an installation was refused.
#[derive(Debug, thiserror::Error)]
pub enum InstallationError {
    /// Unknown installation or wrong secret (deliberately indistinguishable).
    #[error("no such installation, or the secret does not match")]
    NotFound,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The fields an installation is registered or refreshed with.
#[derive(Clone, Debug)]
pub struct InstallationFields {
    pub apns_token: String,
    pub apns_environment: String,
    pub locale: String,
    pub app_version: String,
}

/// An installation as stored (never the secret).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Installation {
    pub installation_id: String,
    pub apns_environment: String,
    pub locale: String,
    pub app_version: String,
    pub active: bool,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
}

/// One preference as the app sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct PreferenceFields {
    pub target_kind: String,
    pub target_id: String,
    pub signal: String,
    pub threshold: Option<i64>,
    pub weekdays: Vec<String>,
    pub enabled: bool,
}

fn validate(fields: &InstallationFields) -> Result<(), InstallationError> {
    let invalid = |field: &str, message: &str| InstallationError::Invalid {
        field: field.into(),
        message: message.into(),
    };
    let token_ok = (64..=200).contains(&fields.apns_token.len())
        && fields.apns_token.len().is_multiple_of(2)
        && fields.apns_token.bytes().all(|b| b.is_ascii_hexdigit());
    if !token_ok {
        return Err(invalid("apns_token", "expected 64 to 200 hexadecimal characters"));
    }
    if !matches!(fields.apns_environment.as_str(), "production" | "sandbox") {
        return Err(invalid("apns_environment", "expected production or sandbox"));
    }
    if fields.locale.is_empty() || fields.locale.len() > 35 {
        return Err(invalid("locale", "expected a BCP 47 locale"));
    }
    if fields.app_version.is_empty() || fields.app_version.len() > 32 {
        return Err(invalid("app_version", "expected MAJOR.MINOR[.PATCH] (BUILD)"));
    }
    Ok(())
}

/// Registers a new installation; returns it and its secret (the only time the secret exists in clear).
pub async fn register(
    pool: &PgPool,
    fields: &InstallationFields,
) -> Result<(Installation, String), InstallationError> {
    validate(fields)?;
    let installation_id = secret::new_installation_id();
    let secret = secret::new_secret();
    let installation: Installation = sqlx::query_as(
        "insert into push.installation (installation_id, secret_hash, apns_token, apns_environment, locale, app_version)
         values ($1, $2, $3, $4, $5, $6)
         returning installation_id, apns_environment, locale, app_version, active, created_at, updated_at",
    )
    .bind(&installation_id)
    .bind(secret::hash(&secret))
    .bind(fields.apns_token.to_ascii_lowercase())
    .bind(&fields.apns_environment)
    .bind(&fields.locale)
    .bind(&fields.app_version)
    .fetch_one(pool)
    .await?;
    Ok((installation, secret))
}

/// Checks the secret; `NotFound` for an unknown id or a wrong secret alike.
pub(crate) async fn authorize(
    pool: &PgPool,
    installation_id: &str,
    presented: &str,
) -> Result<(), InstallationError> {
    let stored: Option<(String,)> =
        sqlx::query_as("select secret_hash from push.installation where installation_id = $1")
            .bind(installation_id)
            .fetch_optional(pool)
            .await?;
    // Hash even when the id is unknown, so timing does not tell the two apart.
    let stored_hash = stored.map_or_else(|| secret::hash("unknown installation"), |(hash,)| hash);
    if secret::matches(presented, &stored_hash)
        && stored_hash != secret::hash("unknown installation")
    {
        Ok(())
    } else {
        Err(InstallationError::NotFound)
    }
}

/// Refreshes the token and app details; a refreshed token reactivates a deactivated installation.
pub async fn refresh(
    pool: &PgPool,
    installation_id: &str,
    presented_secret: &str,
    fields: &InstallationFields,
) -> Result<Installation, InstallationError> {
    validate(fields)?;
    authorize(pool, installation_id, presented_secret).await?;
    Ok(sqlx::query_as(
        "update push.installation
         set apns_token = $2, apns_environment = $3, locale = $4, app_version = $5,
             active = true, deactivated_reason = null, updated_at = now()
         where installation_id = $1
         returning installation_id, apns_environment, locale, app_version, active, created_at, updated_at",
    )
    .bind(installation_id)
    .bind(fields.apns_token.to_ascii_lowercase())
    .bind(&fields.apns_environment)
    .bind(&fields.locale)
    .bind(&fields.app_version)
    .fetch_one(pool)
    .await?)
}

/// The (kind, id) targets an installation has preferences on.
async fn targets(
    executor: impl sqlx::PgExecutor<'_>,
    installation_id: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "select distinct target_kind, target_id from push.preference where installation_id = $1",
    )
    .bind(installation_id)
    .fetch_all(executor)
    .await
}

/// Replaces all preferences and the quiet hours (minutes after midnight, Asia/Seoul). Returns when, and the
/// targets removed and now watched (for the preference index).
pub async fn replace_preferences(
    pool: &PgPool,
    installation_id: &str,
    presented_secret: &str,
    quiet_hours: Option<(u16, u16)>,
    preferences: &[PreferenceFields],
) -> Result<(Timestamp, Vec<(String, String)>, Vec<(String, String)>), InstallationError> {
    authorize(pool, installation_id, presented_secret).await?;
    for (i, preference) in preferences.iter().enumerate() {
        let invalid = |field: &str, message: &str| InstallationError::Invalid {
            field: format!("subscriptions[{i}].{field}"),
            message: message.into(),
        };
        if !matches!(preference.target_kind.as_str(), "park" | "lot") {
            return Err(invalid("target_kind", "expected park or lot"));
        }
        if preference.threshold.is_some_and(|threshold| !(0..=5_000).contains(&threshold)) {
            return Err(invalid("threshold", "expected 0 to 5000 spaces"));
        }
    }
    let mut tx = pool.begin().await?;
    let removed = targets(&mut *tx, installation_id).await?;
    sqlx::query("delete from push.preference where installation_id = $1")
        .bind(installation_id)
        .execute(&mut *tx)
        .await?;
    for (position, preference) in preferences.iter().enumerate() {
        sqlx::query(
            "insert into push.preference (installation_id, position, target_kind, target_id, signal, threshold, weekdays, enabled)
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(installation_id)
        .bind(position as i16)
        .bind(&preference.target_kind)
        .bind(&preference.target_id)
        .bind(&preference.signal)
        .bind(preference.threshold.map(|t| t as i32))
        .bind(&preference.weekdays)
        .bind(preference.enabled)
        .execute(&mut *tx)
        .await?;
    }
    let (updated_at,): (time::OffsetDateTime,) = sqlx::query_as(
        "update push.installation set quiet_start_minute = $2, quiet_end_minute = $3, updated_at = now()
         where installation_id = $1 returning updated_at",
    )
    .bind(installation_id)
    .bind(quiet_hours.map(|(start, _)| start as i16))
    .bind(quiet_hours.map(|(_, end)| end as i16))
    .fetch_one(&mut *tx)
    .await?;
    let watched = targets(&mut *tx, installation_id).await?;
    tx.commit().await?;
    Ok((db::wire_time(updated_at), removed, watched))
}

/// Deletes the installation with everything it owns; returns the targets it watched.
pub async fn delete(
    pool: &PgPool,
    installation_id: &str,
    presented_secret: &str,
) -> Result<Vec<(String, String)>, InstallationError> {
    authorize(pool, installation_id, presented_secret).await?;
    let removed = targets(pool, installation_id).await?;
    sqlx::query("delete from push.installation where installation_id = $1")
        .bind(installation_id)
        .execute(pool)
        .await?;
    Ok(removed)
}
