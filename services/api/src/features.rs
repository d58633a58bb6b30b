//! The environment's features file (`FEATURES_FILE`, the `hangang-features` ConfigMap mounted as a volume),
//! kept current without a restart: read at start, then re-read every `FEATURES_RELOAD_SECONDS`, a changed
//! file taking effect for the next request.
//!
//! The kubelet updates a mounted ConfigMap in place (an atomic symlink swap) within about a minute of the
//! ConfigMap changing, so a reviewed commit to `kustomize/overlays/<env>/features.toml` reaches every replica
//! without a new image or a rollout. A file that does not parse is logged and counted
//! (`hangang_api_features_reloads_total{outcome="refused"}`) and the last good one stays in force: a typo
//! must not turn every switch off at once. At start there is no last good file, so a bad one stops the
//! process instead.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use anyhow::Context;
use features::Features;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Where the features file is and how often it is checked for changes.
#[derive(Clone, Debug, clap::Args)]
pub struct FeatureSettings {
    /// The features file (TOML: supported builds and feature switches; the format is in the README). Unset:
    /// no switches and no build requirements, which is what `/v2/config` then says.
    #[arg(long, env = "FEATURES_FILE")]
    pub features_file: Option<PathBuf>,

    /// How often the features file is read again; a changed file applies from the next request.
    #[arg(long, env = "FEATURES_RELOAD_SECONDS", default_value_t = 5)]
    pub features_reload_seconds: u64,
}

/// What became of one look at the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The file is as it was when last read.
    Unchanged,
    /// A changed file parsed and is now in force.
    Applied,
    /// A changed file did not parse; the last good one stays in force.
    Refused,
    /// The file could not be read; the last good one stays in force.
    Unreadable,
}

impl Reload {
    fn as_str(self) -> &'static str {
        match self {
            Reload::Unchanged => "unchanged",
            Reload::Applied => "applied",
            Reload::Refused => "refused",
            Reload::Unreadable => "unreadable",
        }
    }
}

/// The features in force, and what is needed to notice the file changing.
#[derive(Debug)]
pub struct LiveFeatures {
    source: Option<Source>,
    current: RwLock<Arc<Features>>,
    metrics: Metrics,
}

#[derive(Debug)]
struct Source {
    path: PathBuf,
    interval: Duration,
    /// The bytes last read, good or bad, so a refused file is reported once rather than every interval.
    last_read: Mutex<Vec<u8>>,
}

impl LiveFeatures {
    /// No file: no switches, no build requirements.
    pub fn none(metrics: Metrics) -> LiveFeatures {
        LiveFeatures { source: None, current: RwLock::default(), metrics }
    }

    /// Reads the file `settings` name, refusing one that does not parse (there is no last good one yet).
    pub fn load(settings: &FeatureSettings, metrics: Metrics) -> anyhow::Result<LiveFeatures> {
        let Some(path) = &settings.features_file else {
            return Ok(LiveFeatures::none(metrics));
        };
        let bytes = std::fs::read(path)
            .with_context(|| format!("FEATURES_FILE: cannot read {}", path.display()))?;
        let features = parse(&bytes).with_context(|| {
            format!("FEATURES_FILE: {} is not a valid features file", path.display())
        })?;
        tracing::info!(path = %path.display(), switches = features.switches.len(), "features file loaded");
        Ok(LiveFeatures {
            source: Some(Source {
                path: path.clone(),
                interval: Duration::from_secs(settings.features_reload_seconds.max(1)),
                last_read: Mutex::new(bytes),
            }),
            current: RwLock::new(Arc::new(features)),
            metrics,
        })
    }

    /// The features in force now.
    pub fn current(&self) -> Arc<Features> {
        self.current.read().expect("lock is never poisoned").clone()
    }

    /// Reads the file again and applies it when it changed and parses. Public so tests step it.
    pub async fn reload(&self) -> Reload {
        let Some(source) = &self.source else {
            return Reload::Unchanged;
        };
        let path = source.path.clone();
        // A blocking read: a ConfigMap file is a few hundred bytes, but the volume is still a filesystem.
        let read = tokio::task::spawn_blocking(move || std::fs::read(path)).await;
        let outcome = match read {
            Ok(Ok(bytes)) => self.apply(source, bytes),
            Ok(Err(error)) => {
                tracing::warn!(path = %source.path.display(), %error, "cannot read the features file; keeping the last good one");
                Reload::Unreadable
            }
            Err(error) => {
                tracing::warn!(%error, "the features file read did not finish; keeping the last good one");
                Reload::Unreadable
            }
        };
        if outcome != Reload::Unchanged {
            self.metrics.features_reload(outcome.as_str());
        }
        outcome
    }

    fn apply(&self, source: &Source, bytes: Vec<u8>) -> Reload {
        let mut last_read = source.last_read.lock().expect("lock is never poisoned");
        if *last_read == bytes {
            return Reload::Unchanged;
        }
        let outcome = match parse(&bytes) {
            Ok(features) => {
                tracing::info!(path = %source.path.display(), switches = features.switches.len(), "features file changed; applied");
                *self.current.write().expect("lock is never poisoned") = Arc::new(features);
                Reload::Applied
            }
            Err(error) => {
                tracing::error!(path = %source.path.display(), error = %format!("{error:#}"), "features file changed but does not parse; keeping the last good one");
                Reload::Refused
            }
        };
        *last_read = bytes;
        outcome
    }
}

fn parse(bytes: &[u8]) -> anyhow::Result<Features> {
    let text = std::str::from_utf8(bytes).context("not UTF-8")?;
    Ok(Features::parse(text)?)
}

/// Re-reads the features file every interval until `shutdown`.
pub async fn reload_periodically(features: Arc<LiveFeatures>, shutdown: CancellationToken) {
    let Some(interval) = features.source.as_ref().map(|source| source.interval) else {
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        features.reload().await;
    }
}
