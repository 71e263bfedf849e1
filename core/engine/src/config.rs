//! berth's configuration: built-in defaults < config file < `BERTH_*` environment <
//! command-line flags.
//!
//! The file is the one named by `--config FILE` / `BERTH_CONFIG`, else `/etc/berth/berth.toml`,
//! else `<prefix>/etc/berth/berth.toml` next to a staged binary.
//! Environment variables map onto keys with `__` between sections:
//! `BERTH_ROOT=/x`, `BERTH_STORAGE__DRIVER=vfs`, `BERTH_PLUGIN_DIRS=/a:/b`.
//!
//! Plugin directories: `plugin_dirs` (`BERTH_PLUGIN_DIRS`, `--plugin-dir`) **replaces** the
//! default search list; `plugin_dirs_extra` (`BERTH_PLUGIN_DIRS_EXTRA=/a:/b`) is searched
//! **after** it, for drop-in directories that keep the first-party plugins. Without root,
//! the defaults include the per-user `$XDG_DATA_HOME/berth/plugins`
//! (`~/.local/share/berth/plugins`). A name found twice is taken from the first directory
//! (with a warning).
//!
//! Each plugin kind has a section naming the active plugin; a sub-table named after the
//! plugin is handed to it, as JSON, when it is constructed:
//!
//! ```toml
//! root = "/var/lib/berth"
//! [storage]
//! driver = "overlayfs"
//! [storage.overlayfs]     # given to the overlayfs plugin
//! [network]
//! backend = "bridge"
//! [isolator]
//! driver = "auto"          # cgroup2 when the v2 mount has the controllers, else cgroup1
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the system-wide config file lives.
pub const SYSTEM_CONFIG: &str = "/etc/berth/berth.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: config::ConfigError,
    },
    #[error("configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("config file {0} (named by --config or BERTH_CONFIG) does not exist")]
    Missing(PathBuf),
}

/// One plugin-kind section: the active plugin plus every plugin's own table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindSection {
    /// Active plugin name (`driver` for storage/isolator, `backend` for network).
    #[serde(alias = "backend")]
    pub driver: String,
    /// `[kind.<plugin>]` tables, passed to the plugin.
    #[serde(flatten)]
    pub plugins: serde_json::Map<String, serde_json::Value>,
}

impl KindSection {
    /// The table for `plugin` as JSON (`{}` if absent).
    pub fn plugin_config(&self, plugin: &str) -> String {
        self.plugins
            .get(plugin)
            .filter(|v| v.is_object())
            .map(|v| v.to_string())
            .unwrap_or_else(|| "{}".to_string())
    }
}

/// `[registry]` settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RegistrySection {
    /// Registries (`host[:port]`) reached over plain HTTP or unverified HTTPS, besides
    /// loopback ones (`BERTH_REGISTRY__INSECURE`, or `--insecure-registry`).
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Credentials file (Docker `config.json` format); default: `$REGISTRY_AUTH_FILE`,
    /// else `<root>/auth.json`.
    #[serde(default)]
    pub auth_file: Option<PathBuf>,
}

/// The effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Persistent state: images, layers, containers, volumes.
    pub root: PathBuf,
    /// Directories searched for plugin libraries, in order.
    pub plugin_dirs: Vec<PathBuf>,
    /// More directories, searched after `plugin_dirs` (adds instead of replacing).
    #[serde(default)]
    pub plugin_dirs_extra: Vec<PathBuf>,
    pub storage: KindSection,
    pub network: KindSection,
    pub isolator: KindSection,
    /// `[registry]`: how `pull`, `push` and `login` reach registries.
    #[serde(default)]
    pub registry: RegistrySection,
    /// Which file was read, if any (not a config key).
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
    /// Whether the storage driver was chosen (flag, environment or file) rather than
    /// defaulted: a defaulted one yields to the driver the root records (not a key).
    #[serde(skip)]
    pub storage_driver_explicit: bool,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub root: Option<PathBuf>,
    pub storage_driver: Option<String>,
    pub network_backend: Option<String>,
    pub isolator: Option<String>,
    pub plugin_dirs: Vec<PathBuf>,
}

/// Plugin directories searched when none are configured: next to the binary first
/// (`<prefix>/bin/berth` → `<prefix>/lib/berth/plugins`), then the system locations.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            dirs.push(prefix.join("lib/berth/plugins"));
        }
    }
    dirs.push(PathBuf::from("/usr/local/lib/berth/plugins"));
    dirs.push(PathBuf::from("/usr/lib/berth/plugins"));
    if !nix::unistd::geteuid().is_root() {
        if let Some(d) = user_plugin_dir() {
            dirs.push(d);
        }
    }
    dirs
}

