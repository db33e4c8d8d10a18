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
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter, in `tracing` env-filter syntax (`info`, `gatehouse=debug`, …).
    pub log_level: String,
    /// How often, in milliseconds, the server looks for changes made by other processes
    /// (the CLI, other nodes) to MCP servers, clients and keys.
    pub refresh_interval_ms: u64,
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
            log_format: LogFormat::Text,
            log_level: "info".into(),
            refresh_interval_ms: 1000,
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
            figment = figment.merge(Serialized::global(&k, parse_env_value(&v)));
        }
        figment = figment.merge(Serialized::globals(flags));
        let config: Config = figment.extract().map_err(|e| ConfigError(flatten(e)))?;
        config.public_issuer()?;
        Ok(config)
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

/// Environment values are strings; numbers are given as numbers so that numeric settings
/// accept them.
fn parse_env_value(v: &str) -> figment::value::Value {
    match v.parse::<u64>() {
        Ok(n) => figment::value::Value::from(n),
        Err(_) => figment::value::Value::from(v.to_owned()),
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
        assert!(
            Config::load(
                Some(Path::new("/nonexistent/g.toml")),
                &[],
                &FlagOverrides::default()
            )
            .is_err()
        );
    }
}
