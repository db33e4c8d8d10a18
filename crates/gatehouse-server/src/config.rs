//! Configuration: one typed struct, layered `gatehouse.toml` → `GATEHOUSE_*` environment →
//! command-line flags. Unknown keys are rejected at every layer. Reference:
//! `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use gatehouse_core::Issuer;
use serde::{Deserialize, Serialize};

/// The configuration file read when `--config` is not given (and only if it exists).
pub const DEFAULT_CONFIG_FILE: &str = "gatehouse.toml";

/// Every setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the server listens on.
    pub listen: SocketAddr,
    /// The URL clients reach this server at: the root issuer, and the prefix of every
    /// per-MCP-server issuer. Defaults to `http://{listen}`.
    pub public_url: Option<String>,
    /// Directory holding the SQLite database (and with it the signing keys).
    pub data_dir: PathBuf,
    /// `postgres://user:password@host:5432/database`: keep everything in PostgreSQL instead
    /// of the SQLite file in `data_dir`, so several nodes can share it. Better given as
    /// GATEHOUSE_DATABASE_URL than in a file when it holds a password.
    pub database_url: Option<Redacted>,
    /// PostgreSQL connections each node keeps open at most.
    pub database_max_connections: u32,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter, in `tracing` env-filter syntax (`info`, `gatehouse=debug`, …).
    pub log_level: String,
    /// How often, in milliseconds, the server looks for changes made by other processes
    /// (the CLI, other nodes) to MCP servers, clients and keys.
    pub refresh_interval_ms: u64,
    /// Authorization code lifetime in seconds (at most 60).
    pub code_ttl_secs: u32,
    /// Refresh token lifetime in seconds; each rotation starts a new one.
    pub refresh_token_ttl_secs: u32,
    /// Seconds after a refresh token is used during which an identical retry gets the same
    /// answer instead of revoking everything (clients race).
    pub refresh_grace_secs: u32,
    /// A sign-in session unused for this many seconds ends.
    pub session_idle_secs: u32,
    /// A sign-in session ends this many seconds after sign-in.
    pub session_max_secs: u32,
    /// Self-registered clients that obtain no token for this many days are deleted.
    pub registration_expiry_days: u32,
    /// Self-registered clients that never obtained a token are deleted this many hours after
    /// they registered (hosts that register on every connection leave many behind).
    pub unused_registration_expiry_hours: u32,
    /// Dynamic client registrations accepted per client IP address per hour.
    pub registrations_per_ip_per_hour: u32,
    /// Whether `serve` and the CLI apply pending schema migrations when they open the database.
    /// Off for rolling upgrades: `gatehouse migrate` applies them, and a node refuses to start
    /// on a database that lacks some.
    pub auto_migrate: bool,
    /// Token endpoint requests accepted per client IP address per minute.
    pub token_requests_per_ip_per_minute: u32,
    /// Authorization and sign-in requests (pages and forms) per client IP per minute.
    pub page_requests_per_ip_per_minute: u32,
    /// Token requests per confidential client per minute, unless a tier of
    /// `client_rate_limits` applies.
    pub token_requests_per_client_per_minute: u32,
    /// Tiers of per-client token limits by MCP server and scope; the first that applies wins.
    pub client_rate_limits: Vec<ClientRateTier>,
    /// Audit events older than this many days are deleted.
    pub audit_retention_days: u32,
    /// A new signing key is published this many seconds before it signs: at least the time
    /// resource servers cache the JWKS.
    pub key_publish_ahead_secs: u32,
    /// Each signing key is replaced after this many days; 0 turns scheduled rotation off.
    pub key_rotation_days: u32,
    /// Failed sign-ins allowed per account in 15 minutes before it is locked for the rest of
    /// the window.
    pub sign_in_failures_per_account: u32,
    /// Failed sign-ins allowed per client IP address in 15 minutes.
    pub sign_in_failures_per_ip: u32,
    /// Development only: fetch Client ID Metadata Documents from loopback addresses, also over
    /// plain http. Never turn this on in production: it lets anyone make the server fetch
    /// local URLs.
    pub dev_loopback_metadata_documents: bool,
    /// The sender of sign-in codes, e.g. `Acme sign-in <no-reply@acme.example>`. Needed with
    /// `smtp_host`; with `email_outbox` it defaults to `gatehouse@localhost`.
    pub email_from: Option<String>,
    /// Development: write each email as a file into this folder instead of sending it.
    pub email_outbox: Option<PathBuf>,
    /// The SMTP server that sends sign-in codes. With it (or `email_outbox`), people can
    /// sign in with a code sent by email.
    pub smtp_host: Option<String>,
    /// The SMTP port; defaults to 465 (`tls`), 587 (`starttls`) or 25 (`none`).
    pub smtp_port: Option<u16>,
    /// `tls` (TLS from the first byte), `starttls` (required), or `none` (plain text: only
    /// for a relay on the same host or network).
    pub smtp_tls: SmtpTls,
    /// The SMTP user name, if the server wants one.
    pub smtp_username: Option<String>,
    /// The SMTP password (better given as GATEHOUSE_SMTP_PASSWORD than in a file).
    pub smtp_password: Option<Redacted>,
    /// The bearer token a Prometheus scraper sends to `/metrics`. Unset, `/metrics` answers
    /// requests from this machine only.
    pub metrics_token: Option<Redacted>,
}

