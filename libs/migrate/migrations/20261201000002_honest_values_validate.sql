-- Validates the outcome checks widened by the previous migration, in a transaction of its own: validation
-- scans the tables under a SHARE UPDATE EXCLUSIVE lock, so collection keeps writing meanwhile.
set local lock_timeout = '1s';
set local statement_timeout = '300s';
alter table ingest.ingestion_run validate constraint ingestion_run_outcome_check;
alter table ingest.ingestion_run validate constraint ingestion_run_failure_has_class;
alter table ingest.source_status validate constraint source_status_last_outcome_check;
