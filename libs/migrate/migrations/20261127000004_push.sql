-- Installations, preferences, facts, decisions and the delivery outbox, written only by services/push.
-- Fail fast rather than queue behind a long-held lock in production.
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create schema if not exists push;

-- An anonymous app installation. The secret is stored only as its SHA-256 (it is 256 random bits, so a plain
-- hash is enough); quiet hours are minutes after midnight in Asia/Seoul.
create table push.installation (
    installation_id text primary key,
    secret_hash text not null,
    apns_token text not null,
    apns_environment text not null check (apns_environment in ('production', 'sandbox')),
    locale text not null,
    app_version text not null,
    quiet_start_minute smallint check (quiet_start_minute between 0 and 1439),
    quiet_end_minute smallint check (quiet_end_minute between 0 and 1439),
    active boolean not null default true,
    deactivated_reason text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index installation_apns_token_idx on push.installation (apns_token);

-- What an installation wants to hear about.
create table push.preference (
    installation_id text not null references push.installation (installation_id) on delete cascade,
    position smallint not null,
    target_kind text not null check (target_kind in ('park', 'lot')),
    target_id text not null,
    signal text not null,
    threshold integer,
    weekdays text [] not null default '{}',
    enabled boolean not null default true,
    primary key (installation_id, position)
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index preference_target_idx on push.preference (target_kind, target_id);

-- A change in the world, stored once whatever how often it is submitted.
create table push.fact (
    fact_key text primary key,
    kind text not null,
    park_id text not null,
    lot_id text,
    observed_at timestamptz,
    fetched_at timestamptz,
    body jsonb not null,
    received_at timestamptz not null default now()
);

-- Why each candidate was or was not alerted. Suppression is not failure: it is recorded like a send.
create table push.decision (
    decision_id bigint generated always as identity primary key,
    fact_key text not null references push.fact (fact_key),
    installation_id text not null references push.installation (installation_id) on delete cascade,
    position smallint not null,
    signal text not null,
    decision text not null check (decision in ('push_now', 'suppress')),
    reason text,
    decided_at timestamptz not null,
    unique (fact_key, installation_id, position),
    check ((decision = 'suppress') = (reason is not null))
);

-- Alerts waiting to be sent, claimed with FOR UPDATE SKIP LOCKED by any sender.
create table push.outbox (
    outbox_id bigint generated always as identity primary key,
    decision_id bigint not null unique references push.decision (decision_id) on delete cascade,
    installation_id text not null references push.installation (installation_id) on delete cascade,
    collapse_id text not null,
    payload jsonb not null,
    expires_at timestamptz not null,
    status text not null default 'pending' check (status in ('pending', 'sent', 'dead', 'expired', 'deactivated')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    sent_at timestamptz,
    created_at timestamptz not null default now()
);

-- The table is created empty above, so a concurrent build is unnecessary.
-- squawk-ignore require-concurrent-index-creation
create index outbox_due_idx on push.outbox (next_attempt_at) where status = 'pending';

-- Every attempt with what APNs answered.
create table push.delivery_attempt (
    attempt_id bigint generated always as identity primary key,
    outbox_id bigint not null references push.outbox (outbox_id) on delete cascade,
    attempted_at timestamptz not null,
    http_status integer,
    apns_id text,
    reason text
);
