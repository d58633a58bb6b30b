-- Links a run's items carried that were not https, dropped before storing (the items are stored without
-- them), grouped by why: `[{"reason": "javascript", "items": ["hn-…"]}]`; null when none were dropped.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

alter table ingest.ingestion_run add column dropped_links jsonb;
