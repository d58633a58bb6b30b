//! `cargo xtask bench api`: the api's hot path against nginx serving the same bytes, on this machine, in one
//! run, with the same wrk settings; plus a fixed-rate latency run, the cold rebuild time and peak memory.
//! Then what every iOS request looks like (`Accept-Encoding: gzip, deflate, br`) on the home summary and a
//! park's detail: the api (brotli, compressed once per body) against nginx serving precompressed gzip
//! (`gzip_static`), with the CPU each spends per request, and what the old per-request brotli at its default
//! quality 11 costs, for the record.
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

/// What iOS's URLSession sends on every request.
const IOS_ACCEPT_ENCODING: &str = "gzip, deflate, br";
/// The routes measured compressed, and the file nginx serves each from.
const COMPRESSED_ROUTES: [(&str, &str); 2] =
    [("/v2/home-summary", "home-summary.json"), ("/v2/parks/yeouido", "park.json")];
/// The compressed runs' target: the api's throughput against nginx's precompressed files.
const COMPRESSED_TARGET: f64 = 0.70;
/// Runs of each server per compressed route, interleaved; the median is reported.
const COMPRESSED_REPEATS: usize = 3;
/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, 100 a second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

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
    let admin_port = free_port()?;
    let api = ChildGuard(
        Command::new(binary)
            .env("HTTP_ADDR", format!("127.0.0.1:{api_port}"))
            .env("ADMIN_ADDR", format!("127.0.0.1:{admin_port}"))
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
    let rebuild = metric_average(admin_port, "hangang_api_snapshot_rebuild_duration_seconds")?;

    // The body nginx will serve: exactly what the api serves from its hot cache.
    // The first request after the cold runs may still be `live`; the second is the hot-cache body.
    get(api_port, PATH)?;
    let (_, body) = get(api_port, PATH)?;
    let scratch = tempdir()?;
    std::fs::write(scratch.join("home-summary.json"), &body)?;
    // The park detail as the api serves it hot, and each file's gzip beside it for `gzip_static`.
    get(api_port, COMPRESSED_ROUTES[1].0)?;
    let (status, park) = get(api_port, COMPRESSED_ROUTES[1].0)?;
    if status != 200 {
        bail!("{} answered {status}", COMPRESSED_ROUTES[1].0);
    }
    std::fs::write(scratch.join(COMPRESSED_ROUTES[1].1), &park)?;
    for (_, file) in COMPRESSED_ROUTES {
        let file = scratch.join(file);
        cmd!(sh, "gzip -6 -k -n -f {file}").run()?;
    }
    let nginx_port = free_port()?;
    let nginx = start_nginx(&scratch, nginx_port)?;
    let nginx_url = format!("http://127.0.0.1:{nginx_port}{PATH}");
    wait_until_serving(nginx_port)?;
    let (_, nginx_body) = get(nginx_port, PATH)?;
    if nginx_body != body {
        bail!("nginx does not serve the same bytes as the api");
    }

    eprintln!("bench: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS}, nginx then api");
    let nginx_wrk = wrk(sh, &nginx_url, None)?;
    let api_wrk = wrk(sh, &api_url, None)?;
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

    let compressed = compressed_runs(sh, api.0.id(), api_port, nginx.0.id(), nginx_port, &body);
    std::fs::remove_dir_all(&scratch).ok();
    compressed
}

