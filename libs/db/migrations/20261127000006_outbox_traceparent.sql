-- The W3C trace context of the ingest cycle that queued each outbox row: its delivery, whenever and by
-- whichever replica it happens, continues that cycle's trace into forecast and push. Null when the cycle
-- was not traced.
--
-- Adding a nullable column without a default only touches the catalog, but it needs an ACCESS EXCLUSIVE lock:
-- give up quickly rather than queue every dispatcher behind a long transaction (the deploy retries).
set local lock_timeout = '1s';
set local statement_timeout = '5s';
alter table ingest.outbox add column traceparent text;
