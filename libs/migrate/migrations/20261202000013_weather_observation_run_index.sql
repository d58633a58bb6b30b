-- no-transaction
-- Pruning old runs checks that no kept weather observation names them, and "what did run N store?" is an
-- operator's question: indexed by run, so neither scans the whole history.
-- Built concurrently, outside a transaction (one statement per file: PostgreSQL runs several sent together in
-- an implicit transaction, which CONCURRENTLY refuses); no `if not exists`, so a build that failed halfway
-- fails the next migrate loudly instead of passing for done.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, require-statement-timeout, require-lock-timeout
create index concurrently weather_observation_run_idx on ingest.weather_observation (run_id);