/// A tier of per-client token limits: clients of `server` (every MCP server if unset) that may
/// have `scope` (any client if unset) get `per_minute` token requests a minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRateTier {
    /// The MCP server, `res_…`.
    #[serde(default)]
    pub server: Option<String>,
    /// A scope the client may be granted, e.g. `mcp:tools:*`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Token requests a minute.
    pub per_minute: u32,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Tls,
    Starttls,
    None,
}

/// A secret setting: shown as `[redacted]` in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            public_url: None,
            data_dir: PathBuf::from("./gatehouse-data"),
            database_url: None,
            database_max_connections: 16,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            refresh_interval_ms: 1000,
            code_ttl_secs: 60,
            refresh_token_ttl_secs: 30 * 86_400,
            refresh_grace_secs: 10,
            session_idle_secs: 12 * 3_600,
            session_max_secs: 7 * 86_400,
            registration_expiry_days: 30,
            unused_registration_expiry_hours: 24,
            registrations_per_ip_per_hour: 60,
            auto_migrate: true,
            token_requests_per_ip_per_minute: 600,
            page_requests_per_ip_per_minute: 300,
            token_requests_per_client_per_minute: 600,
            client_rate_limits: Vec::new(),
            audit_retention_days: 90,
            key_publish_ahead_secs: 86_400,
            key_rotation_days: 90,
            sign_in_failures_per_account: 5,
            sign_in_failures_per_ip: 20,
            dev_loopback_metadata_documents: false,
            email_from: None,
            email_outbox: None,
            smtp_host: None,
            smtp_port: None,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: None,
            smtp_password: None,
            metrics_token: None,
        }
    }
}

