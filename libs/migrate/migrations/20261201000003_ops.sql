-- The `ops` schema: the rollout leg of the release ledger, written by the system itself so "what ran where,
-- and when?" does not depend on Argo CD's ten-entry history. `cargo xtask history` joins it with the deploy
-- repository. Rows expire after OPS_RETENTION_DAYS (400 by default), deleted by the processes that write them.
--
-- - process_start: one row per service process start (written at start-up; a failed write is logged, never
--   fatal).
-- - smoke_run: each PostSync smoke check's outcome: every check with its result and duration, and the release
--   each service answered with.
-- - migration: the kind of every migration a release's `migrate` knows (expand or contract), so an older
--   release can tell whether a database ahead of it is safe to run against.
--
-- Expand only: new schema, new tables.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

create schema ops;

create table ops.process_start (
    id bigint generated always as identity primary key,
    service text not null,
    release_id text not null,
    source_commit text not null,
    environment text not null,
    host text not null,
    pid integer not null,
    started_at timestamptz not null
);
create index process_start_environment_started_at on ops.process_start (environment, started_at);
create index process_start_started_at on ops.process_start (started_at);

create table ops.smoke_run (
    id bigint generated always as identity primary key,
    release_id text not null,
    environment text not null,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    passed boolean not null,
    rounds integer not null,
    -- `[{"name": "api /healthz", "passed": true, "detail": "release …", "duration_ms": 12}]`, the last round.
    checks jsonb not null,
    -- `{"api": "<release id>", "push": "<release id>"}`: what each service reported in the last round.
    answered jsonb not null
);
create index smoke_run_environment_finished_at on ops.smoke_run (environment, finished_at);
create index smoke_run_finished_at on ops.smoke_run (finished_at);

create table ops.migration (
    version bigint primary key,
    description text not null,
    kind text not null check (kind in ('expand', 'contract')),
    recorded_by_release text not null,
    recorded_at timestamptz not null default now()
);
