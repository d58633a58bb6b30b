-- ops.api_usage_day: how many requests each API version got from each app build, per UTC day, so "who still
-- calls /v1?" has a record and retiring a version can be judged on evidence (`cargo xtask contracts usage`,
-- the retirement rule of `cargo xtask contracts`). The api counts in memory and adds its counts here in one
-- upsert a minute, never per request; `app_version` is the same bounded label as the api's
-- `hangang_api_app_requests` metric ("2.4.0 (431)", "build 431", "unknown", "invalid", "other"), so a client
-- inventing versions cannot grow the table beyond that bound a day. Unlike the other `ops` tables its rows are
-- updated (counts are added), each by every api replica, which is why the upsert adds rather than sets.
--
-- Expand only: a new table.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

create table ops.api_usage_day (
    day date not null,
    api_version text not null check (api_version ~ '^(v[0-9]+|other)$'),
    app_version text not null,
    requests bigint not null check (requests >= 0),
    last_seen_at timestamptz not null,
    primary key (day, api_version, app_version)
);