/// Settings given as flags; `None` leaves the lower layers in charge.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// A configuration that could not be loaded; the message names the key and its source.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then the file (`path`, or `gatehouse.toml` if present), then
    /// `GATEHOUSE_*` variables from `env`, then flags.
    pub fn load(
        path: Option<&Path>,
        env: &[(String, String)],
        flags: &FlagOverrides,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if !p.exists() => {
                return Err(ConfigError(format!("file {} does not exist", p.display())));
            }
            Some(p) => figment = figment.merge(Toml::file_exact(p)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        let env: Vec<(String, String)> = env
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("GATEHOUSE_")?;
                // GATEHOUSE_CONFIG names the file; it is not a setting.
                (key != "CONFIG").then(|| (key.to_ascii_lowercase(), v.clone()))
            })
            .collect();
        for (k, v) in env {
            figment = figment.merge(Serialized::global(&k, parse_env_value(&k, &v)));
        }
        figment = figment.merge(Serialized::globals(flags));
        let config: Config = figment.extract().map_err(|e| ConfigError(flatten(e)))?;
        config.public_issuer()?;
        config.check_ranges()?;
        config.check_email()?;
        config.check_database()?;
        if config
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.0.len() < 16)
        {
            return Err(ConfigError(
                "metrics_token must be at least 16 characters (a random string)".into(),
            ));
        }
        Ok(config)
    }

    fn check_ranges(&self) -> Result<(), ConfigError> {
        let checks: [(&str, u32, std::ops::RangeInclusive<u32>); 14] = [
            ("code_ttl_secs", self.code_ttl_secs, 5..=60),
            (
                "refresh_token_ttl_secs",
                self.refresh_token_ttl_secs,
                60..=365 * 86_400,
            ),
            ("refresh_grace_secs", self.refresh_grace_secs, 0..=120),
            (
                "session_idle_secs",
                self.session_idle_secs,
                60..=30 * 86_400,
            ),
            ("session_max_secs", self.session_max_secs, 60..=365 * 86_400),
            (
                "registration_expiry_days",
                self.registration_expiry_days,
                1..=3650,
            ),
            (
                "unused_registration_expiry_hours",
                self.unused_registration_expiry_hours,
                1..=24 * 3650,
            ),
            (
                "registrations_per_ip_per_hour",
                self.registrations_per_ip_per_hour,
                1..=100_000,
            ),
            (
                "token_requests_per_ip_per_minute",
                self.token_requests_per_ip_per_minute,
                1..=1_000_000,
            ),
            (
                "page_requests_per_ip_per_minute",
                self.page_requests_per_ip_per_minute,
                1..=1_000_000,
            ),
            (
                "token_requests_per_client_per_minute",
                self.token_requests_per_client_per_minute,
                1..=1_000_000,
            ),
            ("audit_retention_days", self.audit_retention_days, 1..=3650),
            (
                "key_publish_ahead_secs",
                self.key_publish_ahead_secs,
                0..=30 * 86_400,
            ),
            ("key_rotation_days", self.key_rotation_days, 0..=3650),
        ];
        for (key, value, range) in checks {
            if !range.contains(&value) {
                return Err(ConfigError(format!(
                    "{key} = {value} is out of range ({}..={})",
                    range.start(),
                    range.end()
                )));
            }
        }
        for t in &self.client_rate_limits {
            if !(1..=1_000_000).contains(&t.per_minute) {
                return Err(ConfigError(format!(
                    "client_rate_limits: per_minute = {} is out of range (1..=1000000)",
                    t.per_minute
                )));
            }
            if t.server.as_deref().is_some_and(|s| !s.starts_with("res_")) {
                return Err(ConfigError(
                    "client_rate_limits: server must be an MCP server id (res_…)".into(),
                ));
            }
        }
        if self.sign_in_failures_per_account == 0 || self.sign_in_failures_per_ip == 0 {
            return Err(ConfigError(
                "sign_in_failures_per_account and sign_in_failures_per_ip must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check_database(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            let scheme = url.0.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("postgres" | "postgresql")) {
                return Err(ConfigError(
                    "database_url must be a PostgreSQL URL, postgres://user:password@host:5432/database (leave it unset for the SQLite file in data_dir)".into(),
                ));
            }
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            return Err(ConfigError(format!(
                "database_max_connections = {} is out of range (1..=1000)",
                self.database_max_connections
            )));
        }
        Ok(())
    }

    fn check_email(&self) -> Result<(), ConfigError> {
        if self.smtp_host.is_some() && self.email_outbox.is_some() {
            return Err(ConfigError(
                "smtp_host and email_outbox are both set: choose one way to deliver email".into(),
            ));
        }
        if self.smtp_host.is_some() && self.email_from.is_none() {
            return Err(ConfigError(
                "smtp_host is set but email_from is not: set the sender of sign-in codes, e.g. email_from = \"Sign-in <no-reply@example.com>\"".into(),
            ));
        }
        if self.smtp_password.is_some() && self.smtp_username.is_none() {
            return Err(ConfigError(
                "smtp_password is set without smtp_username".into(),
            ));
        }
        if let Some(from) = &self.email_from {
            from.parse::<lettre::message::Mailbox>().map_err(|e| {
                ConfigError(format!("email_from `{from}` is not an email sender: {e}"))
            })?;
        }
        Ok(())
    }

    /// Whether sign-in codes can be sent.
    pub fn email_delivery(&self) -> bool {
        self.smtp_host.is_some() || self.email_outbox.is_some()
    }

    /// The protocol engine's lifetimes.
    pub fn engine_settings(&self) -> gatehouse_core::Settings {
        gatehouse_core::Settings {
            code_ttl: i64::from(self.code_ttl_secs),
            refresh_token_ttl: i64::from(self.refresh_token_ttl_secs),
            refresh_grace: i64::from(self.refresh_grace_secs),
            session_idle: i64::from(self.session_idle_secs),
            session_max: i64::from(self.session_max_secs),
            registration_ttl: i64::from(self.registration_expiry_days) * 86_400,
            unused_registration_ttl: i64::from(self.unused_registration_expiry_hours) * 3_600,
            audit_retention: i64::from(self.audit_retention_days) * 86_400,
            key_publish_ahead: i64::from(self.key_publish_ahead_secs),
            key_rotation: i64::from(self.key_rotation_days) * 86_400,
            email_delivery: self.email_delivery(),
        }
    }

    /// The root issuer.
    pub fn public_issuer(&self) -> Result<Issuer, ConfigError> {
        let url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        Issuer::parse(&url).map_err(|e| ConfigError(format!("public_url: {e}")))
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("gatehouse.db")
    }
}

