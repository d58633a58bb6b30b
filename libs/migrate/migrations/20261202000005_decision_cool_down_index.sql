-- no-transaction
-- The cool-down reads an installation's recent alerts per signal and target: indexed, so it costs the recent
-- alerts, not the installation's whole history. Built concurrently, outside a transaction (sqlx runs a file
-- starting with `-- no-transaction` so), so pushes keep being decided meanwhile. The file is this one
-- statement: PostgreSQL runs several statements sent together in an implicit transaction, which CONCURRENTLY
-- refuses, so no `set lock_timeout`/`statement_timeout` precedes it (a concurrent build takes only a SHARE UPDATE
-- EXCLUSIVE lock, which blocks no writer; the migrate Job runs without a session statement timeout). No
-- `if not exists`: a build that failed halfway leaves an invalid index, which must fail the next migrate
-- loudly (drop it, then migrate) rather than be taken for done.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, require-statement-timeout, require-lock-timeout
create index concurrently decision_cool_down_idx
    on push.decision (installation_id, signal, target_id, decided_at)
    where decision = 'push_now';
