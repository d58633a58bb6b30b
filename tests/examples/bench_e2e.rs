//! `cargo xtask bench e2e`: the whole system, as processes running the release binaries, under a steady load
//! for a fixed time: app reads at a fixed rate, ingest cycles, and threshold crossings that fan out to every
//! subscribed installation. Prints error counts, latency percentiles, each service's memory at the start and
//! the end of the load, and the push outbox's lag. `--seconds N` makes it a soak.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark prints its table")]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use local_servers::system;
use xshell::{Shell, cmd};

/// App reads per second.
const READ_RATE: u32 = 100;
/// Installations subscribed to every Yeouido lot.
const INSTALLATIONS: usize = 100;
/// One Yeouido lot changes every this often, in turn: below the subscribed threshold, then back above it on
/// its next turn. Only a lot's first drop alerts (the 30-minute cool-down holds back the rest of a shorter
/// run), so later drops keep push deciding, and suppressing, for as long as the load lasts.
const FLIP_EVERY: Duration = Duration::from_secs(5);
/// Free spaces a lot drops to (below every subscription's threshold) and recovers to.
const LOW: u32 = 20;
const HIGH: u32 = 300;
/// Growth of a service's resident memory over the run accepted as "no growth" (allocator warm-up included).
const RSS_BOUND_MIB: f64 = 16.0;

const READS: [&str; 4] = [
    "/v2/home-summary?lang=en",
    "/v2/parks/yeouido",
    "/v2/widgets/parking?lot_ids=yeouido-1,yeouido-2",
    "/v2/status",
];

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn percentile(sorted: &[u32], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

fn main() -> anyhow::Result<()> {
    let seconds: u64 = match std::env::args().skip_while(|arg| arg != "--seconds").nth(1) {
        Some(value) => value.parse().context("--seconds takes a number")?,
        None => 60,
    };
    let sh = &Shell::new()?;
    eprintln!("bench: building the release binaries");
    cmd!(sh, "cargo build --release --locked --bin hangang-api --bin hangang-ingest --bin hangang-forecast --bin hangang-push").run()?;
    let bin = tests::bench::release_dir()?;
    // The load generator stands in for the ingress: it names each simulated device in X-Forwarded-For.
    let api_env = [("TRUSTED_PROXIES", "127.0.0.1/32")];
    let mut system = system::start(
        sh,
        &bin,
        &bin.join("bench-e2e"),
        &system::Options {
            api_env: &api_env,
            advance_day: false,
            database: "hangang_bench_e2e",
            fresh: true,
        },
    )?;
    let api = &format!("http://{}", system::API_ADDR);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let runtime = &system.runtime;

    // Every Yeouido lot high, collected, before anyone subscribes.
    let yeouido: Vec<String> = system.world.update(|state| {
        state
            .lots
            .iter()
            .filter(|lot| lot.name.starts_with("여의도"))
            .map(|lot| lot.name.clone())
            .collect()
    });
    for name in &yeouido {
        system.world.set_available(name, Some(500));
    }
    let lot_ids: Vec<String> = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let park: serde_json::Value =
                match client.get(format!("{api}/v2/parks/yeouido")).send().await {
                    Ok(response) if response.status().is_success() => response.json().await?,
                    _ => serde_json::Value::Null,
                };
            let lots = park["lots"].as_array().cloned().unwrap_or_default();
            if !lots.is_empty()
                && lots.iter().all(|lot| lot["available"] == 500 || lot["available"].is_null())
            {
                return Ok::<_, anyhow::Error>(
                    lots.iter()
                        .filter_map(|lot| lot["lot_id"].as_str().map(str::to_owned))
                        .collect(),
                );
            }
            anyhow::ensure!(Instant::now() < deadline, "the system never served the first values");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })?;

    eprintln!("bench: registering {INSTALLATIONS} installations on {} lots", lot_ids.len());
    runtime.block_on(register(&client, api, &lot_ids))?;
    std::thread::sleep(Duration::from_secs(3));
    let pids: Vec<(&str, u32)> =
        system.children.0.iter().map(|(name, child)| (*name, child.id())).collect();
    let rss_start: Vec<f64> = pids.iter().map(|(_, pid)| rss_mib(*pid)).collect();

    eprintln!(
        "bench: {READ_RATE} reads/s for {seconds} s, a crossing every {} s",
        FLIP_EVERY.as_secs()
    );
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u32>::new()));
    let flips = runtime.block_on(async {
        let started = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / READ_RATE);
        let mut next_flip = started + FLIP_EVERY;
        let mut flips = 0;
        let mut requests = Vec::new();
        let mut n = 0_usize;
        while started.elapsed() < Duration::from_secs(seconds) {
            ticker.tick().await;
            // A service that died would make every figure below meaningless: stop at once.
            if n.is_multiple_of(READ_RATE as usize) {
                for (name, child) in &mut system.children.0 {
                    if let Some(status) = child.try_wait()? {
                        anyhow::bail!("{name} exited during the load: {status}");
                    }
                }
            }
            if Instant::now() >= next_flip && !yeouido.is_empty() {
                let round = flips / yeouido.len();
                let value = if round.is_multiple_of(2) { LOW } else { HIGH };
                system.world.set_available(&yeouido[flips % yeouido.len()], Some(value));
                flips += 1;
                next_flip += FLIP_EVERY;
            }
            let url = format!("{api}{}", READS[n % READS.len()]);
            n += 1;
            let (client, latencies, errors) = (client.clone(), latencies.clone(), errors.clone());
            requests.push(tokio::spawn(async move {
                let sent = Instant::now();
                let outcome = client.get(&url).send().await;
                let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                match outcome {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.lock().expect("not poisoned").push(micros);
                    }
                    Ok(response) => {
                        *errors
                            .lock()
                            .expect("not poisoned")
                            .entry(response.status().to_string())
                            .or_default() += 1;
                    }
                    Err(error) => {
                        let kind = if error.is_timeout() { "timeout" } else { "transport" };
                        *errors
                            .lock()
                            .expect("not poisoned")
                            .entry(kind.to_owned())
                            .or_default() += 1;
                    }
                }
            }));
        }
        for request in requests {
            let _ = request.await;
        }
        Ok(flips)
    })?;
    let rss_end: Vec<f64> = pids.iter().map(|(_, pid)| rss_mib(*pid)).collect();

    // Let the last crossing's alerts drain, then read the outbox.
    std::thread::sleep(Duration::from_secs(10));
    let database_url = &system.database_url;
    let query = "select count(*) filter (where status = 'sent'), count(*) filter (where status = 'pending'),
        coalesce(round(1000 * percentile_cont(0.5) within group (order by extract(epoch from sent_at - created_at)))::text, '-'),
        coalesce(round(1000 * percentile_cont(0.99) within group (order by extract(epoch from sent_at - created_at)))::text, '-'),
        coalesce(round(1000 * max(extract(epoch from sent_at - created_at)))::text, '-')
        from push.outbox";
    let lag = cmd!(sh, "psql {database_url} -Atqc {query}")
        .read()
        .context("cannot read the push outbox")?;
    let decisions_query = "select coalesce(string_agg(n || ' ' || coalesce(reason, decision), ', ' order by n desc), 'none'),
        coalesce(sum(n) filter (where decision = 'push_now'), 0)
        from (select decision, reason, count(*) as n from push.decision group by decision, reason) d";
    let decisions = cmd!(sh, "psql {database_url} -Atqc {decisions_query}")
        .read()
        .context("cannot read push's decisions")?;
    let (decided, push_now) = decisions.trim().rsplit_once('|').unwrap_or(("?", "?"));
    let deliveries = system.apns.deliveries().len();

    let mut latencies = latencies.lock().expect("not poisoned").clone();
    latencies.sort_unstable();
    let errors = errors.lock().expect("not poisoned").clone();
    let error_count: u32 = errors.values().sum();
    println!();
    println!(
        "e2e bench: {seconds} s, {READ_RATE} reads/s over {} routes, {INSTALLATIONS} installations, {flips} lot changes ({} drops below the threshold)",
        READS.len(),
        (0..flips).filter(|flip| (flip / yeouido.len().max(1)).is_multiple_of(2)).count()
    );
    println!(
        "reads: {} ok, {error_count} errors {errors:?}; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    let fields: Vec<&str> = lag.trim().split('|').collect();
    println!(
        "push: decisions {decided}; {deliveries} alerts at APNs (one per push_now: {push_now}); outbox sent {}, pending {}; lag created→sent p50 {} ms, p99 {} ms, max {} ms",
        fields.first().unwrap_or(&"?"),
        fields.get(1).unwrap_or(&"?"),
        fields.get(2).unwrap_or(&"?"),
        fields.get(3).unwrap_or(&"?"),
        fields.get(4).unwrap_or(&"?"),
    );
    println!("{:<18} {:>12} {:>10} {:>10}", "service", "RSS start", "RSS end", "growth");
    let mut grew = Vec::new();
    for (((name, _), start), end) in pids.iter().zip(&rss_start).zip(&rss_end) {
        let growth = end - start;
        println!("{name:<18} {start:>8.1} MiB {end:>6.1} MiB {growth:>+6.1} MiB");
        if growth > RSS_BOUND_MIB {
            grew.push(*name);
        }
    }
    println!(
        "memory bound: growth ≤ {RSS_BOUND_MIB} MiB per service over the run: {}",
        if grew.is_empty() { "met".to_owned() } else { format!("EXCEEDED by {grew:?}") }
    );
    drop(system);
    anyhow::ensure!(error_count == 0, "{error_count} reads failed");
    anyhow::ensure!(
        push_now.parse() == Ok(deliveries),
        "{deliveries} alerts reached APNs for {push_now} push_now decisions: lost or duplicated"
    );
    Ok(())
}

