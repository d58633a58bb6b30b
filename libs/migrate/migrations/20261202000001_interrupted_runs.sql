-- Runs whose process died mid-run (a kill, a lost node) are closed by the next leader as failed with the
-- class `interrupted`, instead of staying unfinished forever.
--
-- migration-kind: expand (the error-class check dropped here is replaced in the same transaction by a wider one that admits everything the old one did plus `interrupted`; readers take the class as text)
--
-- The wider check is added NOT VALID and validated by the next migration in its own transaction, which does
-- not block writers.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

-- squawk-ignore ban-drop-constraint
alter table ingest.ingestion_run drop constraint ingestion_run_error_class_check;
alter table ingest.ingestion_run add constraint ingestion_run_error_class_check
    check (
        error_class in (
            'connect', 'timeout', 'tls', 'http_status', 'upstream_error', 'unexpected_content',
            'schema_drift', 'quota', 'auth', 'unmapped', 'too_large', 'interrupted'
        )
    ) not valid;
