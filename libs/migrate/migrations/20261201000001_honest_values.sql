-- Honest values under odd upstream answers (expand only: the previous release reads and writes all of this).
--
-- migration-kind: expand (each outcome check dropped here is replaced in the same transaction by a wider one that admits everything the old one did, and the only update fills the new `reliable` column)
--
-- - Runs of a source collected per park (region pages, areas) may end `partial`: some parks failed, the rest
--   was stored. Each park's share has its own health in `ingest.source_part_status`, so one bad page fails
--   one park, not all.
-- - Impossible values (more free spaces than a lot has) are clamped at collection; the run and the source's
--   status record which items were affected, and the observation keeps what the source reported.
-- - Events are cancelled only when the organiser marks them or when two complete lists at least 30 minutes
--   apart miss them; the streak, the reason and the content key that lets a retitled event keep its id live
--   on the event.
-- - Notices carry whether their classification is reliable enough to act on (a park shown closed, an alert),
--   and which notice ended them (a lifted closure).
--
-- New columns are nullable or have constant defaults (catalog-only changes). The outcome checks are widened:
-- each is dropped and replaced in this transaction by one that admits everything the old one did plus
-- `partial`, added NOT VALID and validated by the next migration in its own transaction, which does not
-- block writers.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

-- squawk-ignore ban-drop-constraint
alter table ingest.ingestion_run drop constraint ingestion_run_outcome_check;
-- squawk-ignore ban-drop-constraint
alter table ingest.ingestion_run drop constraint ingestion_run_check;
alter table ingest.ingestion_run add constraint ingestion_run_outcome_check
    check (outcome in ('ok', 'partial', 'no_data', 'failed')) not valid;
alter table ingest.ingestion_run add constraint ingestion_run_failure_has_class
    check ((outcome in ('failed', 'partial')) = (error_class is not null)) not valid;
-- `[{"kind": "available_above_capacity", "items": ["ichon-1"]}]`; null when the run saw none.
alter table ingest.ingestion_run add column anomalies jsonb;

-- squawk-ignore ban-drop-constraint
alter table ingest.source_status drop constraint source_status_last_outcome_check;
alter table ingest.source_status add constraint source_status_last_outcome_check
    check (last_outcome in ('ok', 'partial', 'no_data', 'failed')) not valid;
-- The anomalies of the last successful run.
alter table ingest.source_status add column anomalies jsonb;

-- One park's share of a source collected per park, updated after every run that reached it.
create table ingest.source_part_status (
    source text not null,
    part text not null,
    last_attempt_at timestamptz not null,
    last_success_at timestamptz,
    consecutive_failures integer not null default 0,
    last_error_class text,
    last_error_message text,
    updated_at timestamptz not null default now(),
    primary key (source, part)
);

-- What the source reported when `available` was clamped to the lot's capacity; null when stored as reported.
alter table ingest.lot_observation add column reported_available integer;

-- The content key (title, place, start) the event was last listed under; differs from `event_id` after the
-- organiser retitled it.
alter table ingest.event add column content_key text;
-- The first complete list that missed the event, and how many complete lists in a row have missed it.
alter table ingest.event add column missing_since timestamptz;
alter table ingest.event add column missing_lists integer not null default 0;
-- `organiser` (marked cancelled at the source) or `absent` (missing from complete lists); null while on.
alter table ingest.event add column cancel_reason text;

alter table ingest.notice add column reliable boolean not null default false;
-- The notice that ended this one (a closure lifted by a later `해제` notice).
alter table ingest.notice add column ended_by text;
-- Operators' notices were always acted on.
update ingest.notice set reliable = true where source = 'operator';
