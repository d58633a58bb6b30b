-- Reference data: parks, lots, facilities and transit, written only by the reference sync from the curated
-- file `libs/db/reference/hangang.toml`.
-- Fail fast rather than queue behind a long-held lock in production.
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create schema if not exists reference;

create table reference.park (
    park_id text primary key,
    name_ko text not null,
    -- Names in the other languages, keyed by language tag (`en`, `ja`, `zh-Hans`).
    names jsonb not null default '{}',
    short_names jsonb not null default '{}',
    center_lat double precision not null,
    center_lng double precision not null,
    -- Seoul citydata AREA_NM; codes differ between Seoul's lists, names do not.
    citydata_area text not null unique,
    -- Region page number on the Hangang parking portal.
    portal_region smallint not null unique,
    sort_order smallint not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table reference.lot (
    lot_id text primary key,
    park_id text not null references reference.park (park_id),
    name_ko text not null,
    names jsonb not null default '{}',
    -- Curated capacity; null until confirmed (the portal's total column is then used).
    capacity integer check (capacity >= 0),
    -- Surveyed entrance; null means navigation points at the park centre.
    entrance_lat double precision,
    entrance_lng double precision,
    -- Names the upstream sources use for this lot, for mapping.
    portal_names text [] not null,
    sort_order smallint not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index lot_park_id_idx on reference.lot (park_id);

create table reference.facility (
    facility_id text primary key,
    park_id text not null references reference.park (park_id),
    kind text not null,
    name_ko text not null,
    names jsonb not null default '{}',
    lat double precision not null,
    lng double precision not null,
    sort_order smallint not null
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index facility_park_id_idx on reference.facility (park_id);

create table reference.transit (
    stop_id text primary key,
    park_id text not null references reference.park (park_id),
    kind text not null,
    name_ko text not null,
    names jsonb not null default '{}',
    lines text [] not null default '{}',
    walk_minutes smallint,
    lat double precision not null,
    lng double precision not null,
    sort_order smallint not null
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index transit_park_id_idx on reference.transit (park_id);

-- One row: which version of the curated file the database holds.
create table reference.sync_state (
    singleton boolean primary key default true check (singleton),
    version text not null,
    checksum text not null,
    synced_at timestamptz not null
);
