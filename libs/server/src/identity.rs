//! Who a process is: service, release, source commit, environment and host. Reported by the health endpoints,
//! as the `hangang_build_info` metric and on every rollout record, so dashboards and the release ledger can
//! tell which release answered.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};
use serde_json::{Value, json};

/// One process's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub service: &'static str,
    pub release_id: String,
    pub commit: String,
    pub environment: String,
    /// The pod name in Kubernetes (its hostname), the machine's name elsewhere.
    pub host: String,
}

impl Identity {
    /// The identity of `service` as configured by the common options, on this host.
    pub fn new(service: &'static str, common: &settings::CommonSettings) -> Identity {
        Identity {
            service,
            release_id: common.release_id.clone(),
            commit: common.source_commit.clone(),
            environment: common.environment.clone(),
            host: host_name(),
        }
    }

    /// The body of `/healthz` and `/readyz` (before readiness details).
    pub fn health_body(&self) -> Value {
        json!({
            "status": "ok",
            "service": self.service,
            "release_id": self.release_id,
            "commit": self.commit,
        })
    }

    /// Records this process's start in `ops.process_start` in the background (see [`db::ops::spawn_start_record`]:
    /// a failed write is logged and never stops the process). The handle says whether the row was written.
    pub fn record_start(
        &self,
        pool: &sqlx::PgPool,
        started_at: contracts::Timestamp,
        retention_days: u32,
    ) -> tokio::task::JoinHandle<bool> {
        let start = db::ops::ProcessStart {
            service: self.service.to_owned(),
            release_id: self.release_id.clone(),
            source_commit: self.commit.clone(),
            environment: self.environment.clone(),
            host: self.host.clone(),
            pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            started_at,
        };
        db::ops::spawn_start_record(pool.clone(), start, retention_days)
    }

    /// `hangang_build_info{service, release_id, commit} 1` as OpenMetrics text without the closing `# EOF`,
    /// to stand before a service's own families in `/metrics` (so every service exports it under one name,
    /// whatever prefix its own registry has).
    pub fn build_info_family(&self) -> String {
        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        struct Labels {
            service: String,
            release_id: String,
            commit: String,
        }
        let family = Family::<Labels, Gauge>::default();
        family
            .get_or_create(&Labels {
                service: self.service.to_owned(),
                release_id: self.release_id.clone(),
                commit: self.commit.clone(),
            })
            .set(1);
        let mut registry = Registry::with_prefix("hangang");
        registry.register(
            "build_info",
            "The release and commit this process runs; always 1",
            family,
        );
        let mut text = String::new();
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text.strip_suffix("# EOF\n").map(str::to_owned).unwrap_or(text)
    }
}

/// The pod name (Kubernetes sets `HOSTNAME`), else the kernel's host name.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_is_one_gauge_with_the_release_and_commit() {
        let identity = Identity {
            service: "push",
            release_id: "2026.12.01.101500-0123456789ab".to_owned(),
            commit: "0123456789abcdef".to_owned(),
            environment: "staging".to_owned(),
            host: "hangang-push-5d8f".to_owned(),
        };
        let text = identity.build_info_family();
        assert!(text.contains("# TYPE hangang_build_info gauge"), "{text}");
        assert!(
            text.contains(
                r#"hangang_build_info{service="push",release_id="2026.12.01.101500-0123456789ab",commit="0123456789abcdef"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "the service's own encoding ends the exposition: {text}");
    }
}
