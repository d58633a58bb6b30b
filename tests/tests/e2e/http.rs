//! HTTP for the scenarios, over real sockets with reqwest: probes, JSON reads and the app's requests.

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // Every request on a fresh connection, as the scenarios' separate app requests would be.
            .pool_max_idle_per_host(0)
            .build()
            .expect("an HTTP client")
    })
}

/// GETs `path`, returning (status line, body), e.g. `("HTTP/1.1 200 OK", "{…}")`.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(String, String)> {
    let response = client().get(format!("http://{addr}{path}")).send().await?;
    let status = format!("{:?} {}", response.version(), response.status());
    Ok((status, response.text().await?))
}

/// GETs `path` and parses the JSON body.
pub async fn get_json(addr: SocketAddr, path: &str) -> anyhow::Result<serde_json::Value> {
    let (status, body) = get(addr, path).await?;
    anyhow::ensure!(status == "HTTP/1.1 200 OK", "{path}: {status}: {body}");
    Ok(serde_json::from_str(&body)?)
}

/// Sends a request with a body (or none), returning (status code, body).
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut request = client()
        .request(method.parse()?, format!("http://{addr}{path}"))
        .body(body.unwrap_or_default().to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// The value of one series (name and labels exactly as exposed) in a Prometheus text body.
pub fn metric(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from:\n{body}"))
}
