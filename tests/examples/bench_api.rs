//! `cargo xtask bench api`: the api's hot path against nginx serving the same bytes, on this machine, in one
//! run, with the same wrk settings; plus a fixed-rate latency run, the cold rebuild time and peak memory.
//!
//! It needs `wrk`, `nginx` and `psql` (Debian: `apt-get install wrk nginx-light postgresql-client`) and a
//! local PostgreSQL and Redis (`DATABASE_URL`, `REDIS_URL`; the local defaults otherwise). It creates and
//! drops its own database `hangang_bench` and uses the Redis key prefix `bench:`.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark prints its table")]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

const BENCH_DATABASE: &str = "hangang_bench";
const PATH: &str = "/v2/home-summary";

/// wrk settings shared by both servers.
const WRK_THREADS: &str = "2";
const WRK_CONNECTIONS: &str = "64";
const WRK_SECONDS: &str = "10s";

/// The fixed-rate run: requests per second, its duration and connections.
const FIXED_RATE: u32 = 1_000;
const FIXED_SECONDS: u64 = 10;
const FIXED_CONNECTIONS: u32 = 16;

fn main() -> anyhow::Result<()> {
    let sh = &Shell::new()?;
    for (tool, package) in [("wrk", "wrk"), ("nginx", "nginx-light"), ("psql", "postgresql-client")]
    {
        if cmd!(sh, "which {tool}").quiet().ignore_stdout().run().is_err() {
            bail!("`{tool}` is missing: apt-get install {package}");
        }
    }
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let bench_url = local_servers::system::replace_database(&admin_url, BENCH_DATABASE);

    eprintln!("bench: building the api (release)");
    cmd!(sh, "cargo build --release --locked -p api --bin hangang-api").run()?;
    let binary = tests::bench::release_dir()?.join("hangang-api");

    cmd!(sh, "psql {admin_url} -q -v ON_ERROR_STOP=1 -c 'drop database if exists hangang_bench with (force)'").run()?;
    cmd!(sh, "psql {admin_url} -q -v ON_ERROR_STOP=1 -c 'create database hangang_bench'").run()?;
    let result = run_with_database(sh, &binary, &bench_url, &redis_url);
    cmd!(sh, "psql {admin_url} -q -c 'drop database if exists hangang_bench with (force)'")
        .run()?;
    result
}

