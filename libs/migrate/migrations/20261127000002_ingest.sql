-- Collection records and history, written only by services/ingest.
-- Fail fast rather than queue behind a long-held lock in production.
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create schema if not exists ingest;

-- Every collection run and how it ended: `ok` (with a count), `no_data` (the source says it has nothing),
-- or `failed` with a class (see services/ingest/src/outcome.rs for what each class means).
create table ingest.ingestion_run (
    run_id bigint generated always as identity primary key,
    source text not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    outcome text check (outcome in ('ok', 'no_data', 'failed')),
    error_class text check (
        error_class in (
            'connect', 'timeout', 'tls', 'http_status', 'upstream_error', 'unexpected_content',
            'schema_drift', 'quota', 'auth', 'unmapped', 'too_large'
        )
    ),
    error_message text,
    items integer not null default 0,
    check ((outcome = 'failed') = (error_class is not null))
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index ingestion_run_source_started_idx on ingest.ingestion_run (source, started_at desc);

-- The health of each source, updated after every run.
create table ingest.source_status (
    source text primary key,
    last_attempt_at timestamptz not null,
    last_success_at timestamptz,
    last_outcome text not null check (last_outcome in ('ok', 'no_data', 'failed')),
    consecutive_failures integer not null default 0,
    last_error_class text,
    last_error_message text,
    updated_at timestamptz not null default now()
);

-- Parking availability over time, one row per lot and observation.
create table ingest.lot_observation (
    lot_id text not null references reference.lot (lot_id),
    observed_at timestamptz not null,
    fetched_at timestamptz not null,
    -- May exceed capacity: the portal counts double parking.
    available integer check (available >= 0),
    -- The source's total for the lot at that time.
    capacity integer check (capacity >= 0),
    -- The source does not count this lot live.
    not_linked boolean not null default false,
    run_id bigint references ingest.ingestion_run (run_id),
    primary key (lot_id, observed_at)
);

create table ingest.congestion_observation (
    park_id text not null references reference.park (park_id),
    observed_at timestamptz not null,
    fetched_at timestamptz not null,
    level text not null check (level in ('relaxed', 'normal', 'slightly_crowded', 'crowded')),
    message_ko text,
    population_min integer,
    population_max integer,
    run_id bigint references ingest.ingestion_run (run_id),
    primary key (park_id, observed_at)
);

create table ingest.weather_observation (
    park_id text not null references reference.park (park_id),
    observed_at timestamptz not null,
    fetched_at timestamptz not null,
    source text not null,
    temperature_c double precision,
    precipitation text,
    sky text,
    rain_chance_percent smallint,
    pm10 integer,
    pm25 integer,
    run_id bigint references ingest.ingestion_run (run_id),
    primary key (park_id, observed_at)
);

-- Events matched to parks. `event_id` is stable across collections (derived from content when the source has
-- no id); `cancelled_at` is set when the source marks it cancelled or it disappears before its end.
create table ingest.event (
    event_id text primary key,
    park_id text not null references reference.park (park_id),
    source text not null,
    title_ko text not null,
    place_ko text,
    starts_on date not null,
    ends_on date not null,
    free boolean,
    url text,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    cancelled_at timestamptz
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index event_park_dates_idx on ingest.event (park_id, starts_on, ends_on);

-- Announced controls and closures. `park_id` null means every park (e.g. a flood warning).
create table ingest.notice (
    notice_id text primary key,
    park_id text references reference.park (park_id),
    lot_id text references reference.lot (lot_id),
    kind text not null,
    title_ko text not null,
    url text,
    source text not null,
    starts_at timestamptz,
    ends_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index notice_park_idx on ingest.notice (park_id);

-- Translations of public-data text, keyed by the hash of the Korean source text.
create table ingest.translation (
    source_hash text not null,
    lang text not null,
    text text not null,
    origin text not null check (origin in ('curated', 'machine')),
    created_at timestamptz not null default now(),
    primary key (source_hash, lang)
);

-- Names a source used that no curated lot or park lists: drift to curate, never silently dropped.
create table ingest.unmapped_name (
    source text not null,
    name text not null,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    times_seen bigint not null default 1,
    primary key (source, name)
);

-- Seoul's official hourly congestion forecast per park, as published with each citydata reading.
create table ingest.congestion_forecast_official (
    park_id text not null references reference.park (park_id),
    issued_at timestamptz not null,
    target_at timestamptz not null,
    level text not null check (level in ('relaxed', 'normal', 'slightly_crowded', 'crowded')),
    population_min integer,
    population_max integer,
    primary key (park_id, issued_at, target_at)
);

-- Notifications to peers (forecast refreshes, facts for push), written in the same transaction as the data
-- they describe and delivered by a dispatcher with retries, so a peer that is down misses nothing.
create table ingest.outbox (
    outbox_id bigint generated always as identity primary key,
    destination text not null check (destination in ('forecast', 'push')),
    payload jsonb not null,
    created_at timestamptz not null default now(),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    delivered_at timestamptz
);

-- The squawk-ignore below: the table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index outbox_pending_idx on ingest.outbox (destination, next_attempt_at) where delivered_at is null;
