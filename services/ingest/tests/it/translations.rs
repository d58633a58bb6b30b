//! Curated translations win; machine translations fill the rest when a translator is configured.

use axum::{Json, Router, routing::post};
use contracts::freshness::SourceId;
use ingest::{
    store::Peers,
    translate::{self, HttpTranslator},
};
use serde_json::{Value, json};

use crate::support::{AFTERNOON, Harness};

/// A LibreTranslate-compatible fake that tags its output with the target language.
async fn fake_translator() -> String {
    let app = Router::new().route(
        "/translate",
        post(|Json(body): Json<Value>| async move {
            Json(json!({"translatedText": format!("[{}] {}", body["target"].as_str().unwrap(), body["q"].as_str().unwrap())}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn translation(harness: &Harness, text: &str, lang: &str) -> Option<(String, String)> {
    sqlx::query_as(
        "select text, origin from ingest.translation where source_hash = $1 and lang = $2",
    )
    .bind(db::translation_key(text))
    .bind(lang)
    .fetch_optional(&harness.database.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn curated_overrides_win_and_the_translator_fills_the_rest() {
    let harness = Harness::start(Peers::default()).await;
    harness.run(SourceId::SeoulCitydata, AFTERNOON).await;
    harness.run(SourceId::SeoulCulturalEvents, AFTERNOON).await;
    assert!(translate::sync_curated(&harness.database.pool).await.unwrap() > 0);

    let translator = HttpTranslator::new(&fake_translator().await, None).unwrap();
    let stored = translate::translate_missing(
        &harness.database.pool,
        &translator,
        500,
        crate::support::kst(AFTERNOON),
    )
    .await
    .unwrap();
    assert!(stored > 0);
    assert_eq!(
        translate::translate_missing(
            &harness.database.pool,
            &translator,
            500,
            crate::support::kst(AFTERNOON)
        )
        .await
        .unwrap(),
        0,
        "nothing left"
    );

    assert_eq!(
        translation(&harness, "한강 여름축제", "en").await,
        Some(("Hangang Summer Festival".into(), "curated".into())),
        "curated text is not replaced by a machine"
    );
    assert_eq!(
        translation(&harness, "달빛무지개분수 음악회", "zh-Hans").await,
        Some(("[zh] 달빛무지개분수 음악회".into(), "machine".into()))
    );
    harness.stop().await;
}