fn run_with_database(
    sh: &Shell,
    binary: &Path,
    database_url: &str,
    redis_url: &str,
) -> anyhow::Result<()> {
    let migrate = Command::new(binary)
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .status()
        .context("failed to run hangang-api migrate")?;
    if !migrate.success() {
        bail!("hangang-api migrate failed");
    }
    cmd!(sh, "psql {database_url} -q -v ON_ERROR_STOP=1 -c {SEED_SQL}").run()?;
    let (parks, lots) = {
        let counts = cmd!(sh, "psql {database_url} -At -c 'select (select count(*) from reference.park), (select count(*) from reference.lot)'")
            .read()?;
        let (parks, lots) = counts.split_once('|').context("unexpected psql output")?;
        (parks.trim().to_owned(), lots.trim().to_owned())
    };

    let api_port = free_port()?;
    let api = ChildGuard(
        Command::new(binary)
            .env("HTTP_ADDR", format!("127.0.0.1:{api_port}"))
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url)
            .env("REDIS_KEY_PREFIX", "bench:")
            .env("HOT_CACHE_TTL_SECONDS", "300")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("failed to start hangang-api")?,
    );
    let api_url = format!("http://127.0.0.1:{api_port}{PATH}");
    wait_until_serving(api_port)?;

    // Cold: drop the hot copies (as a writer's NOTIFY does) and time the request that rebuilds.
    let mut cold = Vec::new();
    for _ in 0..20 {
        let notify = format!("notify {}", db::DATA_CHANGED_CHANNEL);
        cmd!(sh, "psql {database_url} -q -c {notify}").run()?;
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let (status, body) = get(api_port, PATH)?;
        if status != 200 || !body.windows(6).any(|w| w == b"\"live\"") {
            bail!("a cold request was not rebuilt from PostgreSQL (status {status})");
        }
        cold.push(started.elapsed());
    }
    cold.sort();
    let rebuild = metric_average(api_port, "hangang_api_snapshot_rebuild_duration_seconds")?;

    // The body nginx will serve: exactly what the api serves from its hot cache.
    // The first request after the cold runs may still be `live`; the second is the hot-cache body.
    get(api_port, PATH)?;
    let (_, body) = get(api_port, PATH)?;
    let scratch = tempdir()?;
    std::fs::write(scratch.join("home-summary.json"), &body)?;
    let nginx_port = free_port()?;
    let _nginx = start_nginx(&scratch, nginx_port)?;
    let nginx_url = format!("http://127.0.0.1:{nginx_port}{PATH}");
    wait_until_serving(nginx_port)?;
    let (_, nginx_body) = get(nginx_port, PATH)?;
    if nginx_body != body {
        bail!("nginx does not serve the same bytes as the api");
    }

    eprintln!("bench: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS}, nginx then api");
    let nginx_wrk = wrk(sh, &nginx_url)?;
    let api_wrk = wrk(sh, &api_url)?;
    eprintln!(
        "bench: fixed rate {FIXED_RATE} req/s for {FIXED_SECONDS}s over {FIXED_CONNECTIONS} connections"
    );
    let nginx_fixed = fixed_rate(nginx_port)?;
    let api_fixed = fixed_rate(api_port)?;
    let peak_rss_kib = peak_rss_kib(api.0.id())?;

    let ratio = api_wrk.requests_per_second / nginx_wrk.requests_per_second;
    let rows = [
        (
            "requests/s (wrk)",
            format!("{:.0}", nginx_wrk.requests_per_second),
            format!("{:.0}", api_wrk.requests_per_second),
            format!("{ratio:.2}× nginx (target ≥ 0.70×)"),
        ),
        (
            "p50 / p99 (wrk)",
            format!("{} / {}", nginx_wrk.p50, nginx_wrk.p99),
            format!("{} / {}", api_wrk.p50, api_wrk.p99),
            String::new(),
        ),
        (
            "p50 / p99 at 1,000 req/s",
            format!("{} / {}", ms(nginx_fixed.p50), ms(nginx_fixed.p99)),
            format!("{} / {}", ms(api_fixed.p50), ms(api_fixed.p99)),
            format!("target p99 < 5 ms; {} errors", api_fixed.errors),
        ),
        (
            "cold request (median / max of 20)",
            "-".into(),
            format!("{} / {}", ms(cold[cold.len() / 2]), ms(cold[cold.len() - 1])),
            "target < 20 ms".into(),
        ),
        ("snapshot rebuild (mean, /metrics)", "-".into(), ms(rebuild), String::new()),
        (
            "api peak RSS",
            "-".into(),
            format!("{:.1} MB", peak_rss_kib as f64 / 1024.0),
            "target < 50 MB".into(),
        ),
    ];
    println!(
        "\n`cargo xtask bench api`: GET {PATH} ({} bytes; {parks} parks, {lots} lots), same machine, same settings\n",
        body.len()
    );
    println!("| measure | nginx (static file) | api (hot cache) | note |");
    println!("|---|---|---|---|");
    for (measure, nginx, api, note) in rows {
        println!("| {measure} | {nginx} | {api} | {note} |");
    }
    std::fs::remove_dir_all(&scratch).ok();
    Ok(())
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1_000.0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hangang-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn wait_until_serving(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if get(port, "/healthz").is_ok() || get(port, PATH).is_ok_and(|(status, _)| status == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing answered on port {port}")
}

/// One GET on a fresh connection.
fn get(port: u16, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    tests::bench::get_blocking(&format!("http://127.0.0.1:{port}{path}"))
}

fn start_nginx(dir: &Path, port: u16) -> anyhow::Result<ChildGuard> {
    let config = format!(
        "daemon off;\nworker_processes auto;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/tmp;\n  proxy_temp_path {dir}/tmp;\n  fastcgi_temp_path {dir}/tmp;\n  uwsgi_temp_path {dir}/tmp;\n  scgi_temp_path {dir}/tmp;\n  keepalive_requests 1000000;\n\
         \n  server {{\n    listen 127.0.0.1:{port};\n    location = {PATH} {{ default_type application/json; alias {dir}/home-summary.json; }}\n  }}\n}}\n",
        dir = dir.display()
    );
    std::fs::create_dir_all(dir.join("tmp"))?;
    let config_path = dir.join("nginx.conf");
    std::fs::write(&config_path, config)?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&config_path)
        .arg("-p")
        .arg(dir)
        .stderr(Stdio::null())
        .spawn()
        .context("failed to start nginx")?;
    Ok(ChildGuard(child))
}

struct WrkResult {
    requests_per_second: f64,
    p50: String,
    p99: String,
}

fn wrk(sh: &Shell, url: &str) -> anyhow::Result<WrkResult> {
    let output =
        cmd!(sh, "wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS} --latency {url}")
            .read()?;
    let field = |prefix: &str| {
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            .with_context(|| format!("wrk printed no `{prefix}` line:\n{output}"))
    };
    if let Ok(errors) = field("Non-2xx or 3xx responses:") {
        bail!("{url} answered errors under load: {errors}");
    }
    Ok(WrkResult {
        requests_per_second: field("Requests/sec:")?.parse()?,
        p50: field("50%")?,
        p99: field("99%")?,
    })
}

struct FixedRateResult {
    p50: Duration,
    p99: Duration,
    errors: usize,
}

