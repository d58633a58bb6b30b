//! Translations of public-data text. The Korean source text is stored as is; translations live in
//! `ingest.translation`, keyed by the hash of the source text (`db::translation_key`), with their origin:
//!
//! - **curated**: reviewed overrides in `services/ingest/translations/curated.json`, synced at start-up and
//!   always preferred;
//! - **machine**: from a [`Translator`], off unless `TRANSLATOR_URL` is set. [`HttpTranslator`] speaks the
//!   LibreTranslate API (`POST /translate {q, source, target}` → `{translatedText}`), which self-hosted and
//!   commercial services offer.
//!
//! The api serves `lang` from these with a Korean fallback, and says which language a text is in.

use std::{collections::BTreeMap, future::Future, time::Duration};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The curated overrides shipped with this release: Korean text → language → text.
pub const CURATED: &str = include_str!("../translations/curated.json");

/// Languages we translate into, as stored (`zh-Hans`).
pub const TARGETS: [&str; 3] = ["en", "ja", "zh-Hans"];

/// Why a translation failed.
#[derive(Debug, thiserror::Error)]
#[error("translator: {0}")]
pub struct TranslateError(pub String);

/// A machine translator from Korean.
pub trait Translator: Send + Sync {
    fn translate(
        &self,
        text: &str,
        target: &str,
    ) -> impl Future<Output = Result<String, TranslateError>> + Send;
}

/// A LibreTranslate-compatible HTTP translator.
#[derive(Clone, Debug)]
pub struct HttpTranslator {
    client: reqwest::Client,
    url: String,
    api_key: Option<settings::Secret>,
}

impl HttpTranslator {
    pub fn new(url: &str, api_key: Option<settings::Secret>) -> anyhow::Result<HttpTranslator> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(crate::fetch::USER_AGENT)
            .build()?;
        Ok(HttpTranslator { client, url: url.trim_end_matches('/').to_owned(), api_key })
    }
}

impl Translator for HttpTranslator {
    async fn translate(&self, text: &str, target: &str) -> Result<String, TranslateError> {
        // LibreTranslate names Simplified Chinese `zh`.
        let target = if target == "zh-Hans" { "zh" } else { target };
        let mut body =
            serde_json::json!({"q": text, "source": "ko", "target": target, "format": "text"});
        if let Some(key) = &self.api_key {
            body["api_key"] = key.expose().into();
        }
        let response = self
            .client
            .post(format!("{}/translate", self.url))
            .json(&body)
            .send()
            .await
            .map_err(|error| TranslateError(error.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(TranslateError(format!("HTTP {}", response.status())));
        }
        let answer: serde_json::Value = response
            .json()
            .await
            .map_err(|error| TranslateError(format!("unreadable answer: {error}")))?;
        answer["translatedText"]
            .as_str()
            .filter(|text| !text.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| TranslateError("answer without translatedText".into()))
    }
}

/// Writes the curated overrides (curated always replaces what a machine produced).
pub async fn sync_curated(pool: &PgPool) -> anyhow::Result<usize> {
    let overrides: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(CURATED)?;
    let mut rows = 0;
    let mut tx = pool.begin().await?;
    for (source, translations) in &overrides {
        for (lang, text) in translations {
            anyhow::ensure!(
                TARGETS.contains(&lang.as_str()),
                "curated.json: unknown language `{lang}` for `{source}`"
            );
            sqlx::query(
                "insert into ingest.translation (source_hash, lang, text, origin) values ($1, $2, $3, 'curated')
                 on conflict (source_hash, lang) do update set text = excluded.text, origin = 'curated'",
            )
            .bind(db::translation_key(source))
            .bind(lang)
            .bind(text)
            .execute(&mut *tx)
            .await?;
            rows += 1;
        }
    }
    tx.commit().await?;
    Ok(rows)
}

/// Texts shown to users around `now` that lack a translation in some language, most recent first.
async fn missing(
    pool: &PgPool,
    limit: i64,
    now: contracts::Timestamp,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "with texts as (
             select message_ko as text, max(observed_at) as seen from ingest.congestion_observation
              where message_ko is not null and observed_at > $3 - interval '1 day' group by message_ko
             union all
             select title_ko, max(last_seen_at) from ingest.event where ends_on >= ($3 at time zone 'Asia/Seoul')::date group by title_ko
             union all
             select place_ko, max(last_seen_at) from ingest.event
              where ends_on >= ($3 at time zone 'Asia/Seoul')::date and place_ko is not null group by place_ko
             union all
             select title_ko, max(updated_at) from ingest.notice where ends_at is null or ends_at > $3 group by title_ko
         )
         select t.text, lang
         from (select text, max(seen) as seen from texts group by text) t
         cross join unnest($1::text[]) lang
         where not exists (
             select 1 from ingest.translation tr where tr.source_hash = encode(sha256(convert_to(t.text, 'UTF8')), 'hex') and tr.lang = lang
         )
         order by t.seen desc, t.text, lang
         limit $2",
    )
    .bind(TARGETS.to_vec())
    .bind(limit)
    .bind(db::db_time(now))
    .fetch_all(pool)
    .await
}

/// Translates up to `limit` missing (text, language) pairs of texts shown around `now`; returns how many were stored. Failures are
/// logged and retried next round: the api falls back to Korean meanwhile.
pub async fn translate_missing(
    pool: &PgPool,
    translator: &impl Translator,
    limit: i64,
    now: contracts::Timestamp,
) -> sqlx::Result<usize> {
    let mut stored = 0;
    for (text, lang) in missing(pool, limit, now).await? {
        match translator.translate(&text, &lang).await {
            Ok(translated) => {
                sqlx::query(
                    "insert into ingest.translation (source_hash, lang, text, origin) values ($1, $2, $3, 'machine')
                     on conflict (source_hash, lang) do nothing",
                )
                .bind(db::translation_key(&text))
                .bind(&lang)
                .bind(translated)
                .execute(pool)
                .await?;
                stored += 1;
            }
            Err(error) => {
                tracing::warn!(%error, lang, "machine translation failed; serving Korean meanwhile");
                break;
            }
        }
    }
    Ok(stored)
}

/// Translates what is missing every `every` until `shutdown`, stamping translations by `clock`.
pub async fn run(
    pool: PgPool,
    translator: impl Translator,
    every: Duration,
    clock: server::clock::Clock,
    shutdown: CancellationToken,
) {
    loop {
        match translate_missing(&pool, &translator, 100, clock.now()).await {
            Ok(0) => {}
            Ok(stored) => tracing::info!(stored, "machine translations stored"),
            Err(error) => tracing::warn!(%error, "translation round failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
