-- The accuracy shown with each lot's forecast as sums that slide with time: per lot and horizon, how many
-- horizons were scored with a target in the last 14 days up to `accuracy_state.through`, their summed
-- absolute error and how many fell within p10..p90. Each refresh adds what entered the window and subtracts
-- what left it, instead of re-reading two weeks of horizons per lot.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

create table forecast.accuracy_state (
    lot_id text primary key references reference.lot (lot_id),
    -- Null until the lot's sums are first counted.
    through timestamptz
);

create table forecast.accuracy_window (
    lot_id text not null references reference.lot (lot_id),
    horizon_minutes smallint not null,
    n integer not null,
    abs_error bigint not null,
    covered integer not null,
    primary key (lot_id, horizon_minutes)
);
