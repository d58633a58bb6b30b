-- Validates the error-class check widened by the previous migration, in a transaction of its own: validation
-- scans the table under a SHARE UPDATE EXCLUSIVE lock, so collection keeps writing meanwhile.
set local lock_timeout = '1s';
set local statement_timeout = '300s';
alter table ingest.ingestion_run validate constraint ingestion_run_error_class_check;
