-- no-transaction
-- Pruning old facts checks that no decision still names them: indexed by fact.
-- Built concurrently, outside a transaction (one statement per file: PostgreSQL runs several sent together in
-- an implicit transaction, which CONCURRENTLY refuses); no `if not exists`, so a build that failed halfway
-- fails the next migrate loudly instead of passing for done.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, require-statement-timeout, require-lock-timeout
create index concurrently decision_fact_idx on push.decision (fact_key);