/// `INSTALLATIONS` installations, each subscribed to every lot dropping below 100, from distinct addresses
/// (the api limits writes per client).
async fn register(client: &reqwest::Client, api: &str, lot_ids: &[String]) -> anyhow::Result<()> {
    let subscriptions: Vec<serde_json::Value> = lot_ids
        .iter()
        .map(|lot_id| {
            serde_json::json!({"target_kind": "lot", "target_id": lot_id, "signal": "lot_available_below",
                               "threshold": 100, "enabled": true})
        })
        .collect();
    let preferences = serde_json::json!({"subscriptions": subscriptions});
    for index in 0..INSTALLATIONS {
        let address = format!("10.77.{}.{}", index / 256, index % 256);
        let body = serde_json::json!({"apns_token": format!("{index:064x}"), "apns_environment": "sandbox",
                                      "locale": "ko-KR", "app_version": "2.3.0 (412)"});
        let created: serde_json::Value = client
            .post(format!("{api}/v2/installations"))
            .header("x-forwarded-for", &address)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["installation_id"].as_str().context("no installation_id")?;
        let secret = created["secret"].as_str().context("no secret")?;
        client
            .put(format!("{api}/v2/installations/{id}/preferences"))
            .header("x-forwarded-for", &address)
            .bearer_auth(secret)
            .json(&preferences)
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(())
}
