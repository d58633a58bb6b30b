-- The forecast service's own history: baselines kept incrementally, every issued horizon, and its score.
-- Fail fast rather than queue behind a long-held lock in production.
set local lock_timeout = '5s';
set local statement_timeout = '60s';

-- Available spaces per lot, day type and quarter-hour slot of the day (Asia/Seoul), as running statistics
-- (Welford: count, mean, sum of squared deviations), merged as new observations arrive.
create table forecast.baseline (
    lot_id text not null references reference.lot (lot_id),
    day_type text not null check (day_type in ('weekday', 'weekend')),
    slot smallint not null check (slot between 0 and 95),
    n bigint not null,
    mean double precision not null,
    m2 double precision not null,
    primary key (lot_id, day_type, slot)
);

-- How far each lot's observations have been folded into its baseline.
create table forecast.rollup_state (
    lot_id text primary key references reference.lot (lot_id),
    rolled_up_to timestamptz not null
);

-- Every horizon ever issued, scored when its target time has passed.
create table forecast.issued (
    lot_id text not null references reference.lot (lot_id),
    issued_at timestamptz not null,
    horizon_minutes smallint not null,
    target_at timestamptz not null,
    p10 integer not null,
    p50 integer not null,
    p90 integer not null,
    risk_full double precision not null,
    actual integer,
    scored_at timestamptz,
    primary key (lot_id, issued_at, horizon_minutes)
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index issued_unscored_idx on forecast.issued (target_at) where scored_at is null;
