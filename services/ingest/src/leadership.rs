//! Collection leadership: a PostgreSQL session advisory lock on a dedicated connection, and the proof of it
//! every run's store transaction checks (fencing).
//!
//! The lock alone is not enough under messy faults. A leader whose node dies or whose path goes silent
//! (no FIN, no RST) keeps the lock on the server until something notices, so the lock session sets
//! `idle_session_timeout` a few pings long (a silent leader stops pinging and the server ends its session
//! within that time) and short TCP keepalives; the leader's ping has a timeout and a late ping steps down.
//! And a leader that lost its lock without knowing yet (a failover, a session the server ended) must not
//! write: each run's store transaction first checks that the lock is held by this replica's lock session —
//! the backend's pid *and* start time, so a reused pid or another server cannot pass — and rolls back if not.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Arbitrary but fixed key of the leader lock ("ingest leader").
pub const LEADER_LOCK_KEY: i64 = 7_245_310_002;

/// The server session that holds the lock: a pid alone can be reused, a pid with its start time cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockSession {
    pub pid: i32,
    pub backend_start: OffsetDateTime,
}

/// This replica's leadership while it lasts: the session holding the lock, and a token cancelled the moment
/// the replica steps down (its runs in flight stop with it).
#[derive(Clone, Debug)]
pub struct Leadership {
    pub session: LockSession,
    pub lost: CancellationToken,
}

/// The held lock: its connection, pinged by the leader.
#[derive(Debug)]
pub struct Lock {
    connection: PgConnection,
    pub leadership: Leadership,
}

/// How long the lock session may sit idle before the server ends it (and so frees the lock): three of the
/// leader's pings, which come every `ping_every`, and never under three seconds (a busy leader's ping may
/// come late; a lock lost to that would stop runs for nothing).
fn idle_session_timeout(ping_every: Duration) -> Duration {
    (ping_every * 3).max(Duration::from_secs(3))
}

/// How long the leader waits for its ping, pinging every `ping_every`: a ping later than that steps down.
pub fn ping_timeout(ping_every: Duration) -> Duration {
    ping_every.max(Duration::from_secs(1))
}

impl Lock {
    /// Takes the lock if no one holds it, on a connection of its own set up to die with a silent leader.
    pub async fn try_acquire(pool: &PgPool, ping_every: Duration) -> sqlx::Result<Option<Lock>> {
        let mut connection = pool.acquire().await?.detach();
        let (locked, pid, backend_start): (bool, i32, OffsetDateTime) = sqlx::query_as(
            "select pg_try_advisory_lock($1), pg_backend_pid(),
                    (select backend_start from pg_stat_activity where pid = pg_backend_pid())",
        )
        .bind(LEADER_LOCK_KEY)
        .fetch_one(&mut connection)
        .await?;
        if !locked {
            let _ = connection.close().await;
            return Ok(None);
        }
        // Only the session that holds the lock needs to die with a silent leader: server-side keepalives and
        // a TCP user timeout end it on a dead peer within about 20 s whatever the cluster's defaults; the idle
        // timeout ends it on a silent one (a proxy that still ACKs).
        let idle = idle_session_timeout(ping_every).as_millis().to_string();
        sqlx::query(
            "select set_config('idle_session_timeout', $1, false),
                    set_config('tcp_keepalives_idle', '5', false),
                    set_config('tcp_keepalives_interval', '2', false),
                    set_config('tcp_keepalives_count', '3', false),
                    set_config('tcp_user_timeout', '15000', false)",
        )
        .bind(idle)
        .execute(&mut connection)
        .await?;
        let session = LockSession { pid, backend_start };
        Ok(Some(Lock {
            connection,
            leadership: Leadership { session, lost: CancellationToken::new() },
        }))
    }

    /// Whether the lock connection answered within `timeout` (a silent path answers never).
    pub async fn ping(&mut self, timeout: Duration) -> bool {
        matches!(tokio::time::timeout(timeout, self.connection.ping()).await, Ok(Ok(())))
    }

    /// Steps down: cancels the leadership and closes the connection, which frees the lock if the server
    /// still has it (bounded: a silent server gets the socket dropped instead).
    pub async fn release(self) {
        self.leadership.lost.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.connection.close()).await;
    }
}

/// Whether `session` still holds the leader lock in this database, asked inside the transaction it fences.
pub async fn holds(tx: &mut Transaction<'_, Postgres>, session: LockSession) -> sqlx::Result<bool> {
    let (held,): (bool,) = sqlx::query_as(
        "select exists (
            select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where l.locktype = 'advisory' and l.granted and l.objsubid = 1
              and l.classid = ($1::bigint >> 32)::oid and l.objid = ($1::bigint & 4294967295)::oid
              and l.database = (select oid from pg_database where datname = current_database())
              and l.pid = $2 and a.backend_start = $3)",
    )
    .bind(LEADER_LOCK_KEY)
    .bind(session.pid)
    .bind(session.backend_start)
    .fetch_one(&mut **tx)
    .await?;
    Ok(held)
}

/// This replica's standing, shared by the schedule (which writes it) and `RunNow` (which runs only as the
/// leader, through the same fenced path).
#[derive(Clone, Debug)]
pub struct Standing(watch::Sender<Option<Leadership>>);

impl Default for Standing {
    fn default() -> Standing {
        Standing(watch::Sender::new(None))
    }
}

impl Standing {
    pub fn lead(&self, leadership: Leadership) {
        self.0.send_replace(Some(leadership));
    }

    pub fn step_down(&self) {
        self.0.send_replace(None);
    }

    /// The current leadership, waiting up to `patience` for one (a replica that just started campaigns
    /// first); `None` on a follower.
    pub async fn leadership(&self, patience: Duration) -> Option<Leadership> {
        let mut watching = self.0.subscribe();
        let waited = tokio::time::timeout(patience, watching.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(leadership)) => leadership.clone(),
            _ => None,
        }
    }
}
