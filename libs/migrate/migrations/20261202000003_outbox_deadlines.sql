-- Every ingest outbox row gets a deadline by what it carries (lot facts minutes, closures and cancellations
-- hours): a row not delivered by then is recorded as expired instead of alerting days later as if new.
-- Expired rows also get `next_attempt_at = 'infinity'`, so a release that does not know the column never
-- picks them either; delivered and expired rows are pruned after a retention period.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

alter table ingest.outbox add column deliver_by timestamptz;
alter table ingest.outbox add column expired_at timestamptz;
