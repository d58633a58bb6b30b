//! Typed configuration shared by the services: clap argument groups that read environment variables
//! (12-factor; they map onto the kustomize ConfigMap and Secret), validated once in `main`. A bad value stops
//! the process with an error that names the variable.
//!
//! Each service composes the groups it needs into its own `Config` and documents every option in `--help`.

use std::{fmt, net::SocketAddr, str::FromStr};

/// A value that must never reach logs, errors or `Debug` output: passwords inside URLs, API keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is handed to the library that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret(value.to_owned()))
    }
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable, for local use.
    Pretty,
    /// One JSON object per line, for production log collection.
    Json,
}

/// Options every service has.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonSettings {
    /// The release this process belongs to; reported by health endpoints and `/v2/status` so a smoke check can
    /// tell an old pod from a new one.
    #[arg(long, env = "RELEASE_ID", default_value = "dev")]
    pub release_id: String,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,

    /// Log filter in `tracing-subscriber` `EnvFilter` syntax, e.g. `info,hangang_api=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// The source commit the release was built from; recorded with every process start and in `/metrics`.
    #[arg(long, env = "SOURCE_COMMIT", default_value = "unknown")]
    pub source_commit: String,

    /// The environment this process runs in (`staging`, `production`, `dev`): on the telemetry resource and
    /// on every rollout record, so "what ran in production at 14:05?" can be answered from records.
    #[arg(long, env = "DEPLOYMENT_ENVIRONMENT", default_value = "dev")]
    pub environment: String,

    /// How long rollout records (process starts, smoke outcomes) are kept, in days.
    #[arg(long, env = "OPS_RETENTION_DAYS", default_value_t = 400)]
    pub ops_retention_days: u32,
}

impl Default for CommonSettings {
    /// The defaults of the options above, for tools and tests that build settings without parsing.
    fn default() -> Self {
        CommonSettings {
            release_id: "dev".to_owned(),
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
            source_commit: "unknown".to_owned(),
            environment: "dev".to_owned(),
            ops_retention_days: 400,
        }
    }
}

/// Where a worker serves `/healthz`, `/readyz` and `/metrics`.
#[derive(Clone, Debug, clap::Args)]
pub struct AdminSettings {
    /// Listen address of the admin HTTP endpoints.
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,
}

/// A URL that may carry credentials; parsed for shape, kept secret.
#[derive(Clone, Debug)]
pub struct ConnectionUrl {
    scheme: String,
    url: Secret,
}

/// Why a connection URL was rejected. The message never contains the URL itself (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionUrlError {
    #[error("expected a URL such as {example}")]
    NotAUrl { example: &'static str },
    #[error("unsupported scheme `{scheme}`, expected one of: {expected}")]
    Scheme { scheme: String, expected: String },
}

impl ConnectionUrl {
    /// Parses `value`, accepting only the given schemes (e.g. `["postgres", "postgresql"]`).
    pub fn parse(
        value: &str,
        schemes: &'static [&'static str],
        example: &'static str,
    ) -> Result<Self, ConnectionUrlError> {
        let Some((scheme, rest)) = value.split_once("://") else {
            return Err(ConnectionUrlError::NotAUrl { example });
        };
        if rest.is_empty() {
            return Err(ConnectionUrlError::NotAUrl { example });
        }
        if !schemes.contains(&scheme) {
            return Err(ConnectionUrlError::Scheme {
                scheme: scheme.to_owned(),
                expected: schemes.join(", "),
            });
        }
        Ok(ConnectionUrl { scheme: scheme.to_owned(), url: Secret::new(value) })
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn expose(&self) -> &str {
        self.url.expose()
    }
}

/// A clap value parser for URLs that may hold credentials. clap's usual error repeats the rejected value,
/// which would print a password, so this parser writes its own message naming only the option.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionUrlParser {
    schemes: &'static [&'static str],
    example: &'static str,
}

/// For `DATABASE_URL`.
pub const DATABASE_URL: ConnectionUrlParser = ConnectionUrlParser {
    schemes: &["postgres", "postgresql"],
    example: "postgres://user@host:5432/hangang",
};

/// For `REDIS_URL`.
pub const REDIS_URL: ConnectionUrlParser =
    ConnectionUrlParser { schemes: &["redis", "rediss"], example: "redis://127.0.0.1:6379/0" };

impl ConnectionUrlParser {
    /// Parses a URL outside clap (tests, tools).
    pub fn parse_url(&self, value: &str) -> Result<ConnectionUrl, ConnectionUrlError> {
        ConnectionUrl::parse(value, self.schemes, self.example)
    }
}

impl clap::builder::TypedValueParser for ConnectionUrlParser {
    type Value = ConnectionUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ConnectionUrl, clap::Error> {
        let name = arg.map(|arg| arg.to_string()).unwrap_or_else(|| "value".to_owned());
        let parsed = value
            .to_str()
            .ok_or(ConnectionUrlError::NotAUrl { example: self.example })
            .and_then(|text| ConnectionUrl::parse(text, self.schemes, self.example));
        parsed.map_err(|error| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{name}: {error}\n"))
                .with_cmd(cmd)
        })
    }
}

/// Makes `default` the subcommand when none is named: `hangang-api --http-addr …` runs `serve`, while
/// `hangang-api migrate`, `--help` and `--version` keep their meaning. (clap has no "default subcommand", and
/// flattening the default's options at top level would make them required for every other subcommand.)
pub fn with_default_subcommand(
    mut args: Vec<std::ffi::OsString>,
    subcommands: &[&str],
    default: &str,
) -> Vec<std::ffi::OsString> {
    let first = args.get(1).and_then(|arg| arg.to_str());
    let named = first.is_some_and(|arg| {
        subcommands.contains(&arg) || matches!(arg, "help" | "--help" | "-h" | "--version" | "-V")
    });
    if !named {
        args.insert(1.min(args.len()), default.into());
    }
    args
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct TestConfig {
        #[arg(long, env = "TEST_SETTINGS_DATABASE_URL", value_parser = DATABASE_URL)]
        database_url: ConnectionUrl,
    }

    #[test]
    fn the_default_subcommand_is_inserted_only_when_none_is_named() {
        let run = |args: &[&str]| -> Vec<String> {
            let args = args.iter().map(Into::into).collect();
            with_default_subcommand(args, &["serve", "migrate"], "serve")
                .into_iter()
                .map(|arg| arg.into_string().unwrap())
                .collect()
        };
        assert_eq!(run(&["bin"]), ["bin", "serve"]);
        assert_eq!(run(&["bin", "--http-addr", "x"]), ["bin", "serve", "--http-addr", "x"]);
        assert_eq!(run(&["bin", "migrate"]), ["bin", "migrate"]);
        assert_eq!(run(&["bin", "--help"]), ["bin", "--help"]);
    }

    #[test]
    fn secrets_never_print() {
        let url = TestConfig::try_parse_from([
            "t",
            "--database-url",
            "postgres://hangang:hunter2@db:5432/hangang",
        ])
        .unwrap()
        .database_url;
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "postgres://hangang:hunter2@db:5432/hangang");
    }

    #[test]
    fn a_bad_value_names_the_option_but_not_the_secret() {
        let error =
            TestConfig::try_parse_from(["t", "--database-url", "mysql://root:hunter2@db/x"])
                .unwrap_err()
                .to_string();
        assert!(error.contains("--database-url"), "{error}");
        assert!(error.contains("unsupported scheme `mysql`"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
