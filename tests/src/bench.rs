//! What the benchmarks in `tests/examples/bench_*.rs` share (`cargo xtask bench <name>` runs them): where the
//! release binaries are, and a blocking GET for the synchronous benchmark drivers.

use std::{path::PathBuf, sync::OnceLock, time::Duration};

use anyhow::Context;

/// The release profile's output directory, where `cargo build --release` puts the service binaries: the
/// benchmark's own executable lives in its `examples/` directory.
pub fn release_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|examples| examples.parent());
    Ok(dir.context("the benchmark does not run from a target directory")?.to_owned())
}

/// One GET on a fresh connection, waiting for the whole body: `(status, body)`.
pub fn get_blocking(url: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let response = get_blocking_with(url, &[])?;
    Ok((response.status, response.body))
}

/// An answer to [`get_blocking_with`]: the body as sent (not decompressed).
#[derive(Debug)]
pub struct BlockingResponse {
    pub status: u16,
    pub content_encoding: Option<String>,
    pub body: Vec<u8>,
}

/// One GET with `headers` on a fresh connection, waiting for the whole body, which is returned as it came
/// over the wire (a compressed body stays compressed).
pub fn get_blocking_with(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<BlockingResponse> {
    static HTTP: OnceLock<(tokio::runtime::Runtime, reqwest::Client)> = OnceLock::new();
    let (runtime, client) = HTTP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the benchmark's requests");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .no_gzip()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        (runtime, client)
    });
    runtime.block_on(async {
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let content_encoding = response
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(BlockingResponse { status, content_encoding, body: response.bytes().await?.to_vec() })
    })
}
