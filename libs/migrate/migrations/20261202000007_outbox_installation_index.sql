-- no-transaction
-- Deleting an installation cascades to its outbox rows: indexed by installation.
-- Built concurrently, outside a transaction (one statement per file: PostgreSQL runs several sent together in
-- an implicit transaction, which CONCURRENTLY refuses); no `if not exists`, so a build that failed halfway
-- fails the next migrate loudly instead of passing for done.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, require-statement-timeout, require-lock-timeout
create index concurrently outbox_installation_idx on push.outbox (installation_id);