/// Settings whose values are text even when they look like a number or a boolean (a password
/// of digits, say).
const TEXT_SETTINGS: &[&str] = &[
    "public_url",
    "data_dir",
    "database_url",
    "log_level",
    "email_from",
    "email_outbox",
    "smtp_host",
    "smtp_username",
    "smtp_password",
    "metrics_token",
];

/// Environment values are strings; numbers and booleans are given as such so that numeric
/// and on/off settings accept them, except for the settings that are text.
fn parse_env_value(key: &str, v: &str) -> figment::value::Value {
    if TEXT_SETTINGS.contains(&key) {
        return figment::value::Value::from(v.to_owned());
    }
    if let Ok(n) = v.parse::<u64>() {
        return figment::value::Value::from(n);
    }
    match v {
        "true" => figment::value::Value::from(true),
        "false" => figment::value::Value::from(false),
        _ => figment::value::Value::from(v.to_owned()),
    }
}

fn flatten(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_setup() {
        let c = Config::load(None, &[], &FlagOverrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.public_issuer().unwrap().as_str(), "http://127.0.0.1:9000");
        assert_eq!(
            c.database_path(),
            PathBuf::from("./gatehouse-data/gatehouse.db")
        );
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9100\"\npublic_url = \"https://file.example\"\nrefresh_interval_ms = 50\n").unwrap();
        let c = Config::load(Some(&file), &[], &FlagOverrides::default()).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://file.example"));
        assert_eq!(c.refresh_interval_ms, 50);
        let e = env(&[
            ("GATEHOUSE_PUBLIC_URL", "https://env.example"),
            ("GATEHOUSE_REFRESH_INTERVAL_MS", "70"),
            ("OTHER", "x"),
        ]);
        let c = Config::load(Some(&file), &e, &FlagOverrides::default()).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://env.example"));
        assert_eq!(c.refresh_interval_ms, 70);
        let flags = FlagOverrides {
            public_url: Some("https://flag.example/".into()),
            ..Default::default()
        };
        let c = Config::load(Some(&file), &e, &flags).unwrap();
        assert_eq!(c.public_issuer().unwrap().as_str(), "https://flag.example");
        assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
    }

    #[test]
    fn unknown_keys_are_rejected_in_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9100\"\nlisten_adress = \"x\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&file), &[], &FlagOverrides::default()).unwrap_err();
        assert!(e.to_string().contains("listen_adress"), "{e}");
        let e = Config::load(
            None,
            &env(&[("GATEHOUSE_DATADIR", "x")]),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("datadir"), "{e}");
        assert!(
            Config::load(
                None,
                &env(&[("GATEHOUSE_CONFIG", "x")]),
                &FlagOverrides::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn bad_values_are_explained() {
        let e = Config::load(
            None,
            &env(&[("GATEHOUSE_LISTEN", "nowhere")]),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = Config::load(
            None,
            &env(&[("GATEHOUSE_PUBLIC_URL", "ftp://x")]),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("public_url"), "{e}");
        let e = Config::load(
            None,
            &env(&[("GATEHOUSE_CODE_TTL_SECS", "600")]),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("code_ttl_secs"), "{e}");
        let c = Config::load(
            None,
            &env(&[("GATEHOUSE_DEV_LOOPBACK_METADATA_DOCUMENTS", "true")]),
            &FlagOverrides::default(),
        )
        .unwrap();
        assert!(c.dev_loopback_metadata_documents);
        assert!(
            Config::load(
                Some(Path::new("/nonexistent/g.toml")),
                &[],
                &FlagOverrides::default()
            )
            .is_err()
        );
    }

    #[test]
    fn email_delivery_is_configured_and_checked() {
        let c = Config::load(None, &[], &FlagOverrides::default()).unwrap();
        assert!(!c.email_delivery(), "off until configured");
        let c = Config::load(
            None,
            &env(&[
                ("GATEHOUSE_SMTP_HOST", "smtp.example.com"),
                ("GATEHOUSE_SMTP_PORT", "2525"),
                ("GATEHOUSE_SMTP_TLS", "tls"),
                ("GATEHOUSE_SMTP_USERNAME", "gatehouse"),
                ("GATEHOUSE_SMTP_PASSWORD", "123456"),
                ("GATEHOUSE_EMAIL_FROM", "Sign-in <no-reply@example.com>"),
            ]),
            &FlagOverrides::default(),
        )
        .unwrap();
        assert!(c.email_delivery() && c.engine_settings().email_delivery);
        assert_eq!(c.smtp_port, Some(2525));
        assert_eq!(c.smtp_tls, SmtpTls::Tls);
        // A password of digits stays a string, and is never printed.
        assert_eq!(c.smtp_password.as_ref().unwrap().0, "123456");
        assert!(!format!("{c:?}").contains("123456"));

        for (pairs, says) in [
            (
                vec![("GATEHOUSE_SMTP_HOST", "smtp.example.com")],
                "email_from",
            ),
            (
                vec![
                    ("GATEHOUSE_SMTP_HOST", "smtp.example.com"),
                    ("GATEHOUSE_EMAIL_OUTBOX", "/tmp/x"),
                    ("GATEHOUSE_EMAIL_FROM", "a@example.com"),
                ],
                "choose one",
            ),
            (
                vec![
                    ("GATEHOUSE_EMAIL_OUTBOX", "/tmp/x"),
                    ("GATEHOUSE_EMAIL_FROM", "not an address"),
                ],
                "email_from",
            ),
            (vec![("GATEHOUSE_SMTP_TLS", "ssl")], "smtp_tls"),
            (vec![("GATEHOUSE_SMTP_PASSWORD", "x")], "smtp_username"),
        ] {
            let e = Config::load(None, &env(&pairs), &FlagOverrides::default()).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
