-- A park's own congestion history as counts that slide with time: per park, day type, Seoul hour and level,
-- how many readings fell in the window (56 days up to `park_window_state.through`). Each refresh adds what
-- entered the window and subtracts what left it, so a park outlook costs the same after a year as after a
-- day; `holidays` names the holiday calendar the day types were counted with (another one rebuilds).
set local lock_timeout = '1s';
set local statement_timeout = '60s';

create table forecast.park_window_state (
    park_id text primary key references reference.park (park_id),
    -- Null until the park's window is first counted.
    through timestamptz,
    holidays text not null
);

create table forecast.park_level_window (
    park_id text not null references reference.park (park_id),
    day_type text not null check (day_type in ('weekday', 'weekend')),
    hour smallint not null check (hour between 0 and 23),
    level text not null,
    n integer not null,
    primary key (park_id, day_type, hour, level)
);

-- Seoul's local day type and hour of an instant: UTC+9 without daylight saving since 1988, so plain arithmetic
-- on epoch seconds; day 0 (1970-01-01) was a Thursday, so (day + 3) % 7 is 5 on Saturdays and 6 on Sundays.
create function forecast.seoul_day_type(at timestamptz, holidays int8 []) returns text
language sql stable parallel safe
return case
    when ((floor(extract(epoch from at))::int8 + 32400) / 86400 + 3) % 7 >= 5
         or (floor(extract(epoch from at))::int8 + 32400) / 86400 = any(holidays) then 'weekend'
    else 'weekday'
end;

create function forecast.seoul_hour(at timestamptz) returns smallint
language sql stable parallel safe
return (((floor(extract(epoch from at))::int8 + 32400) % 86400) / 3600)::smallint;
