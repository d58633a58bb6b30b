-- Precomputed forecasts, written only by services/forecast and read by the api.
-- Fail fast rather than queue behind a long-held lock in production.
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create schema if not exists forecast;

create table forecast.lot_forecast (
    lot_id text primary key references reference.lot (lot_id),
    issued_at timestamptz not null,
    based_on_observed_at timestamptz,
    capacity integer,
    -- [{horizon_minutes, target_at, p10, p50, p90, risk_full, risk, confidence}]
    horizons jsonb not null default '[]',
    confidence text check (confidence in ('low', 'medium', 'high')),
    reasons text [] not null default '{}',
    -- {window_days, scored_forecasts, mean_absolute_error: [{horizon_minutes, spaces}], interval_coverage}
    accuracy jsonb
);

create table forecast.park_forecast (
    park_id text primary key references reference.park (park_id),
    issued_at timestamptz not null,
    -- [{target_at, level, population_min, population_max, confidence}]
    hours jsonb not null default '[]',
    confidence text check (confidence in ('low', 'medium', 'high')),
    reasons text [] not null default '{}'
);