/// The per-user plugin directory (rootless): `$XDG_DATA_HOME/berth/plugins`, else
/// `$HOME/.local/share/berth/plugins`.
pub fn user_plugin_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("berth/plugins"))
}

/// The config file of a staged tree (`<prefix>/bin/berth` → `<prefix>/etc/berth/berth.toml`),
/// used when there is no system-wide file.
pub fn staged_config() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()?
                .parent()
                .map(|p| p.join("etc/berth/berth.toml"))
        })
        .unwrap_or_default()
}

impl Config {
    /// Loads the configuration with the precedence described in the module docs.
    /// `env` is the process environment (a parameter so tests can pass their own).
    pub fn load(
        overrides: &Overrides,
        env: &std::collections::HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let dirs: Vec<String> = default_plugin_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        let mut b = config::Config::builder()
            .set_default("root", "/var/lib/berth")?
            .set_default("plugin_dirs", dirs)?
            .set_default("storage.driver", "overlayfs")?
            .set_default("network.backend", "bridge")?
            .set_default("isolator.driver", "auto")?;

        let mut storage_driver_explicit =
            overrides.storage_driver.is_some() || env.contains_key("BERTH_STORAGE__DRIVER");
        let file = overrides
            .config_file
            .clone()
            .or_else(|| env.get("BERTH_CONFIG").map(PathBuf::from));
        let source_file = match file {
            Some(f) => {
                if !f.exists() {
                    return Err(ConfigError::Missing(f));
                }
                Some(f)
            }
            None => [PathBuf::from(SYSTEM_CONFIG), staged_config()]
                .into_iter()
                .find(|p| p.exists()),
        };
        if let Some(f) = &source_file {
            let text = std::fs::read_to_string(f).map_err(|e| ConfigError::File {
                path: f.clone(),
                source: config::ConfigError::Foreign(Box::new(e)),
            })?;
            // Validate the file on its own first so its errors name it.
            let own = config::Config::builder()
                .add_source(config::File::from_str(&text, config::FileFormat::Toml))
                .build()
                .map_err(|e| ConfigError::File {
                    path: f.clone(),
                    source: e,
                })?;
            storage_driver_explicit |= own.get_string("storage.driver").is_ok();
            b = b.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }

        let source: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("BERTH_") && k.as_str() != "BERTH_CONFIG")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        b = b.add_source(
            config::Environment::with_prefix("BERTH")
                .prefix_separator("_")
                .separator("__")
                .list_separator(":")
                .with_list_parse_key("plugin_dirs")
                .with_list_parse_key("plugin_dirs_extra")
                .try_parsing(true)
                .source(Some(source)),
        );

