-- A send round claims its alerts with a lease instead of holding row locks across APNs: `claim_id` names the
-- claim (its recordings must match it), `claimed_until` when other senders may take the alerts back (their
-- sender died). Both are null when no round holds the alert.
set local lock_timeout = '1s';
set local statement_timeout = '60s';

alter table push.outbox add column claim_id bigint;
alter table push.outbox add column claimed_until timestamptz;
