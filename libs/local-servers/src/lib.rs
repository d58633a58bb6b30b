//! Private PostgreSQL and Redis processes, started from the installed server binaries on free loopback ports
//! with their data under a directory of the caller's, and stopped when dropped, so nothing is left behind:
//! `cargo xtask dev` uses them when no server is reachable, the end-to-end sandbox to stop Redis mid-run.
//! [`system`] runs the whole system as local processes on top of them.

pub mod system;

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// A server this process started; dropping it stops it.
#[derive(Debug)]
pub struct LocalServer {
    name: &'static str,
    child: Child,
    /// How to stop it cleanly (PostgreSQL checkpoints on a fast shutdown); `None` means a signal will do.
    stop: Option<Command>,
    pub url: String,
}

impl LocalServer {
    /// `PostgreSQL` or `Redis`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|tail| tail.split('/').next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(stop) = &mut self.stop {
            let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if self.stop.is_none() {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Where a private cluster can live: `preferred`, unless this runs as root. PostgreSQL refuses root, and the
/// `postgres` account it runs as instead cannot reach into root's home (where `target/` usually is), so then
/// the cluster goes to the temporary directory.
pub fn postgres_dir(preferred: &Path) -> PathBuf {
    if is_root() {
        std::env::temp_dir().join("hangangjari-dev-postgres")
    } else {
        preferred.to_owned()
    }
}

/// As root, PostgreSQL's commands run as the `postgres` account the Debian package creates.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The newest installed PostgreSQL server's `bin/` (Debian keeps them under `/usr/lib/postgresql/<major>/`).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).context(
        "no PostgreSQL server is installed to start a private one: install the `postgresql` package \
         (apt-get install postgresql) or point DATABASE_URL at a running server",
    )
}

/// Starts PostgreSQL with its cluster in `dir` (created on first use), trust auth, loopback only.
pub fn postgres(dir: &Path) -> anyhow::Result<LocalServer> {
    let bin = postgres_bin()?;
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    // The cluster and its socket directory belong to the account that runs the server.
    let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
    if !dir.join("PG_VERSION").is_file() {
        let output = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&dir)
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"])
            .output()
            .context("cannot run initdb")?;
        if !output.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
    let port = free_port()?;
    let child = as_postgres(&bin.join("postgres"))
        .arg("-D")
        .arg(&dir)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start postgres")?;
    let mut stop = as_postgres(&bin.join("pg_ctl"));
    stop.arg("-D").arg(&dir).args(["-m", "fast", "-w", "stop"]);
    let server = LocalServer {
        name: "PostgreSQL",
        child,
        stop: Some(stop),
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    };
    wait_until("PostgreSQL", || {
        Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|status| status.success())
    })?;
    Ok(server)
}

/// Starts Redis on a free port; it keeps nothing on disk (the caches are rebuildable), `dir` is its cwd.
pub fn redis(dir: &Path) -> anyhow::Result<LocalServer> {
    redis_on(free_port()?, dir)
}

/// Starts Redis on `port` (to bring one back where its clients expect it).
pub fn redis_on(port: u16, dir: &Path) -> anyhow::Result<LocalServer> {
    std::fs::create_dir_all(dir)?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context(
            "cannot start redis-server: install the `redis-server` package (apt-get install redis-server) \
             or point REDIS_URL at a running server",
        )?;
    let server =
        LocalServer { name: "Redis", child, stop: None, url: format!("redis://127.0.0.1:{port}") };
    wait_until("Redis", || redis_answers(&server.url))?;
    Ok(server)
}

/// Whether a Redis server answers `PING` at `url` (`redis://host:port`).
pub fn redis_answers(url: &str) -> bool {
    let address = url.trim_start_matches("redis://").split('/').next().unwrap_or_default();
    let Ok(mut stream) = TcpStream::connect(address) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

fn wait_until(what: &str, ready: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if Instant::now() > deadline {
            bail!("the private {what} did not start within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both servers start from the installed binaries, answer, and are gone once dropped.
    #[test]
    fn private_servers_start_answer_and_stop() {
        let dir = tempfile::tempdir().unwrap();
        let postgres = postgres(&dir.path().join("postgres")).unwrap();
        let redis = redis(&dir.path().join("redis")).unwrap();
        let answer = Command::new("psql")
            .args([postgres.url.as_str(), "-Atqc", "select 40 + 2"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&answer.stdout).trim(),
            "42",
            "{}",
            String::from_utf8_lossy(&answer.stderr)
        );
        assert!(redis_answers(&redis.url));
        assert_eq!(redis.url, format!("redis://127.0.0.1:{}", redis.port()));

        let postgres_address = postgres
            .url
            .trim_start_matches("postgres://postgres@")
            .trim_end_matches("/postgres")
            .to_owned();
        let redis_url = redis.url.clone();
        drop(postgres);
        drop(redis);
        assert!(TcpStream::connect(&postgres_address).is_err(), "PostgreSQL still listens");
        assert!(!redis_answers(&redis_url), "Redis still answers");
    }
}