/// Sends `FIXED_RATE` requests per second over keep-alive connections on a fixed schedule and measures each
/// from its *scheduled* send time, so a stall delays the measurements behind it (no coordinated omission).
fn fixed_rate(port: u16) -> anyhow::Result<FixedRateResult> {
    let interval = Duration::from_secs_f64(f64::from(FIXED_CONNECTIONS) / f64::from(FIXED_RATE));
    let per_connection = (FIXED_SECONDS as f64 / interval.as_secs_f64()) as usize;
    let start = Instant::now() + Duration::from_millis(200);
    let url = format!("http://127.0.0.1:{port}{PATH}");
    let workers: Vec<_> = (0..FIXED_CONNECTIONS)
        .map(|worker| {
            let url = url.clone();
            std::thread::spawn(move || -> anyhow::Result<(Vec<Duration>, usize)> {
                // One connection per worker, kept alive: a client of its own with a single idle slot.
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(10))
                    .build()?;
                let offset = interval.mul_f64(f64::from(worker) / f64::from(FIXED_CONNECTIONS));
                runtime.block_on(async {
                    let mut latencies = Vec::with_capacity(per_connection);
                    let mut errors = 0;
                    for i in 0..per_connection {
                        let scheduled = start + offset + interval * i as u32;
                        if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                            tokio::time::sleep(wait).await;
                        }
                        match client.get(&url).send().await {
                            Ok(response) if response.status() == 200 => {
                                let _ = response.bytes().await;
                                latencies.push(scheduled.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    Ok((latencies, errors))
                })
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut measured, failed) = worker.join().expect("load thread panicked")?;
        latencies.append(&mut measured);
        errors += failed;
    }
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok(FixedRateResult { p50: percentile(0.50), p99: percentile(0.99), errors })
}

fn metric_average(port: u16, name: &str) -> anyhow::Result<Duration> {
    let (_, body) = get(port, "/metrics")?;
    let text = String::from_utf8(body)?;
    let value = |suffix: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}_{suffix} ")))
            .with_context(|| format!("no {name}_{suffix} in /metrics"))?
            .trim()
            .parse::<f64>()
            .map_err(Into::into)
    };
    Ok(Duration::from_secs_f64(value("sum")? / value("count")?.max(1.0)))
}

fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).context("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("malformed VmHWM")?.parse()?)
}

/// Realistic data for every park: a fresh reading of every lot, congestion, weather, events, notices and
/// forecasts, timed relative to `now()` so everything is fresh when the run starts.
const SEED_SQL: &str = r#"
insert into ingest.source_status (source, last_attempt_at, last_success_at, last_outcome)
select source, now() - interval '30 seconds', now() - interval '30 seconds', 'ok'
from unnest(array['parking_portal', 'seoul_citydata', 'seoul_cultural_events', 'hangang_notices']) source;
insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity)
select lot_id, now() - interval '60 seconds', now() - interval '60 seconds',
       (abs(hashtext(lot_id)) % coalesce(capacity, 300)), coalesce(capacity, 300)
from reference.lot;
insert into ingest.congestion_observation (park_id, observed_at, fetched_at, level, message_ko, population_min, population_max)
select park_id, now() - interval '15 minutes', now() - interval '2 minutes',
       (array['relaxed', 'normal', 'slightly_crowded', 'crowded'])[1 + abs(hashtext(park_id)) % 4],
       '사람이 몰려있을 수 있지만 크게 붐비지는 않아요.', 12000, 14000
from reference.park;
insert into ingest.weather_observation (park_id, observed_at, fetched_at, source, temperature_c, precipitation, sky, rain_chance_percent, pm10, pm25)
select park_id, now() - interval '5 minutes', now() - interval '2 minutes', 'seoul_citydata', 24.5, 'none', 'clear', 10, 30, 14
from reference.park;
insert into ingest.event (event_id, park_id, source, title_ko, place_ko, starts_on, ends_on, free, url, first_seen_at, last_seen_at)
select park_id || '-event-' || n, park_id, 'seoul_cultural_events', '한강 문화 행사 ' || n, park_id || ' 광장',
       current_date - 1, current_date + 7, true, 'https://example.org/events/' || n, now(), now()
from reference.park, generate_series(1, 2) n;
insert into ingest.notice (notice_id, park_id, kind, title_ko, source, starts_at)
select park_id || '-notice', park_id, 'control', '주말 차량 통제 안내', 'hangang_notices', now() + interval '1 day'
from reference.park;
insert into forecast.lot_forecast (lot_id, issued_at, based_on_observed_at, capacity, horizons, confidence, reasons)
select lot_id, now() - interval '30 seconds', now() - interval '60 seconds', coalesce(capacity, 300),
       (select jsonb_agg(jsonb_build_object(
            'horizon_minutes', h, 'target_at', to_char((now() + make_interval(mins => h)) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'p10', 5, 'p50', 40, 'p90', 90, 'risk_full', 0.1, 'risk', 'low', 'confidence', 'medium'))
        from unnest(array[15, 30, 60, 120]) h),
       'medium', '{}'
from reference.lot;
"#;
