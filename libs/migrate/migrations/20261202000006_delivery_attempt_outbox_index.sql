-- no-transaction
-- Deleting an installation or pruning old alerts cascades from push.outbox to its attempts: indexed, so it does
-- not scan every attempt once per outbox row.
-- Built concurrently, outside a transaction (one statement per file: PostgreSQL runs several sent together in
-- an implicit transaction, which CONCURRENTLY refuses); no `if not exists`, so a build that failed halfway
-- fails the next migrate loudly instead of passing for done.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, require-statement-timeout, require-lock-timeout
create index concurrently delivery_attempt_outbox_idx on push.delivery_attempt (outbox_id);
