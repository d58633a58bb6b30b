-- The W3C trace context of the work that queued each outbox row: an ingest cycle's deliveries to forecast
-- and push, and push's alerts to APNs, continue the trace of what caused them, whenever and by whichever
-- replica they are sent. Null when that work was not traced.
--
-- Adding a nullable column without a default only touches the catalog, but it needs an ACCESS EXCLUSIVE lock:
-- give up quickly rather than queue every dispatcher and sender behind a long transaction (the deploy
-- retries).
set local lock_timeout = '1s';
set local statement_timeout = '5s';
alter table ingest.outbox add column traceparent text;
alter table push.outbox add column traceparent text;
