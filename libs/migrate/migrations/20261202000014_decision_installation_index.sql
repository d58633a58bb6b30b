-- no-transaction
-- Deleting an installation cascades to its decisions, which the cool-down's partial index (push_now only)
-- cannot find: indexed by installation, so a delete does not scan a year of decisions.
-- Built concurrently, outside a transaction (one statement per file: PostgreSQL runs several sent together in
-- an implicit transaction, which CONCURRENTLY refuses); no `if not exists`, so a build that failed halfway
-- fails the next migrate loudly instead of passing for done.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, require-statement-timeout, require-lock-timeout
create index concurrently decision_installation_idx on push.decision (installation_id);
