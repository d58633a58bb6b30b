-- no-transaction
-- Retention deletes decisions older than its period: indexed by time, so a prune costs what it removes.
-- Built concurrently, outside a transaction (one statement per file: PostgreSQL runs several sent together in
-- an implicit transaction, which CONCURRENTLY refuses); no `if not exists`, so a build that failed halfway
-- fails the next migrate loudly instead of passing for done.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, require-statement-timeout, require-lock-timeout
create index concurrently decision_decided_at_idx on push.decision (decided_at);