        if let Some(root) = &overrides.root {
            b = b.set_override("root", root.display().to_string())?;
        }
        if let Some(d) = &overrides.storage_driver {
            b = b.set_override("storage.driver", d.as_str())?;
        }
        if let Some(d) = &overrides.network_backend {
            b = b.set_override("network.backend", d.as_str())?;
        }
        if let Some(d) = &overrides.isolator {
            b = b.set_override("isolator.driver", d.as_str())?;
        }
        if !overrides.plugin_dirs.is_empty() {
            let dirs: Vec<String> = overrides
                .plugin_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            b = b.set_override("plugin_dirs", dirs)?;
        }
        let mut cfg: Config = b.build()?.try_deserialize()?;
        cfg.source_file = source_file;
        cfg.storage_driver_explicit = storage_driver_explicit;
        Ok(cfg)
    }

    /// Loads with the real process environment.
    pub fn from_env(overrides: &Overrides) -> Result<Config, ConfigError> {
        let env = std::env::vars().collect();
        Self::load(overrides, &env)
    }

    /// Every directory searched for plugins, in order: `plugin_dirs`, then
    /// `plugin_dirs_extra` (each once).
    pub fn plugin_search_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for d in self.plugin_dirs.iter().chain(&self.plugin_dirs_extra) {
            if !dirs.contains(d) {
                dirs.push(d.clone());
            }
        }
        dirs
    }

    /// Runtime state that does not outlive a boot (locks, mount points, sockets).
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn extra_plugin_dirs_add_to_the_list() {
        let e = env(&[
            ("BERTH_PLUGIN_DIRS", "/a:/b"),
            ("BERTH_PLUGIN_DIRS_EXTRA", "/c:/a"),
        ]);
        let c = Config::load(&Overrides::default(), &e).unwrap();
        assert_eq!(
            c.plugin_dirs_extra,
            vec![PathBuf::from("/c"), PathBuf::from("/a")]
        );
        assert_eq!(
            c.plugin_search_dirs(),
            vec![
                PathBuf::from("/a"),
                PathBuf::from("/b"),
                PathBuf::from("/c")
            ]
        );
        // Only extras: the defaults stay in front.
        let c = Config::load(
            &Overrides::default(),
            &env(&[("BERTH_PLUGIN_DIRS_EXTRA", "/x")]),
        )
        .unwrap();
        let dirs = c.plugin_search_dirs();
        assert_eq!(dirs.last(), Some(&PathBuf::from("/x")));
        assert!(dirs.len() > 1, "{dirs:?}");
    }

    #[test]
    fn storage_driver_explicit_only_when_chosen() {
        let c = Config::load(&Overrides::default(), &env(&[])).unwrap();
        if c.source_file.is_none() {
            assert!(!c.storage_driver_explicit);
        }
        let c = Config::load(
            &Overrides::default(),
            &env(&[("BERTH_STORAGE__DRIVER", "vfs")]),
        )
        .unwrap();
        assert!(c.storage_driver_explicit);
        let ov = Overrides {
            storage_driver: Some("vfs".into()),
            ..Default::default()
        };
        assert!(
            Config::load(&ov, &env(&[]))
                .unwrap()
                .storage_driver_explicit
        );
    }

    #[test]
    fn defaults() {
        let c = Config::load(
            &Overrides {
                config_file: None,
                ..Default::default()
            },
            &env(&[]),
        )
        .unwrap();
        // The system file may exist on a developer machine; only check keys it can't shadow
        // when absent.
        if c.source_file.is_none() {
            assert_eq!(c.root, PathBuf::from("/var/lib/berth"));
            assert_eq!(c.storage.driver, "overlayfs");
            assert_eq!(c.network.driver, "bridge");
            assert_eq!(c.isolator.driver, "auto");
        }
    }

    #[test]
    fn precedence_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "root = \"/from/file\"\n[storage]\ndriver = \"vfs\"\n[storage.vfs]\nfoo = 1\n[network]\nbackend = \"filebackend\"\n",
        )
        .unwrap();
        let ov = Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        };
        // file beats defaults
        let c = Config::load(&ov, &env(&[])).unwrap();
        assert_eq!(c.root, PathBuf::from("/from/file"));
        assert_eq!(c.storage.driver, "vfs");
        assert_eq!(c.storage.plugin_config("vfs"), r#"{"foo":1}"#);
        assert_eq!(c.storage.plugin_config("overlayfs"), "{}");
        assert_eq!(c.source_file.as_deref(), Some(file.as_path()));

        // env beats file
        let e = env(&[
            ("BERTH_ROOT", "/from/env"),
            ("BERTH_NETWORK__BACKEND", "envbackend"),
        ]);
        let c = Config::load(&ov, &e).unwrap();
        assert_eq!(c.root, PathBuf::from("/from/env"));
        assert_eq!(c.network.driver, "envbackend");
        assert_eq!(c.storage.driver, "vfs");

        // flags beat env
        let ov2 = Overrides {
            root: Some("/from/flag".into()),
            storage_driver: Some("overlayfs".into()),
            ..ov.clone()
        };
        let c = Config::load(&ov2, &e).unwrap();
        assert_eq!(c.root, PathBuf::from("/from/flag"));
        assert_eq!(c.storage.driver, "overlayfs");
        assert_eq!(c.network.driver, "envbackend");
    }

    #[test]
    fn config_file_from_env_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "root = [unclosed\n").unwrap();
        let e = env(&[("BERTH_CONFIG", file.to_str().unwrap())]);
        let err = Config::load(&Overrides::default(), &e).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");

        let missing = dir.path().join("nope.toml");
        let e = env(&[("BERTH_CONFIG", missing.to_str().unwrap())]);
        let err = Config::load(&Overrides::default(), &e).unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
    }

    #[test]
    fn plugin_dirs_from_env_list() {
        let e = env(&[("BERTH_PLUGIN_DIRS", "/a:/b")]);
        let c = Config::load(
            &Overrides {
                config_file: None,
                ..Default::default()
            },
            &e,
        )
        .unwrap();
        assert_eq!(
            c.plugin_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
    }
}