/// The compressed half: each route with iOS's `Accept-Encoding` against nginx's precompressed file, then the
/// cost of compressing per request at brotli's default quality, which the api paid before it kept bodies
/// compressed at a bounded level.
fn compressed_runs(
    sh: &Shell,
    api_pid: u32,
    api_port: u16,
    nginx_pid: u32,
    nginx_port: u16,
    home_summary: &[u8],
) -> anyhow::Result<()> {
    let accept = [("accept-encoding", IOS_ACCEPT_ENCODING)];
    let mut rows = Vec::new();
    let mut worst = f64::INFINITY;
    for (route, _) in COMPRESSED_ROUTES {
        let api_url = format!("http://127.0.0.1:{api_port}{route}");
        let nginx_url = format!("http://127.0.0.1:{nginx_port}{route}");
        let api_answer = tests::bench::get_blocking_with(&api_url, &accept)?;
        let nginx_answer = tests::bench::get_blocking_with(&nginx_url, &accept)?;
        if api_answer.content_encoding.as_deref() != Some("br") {
            bail!("the api did not answer {route} in brotli: {:?}", api_answer.content_encoding);
        }
        if nginx_answer.content_encoding.as_deref() != Some("gzip") {
            bail!("nginx did not serve {route} precompressed: {:?}", nginx_answer.content_encoding);
        }
        let header = format!("Accept-Encoding: {IOS_ACCEPT_ENCODING}");
        // Interleaved runs, each server's median: the machine's other load drifts over a minute, and a
        // single run each would credit the drift to whichever server ran at the quiet moment.
        let (mut nginx_runs, mut api_runs) = (Vec::new(), Vec::new());
        for _ in 0..COMPRESSED_REPEATS {
            let cpu = CpuMeter::start(&nginx_processes(nginx_pid)?)?;
            let run = wrk(sh, &nginx_url, Some(&header))?;
            nginx_runs.push((cpu.per_request(run.requests)?, run));
            let cpu = CpuMeter::start(&[api_pid])?;
            let run = wrk(sh, &api_url, Some(&header))?;
            api_runs.push((cpu.per_request(run.requests)?, run));
        }
        let (nginx_cpu, nginx_wrk) = median(nginx_runs);
        let (api_cpu, api_wrk) = median(api_runs);
        let ratio = api_wrk.requests_per_second / nginx_wrk.requests_per_second;
        worst = worst.min(ratio);
        rows.push(format!(
            "| {route} | {:.0} req/s, {} µs CPU/req, gzip {} B | {:.0} req/s, {} µs CPU/req, br {} B | {ratio:.2}× nginx (target ≥ {COMPRESSED_TARGET:.2}×) |",
            nginx_wrk.requests_per_second,
            micros(nginx_cpu),
            nginx_answer.body.len(),
            api_wrk.requests_per_second,
            micros(api_cpu),
            api_answer.body.len(),
        ));
    }
    println!(
        "\n`Accept-Encoding: {IOS_ACCEPT_ENCODING}` (wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS}, the median of {COMPRESSED_REPEATS} interleaved runs each; CPU from /proc, all processes of each server)\n"
    );
    println!(
        "| route | nginx (gzip_static) | api (kept brotli q{}) | ratio |",
        api::encoding::BROTLI_QUALITY
    );
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }

    // For the record: compressing the home summary once, at the kept levels and at brotli's default.
    let once = |compress: &dyn Fn(&[u8]) -> usize| -> (Duration, usize) {
        let repeats = 20;
        let started = Instant::now();
        let mut size = 0;
        for _ in 0..repeats {
            size = compress(home_summary);
        }
        (started.elapsed() / repeats, size)
    };
    let (brotli_kept, brotli_kept_size) =
        once(&|body| api::encoding::Coding::Brotli.encode(body).len());
    let (gzip_kept, gzip_kept_size) = once(&|body| api::encoding::Coding::Gzip.encode(body).len());
    let (brotli_default, brotli_default_size) = once(&|body| {
        let mut out = Vec::new();
        let params = brotli::enc::BrotliEncoderParams { quality: 11, ..Default::default() };
        brotli::BrotliCompress(&mut &body[..], &mut out, &params).expect("compressing to a Vec");
        out.len()
    });
    println!(
        "\ncompressing the home summary ({} B) once: brotli q{} {} ({} B), gzip {} {} ({} B); brotli at its default q11, \
         which a per-request compression layer paid on every request: {} ({} B)",
        home_summary.len(),
        api::encoding::BROTLI_QUALITY,
        ms(brotli_kept),
        brotli_kept_size,
        api::encoding::GZIP_LEVEL,
        ms(gzip_kept),
        gzip_kept_size,
        ms(brotli_default),
        brotli_default_size,
    );
    if worst < COMPRESSED_TARGET {
        bail!(
            "a compressed route reached {worst:.2}× nginx, below the {COMPRESSED_TARGET:.2}× target"
        );
    }
    Ok(())
}

/// The run with the median throughput, with its CPU per request.
fn median(mut runs: Vec<(Duration, WrkResult)>) -> (Duration, WrkResult) {
    runs.sort_by(|a, b| a.1.requests_per_second.total_cmp(&b.1.requests_per_second));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

fn micros(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e6)
}

/// CPU time (user + system) that a set of processes spent between `start` and `per_request`.
struct CpuMeter {
    pids: Vec<u32>,
    ticks: u64,
}

impl CpuMeter {
    fn start(pids: &[u32]) -> anyhow::Result<CpuMeter> {
        Ok(CpuMeter { pids: pids.to_vec(), ticks: cpu_ticks(pids)? })
    }

    fn per_request(self, requests: u64) -> anyhow::Result<Duration> {
        let spent = cpu_ticks(&self.pids)?.saturating_sub(self.ticks);
        Ok(Duration::from_secs_f64(spent as f64 / TICKS_PER_SECOND / requests.max(1) as f64))
    }
}

/// `utime + stime` of each process, summed.
fn cpu_ticks(pids: &[u32]) -> anyhow::Result<u64> {
    let mut total = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // The command name may hold spaces; the fields after it are space-separated.
        let fields: Vec<&str> =
            stat.rsplit_once(')').context("malformed /proc stat")?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
        total += fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    }
    Ok(total)
}

/// nginx's master and its workers (which serve the requests).
fn nginx_processes(master: u32) -> anyhow::Result<Vec<u32>> {
    let mut pids = vec![master];
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if parent == Some(master.to_string().as_str()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master stops its workers on it, while SIGKILL would leave them running.
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
         \n  server {{\n    listen 127.0.0.1:{port};\n    gzip_static on;\n    location = {PATH} {{ default_type application/json; alias {dir}/home-summary.json; }}\n    location = {park} {{ default_type application/json; alias {dir}/{park_file}; }}\n  }}\n}}\n",
        dir = dir.display(),
        park = COMPRESSED_ROUTES[1].0,
        park_file = COMPRESSED_ROUTES[1].1,
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
    requests: u64,
    requests_per_second: f64,
    p50: String,
    p99: String,
}

/// One wrk run, with an extra request `header` (`Name: value`) when given.
fn wrk(sh: &Shell, url: &str, header: Option<&str>) -> anyhow::Result<WrkResult> {
    let header: Vec<&str> = header.map(|header| vec!["-H", header]).unwrap_or_default();
    let output = cmd!(
        sh,
        "wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECONDS} --latency {header...} {url}"
    )
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
    let requests = output
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .with_context(|| format!("wrk printed no request count:\n{output}"))?
        .0
        .parse()?;
    Ok(WrkResult {
        requests,
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
