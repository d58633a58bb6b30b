-- Each push decision names the target it was made for, so the cool-down is keyed by target and signal, not by
-- the preference's position, which an edit of the preferences renumbers (moving a past alert onto another
-- target, or losing it). Decisions written before this carry no target and are matched by position, as before.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

alter table push.decision add column target_kind text;
alter table push.decision add column target_id text;
