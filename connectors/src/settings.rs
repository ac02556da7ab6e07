//! The connector contract on the configuration side, and the configuration vocabulary the
//! whole workspace shares: [`ConfigProblem`], [`SecretRef`], [`decode`].
//!
//! A connector kind is registered once ([`crate::builtin_kinds`]) as a [`ConnectorKind`]: its
//! name (`kind = "msgraph"` in a `[[tenants.connectors]]` table), its catalog of improvement
//! actions (`config/catalog/<kind>.toml`), and a parser that turns the table's kind-specific
//! keys into typed, validated [`ConnectorSettings`]. The daemon decodes the keys every
//! connector has (`kind`, `schedule`, `poll_timeout`) and hands the rest to the kind; every
//! problem comes back with its full key path, so a configuration reports all of them at once.
//!
//! Must not: do network IO (settings are parsed while loading configuration) or put a secret
//! into a problem message or `Debug` output.

use std::any::Any;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Connector;

/// One configuration problem, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `tenants[0].connectors[0].schedule`; empty for the whole file.
    pub path: String,
    /// What is wrong, secret-free.
    pub message: String,
}

impl ConfigProblem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A reference to a secret held outside the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretRef {
    /// Read from an environment variable.
    Env {
        /// Variable name.
        env: String,
    },
    /// Read from a file (trailing newline trimmed), e.g. a Kubernetes or systemd credential.
    File {
        /// File path.
        file: PathBuf,
    },
    /// A systemd credential (`LoadCredential=NAME:PATH` in the unit): the file `NAME` of the
    /// directory systemd names in `$CREDENTIALS_DIRECTORY` (trailing newline trimmed).
    Credential {
        /// Credential name (no `/`).
        credential: String,
    },
}

impl SecretRef {
    /// Resolve the secret, reading the environment through `env`. Errors name the variable or
    /// file, never the value.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<SecretString, String> {
        match self {
            SecretRef::Env { env: name } => env(name)
                .filter(|v| !v.is_empty())
                .map(SecretString::from)
                .ok_or_else(|| format!("environment variable {name} is not set")),
            SecretRef::File { file } => read_secret_file(file),
            SecretRef::Credential { credential } => {
                if credential.is_empty() || credential.contains('/') || credential == ".." {
                    return Err(format!("{credential:?} is not a credential name"));
                }
                let dir = env("CREDENTIALS_DIRECTORY")
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| {
                        format!(
                            "credential {credential}: CREDENTIALS_DIRECTORY is not set (the unit \
                         needs LoadCredential={credential}:PATH)"
                        )
                    })?;
                read_secret_file(&PathBuf::from(dir).join(credential))
            }
        }
    }
}

/// A secret file's content, trailing newline trimmed, read under [`MAX_SECRET_FILE_BYTES`].
fn read_secret_file(file: &Path) -> Result<SecretString, String> {
    read_bounded(file, MAX_SECRET_FILE_BYTES)
        .map(|s| SecretString::from(s.trim_end_matches(['\r', '\n']).to_owned()))
        .map_err(|e| format!("cannot read secret file {}: {e}", file.display()))
}

/// Decode one TOML value into `T`, turning the serde error into a problem with the full key
/// path (`base` joined with the path inside the value). Only the first line of serde's
/// message is kept.
pub fn decode<T: DeserializeOwned>(base: &str, value: toml::Value) -> Result<T, ConfigProblem> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            base.to_owned()
        } else if inner.starts_with('[') {
            format!("{base}{inner}")
        } else if base.is_empty() {
            inner
        } else {
            format!("{base}.{inner}")
        };
        let message = e.into_inner().to_string();
        ConfigProblem::new(path, message.lines().next().unwrap_or_default().to_owned())
    })
}

/// Largest catalog file a connector may name (`catalog = "PATH"`): 1 MiB.
pub const MAX_CATALOG_BYTES: u64 = 1 << 20;

/// Largest secret file (`{ file = "PATH" }`, a web identity token): 64 KiB.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 << 10;

/// Largest local credentials file (e.g. `~/.aws/credentials`): 1 MiB.
pub const MAX_CREDENTIALS_FILE_BYTES: u64 = 1 << 20;

/// Read a local text file of at most `max` bytes: the one bounded reader for the files a
/// configuration names (catalogs, secrets, credentials). Errors are `(what went wrong)`
/// texts naming the file, never its content.
pub fn read_bounded(path: &Path, max: u64) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(text)
}

/// Read a catalog file a connector names, at most [`MAX_CATALOG_BYTES`]. Errors name the
/// file, never its content.
pub fn read_catalog(path: &Path) -> Result<String, String> {
    read_bounded(path, MAX_CATALOG_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Check a URL that credentials, signatures or tokens go to: absolute `https://` with a host,
/// or `http://` to a loopback host (a local test double or emulator; nothing leaves the
/// machine), or plain `http://` anywhere when `plain_ok` (no credentials are sent). The one
/// check every connector kind uses; errors are configuration problem messages.
pub fn check_credential_url(text: &str, plain_ok: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|_| format!("{text:?} is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(format!("{text:?} has no host")),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback || plain_ok => Ok(url),
        "http" => Err(format!(
            "{text:?} is plain http: credentials need https:// (http:// only to a loopback host)"
        )),
        other => Err(format!(
            "{text:?}: unsupported scheme {other:?} (use https://)"
        )),
    }
}

/// What a kind's settings parser may use besides the table.
pub struct SettingsContext<'a> {
    /// Key path of the connector's table, e.g. `tenants[0].connectors[1]`; problems are
    /// reported under it (`{path}.client_secret`).
    pub path: &'a str,
    /// The postured tenant id the connector belongs to.
    pub tenant: &'a str,
    /// Reads an environment variable (for [`SecretRef::resolve`]).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Directory that relative paths in the table are resolved against (the configuration
    /// file's directory); `None` keeps them as written.
    pub base_dir: Option<&'a Path>,
    /// Whether secret references are resolved ([`SecretRef::resolve`]). `false` for commands
    /// that never build a connector (`export`, `history`, `template`): a kind then checks that
    /// its required references are present but reads none of them, and its settings must
    /// refuse to build a live connector.
    pub resolve_secrets: bool,
}

impl SettingsContext<'_> {
    /// `{path}.{key}`.
    pub fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// A relative `p` joined to [`SettingsContext::base_dir`].
    pub fn resolve_path(&self, p: PathBuf) -> PathBuf {
        match self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p,
        }
    }
}

/// What building a connector from its settings may use.
pub struct BuildContext<'a> {
    /// The postured tenant id.
    pub tenant: &'a str,
    /// The shared HTTP client (connection pooling across tenants; the daemon installs the
    /// rustls crypto provider and sets the user agent).
    pub http: &'a reqwest::Client,
    /// `postured record`: poll live and write every response with this recorder (its
    /// directory and personal-data policy; one recorder per run, shared by the tenant's
    /// connectors so pseudonyms agree across them).
    pub record: Option<&'a crate::record::Recorder>,
}

/// A connector kind: its name, catalog and settings parser. One value per kind is registered
/// in [`crate::builtin_kinds`]; tests may register their own through the daemon's registry.
pub trait ConnectorKind: Send + Sync {
    /// The `kind` value of its `[[tenants.connectors]]` tables, also the signal namespace and a
    /// metric label (`"msgraph"`): `[a-z0-9_]+`.
    fn name(&self) -> &'static str;

    /// Its improvement-action catalog (TOML, `[[actions]]` tables; the text of
    /// `config/catalog/<kind>.toml`).
    fn catalog(&self) -> &'static str;

    /// Decode and validate the kind-specific keys of one connector table (`kind`, `schedule`
    /// and `poll_timeout` removed). Returns every problem at once, each under
    /// [`SettingsContext::path`]; secrets are resolved here (when
    /// [`SettingsContext::resolve_secrets`]) so a missing one is a configuration problem, not a
    /// poll failure.
    fn settings(
        &self,
        table: toml::Table,
        cx: &SettingsContext<'_>,
    ) -> Result<Arc<dyn ConnectorSettings>, Vec<ConfigProblem>>;
}

/// The registry entry of a connector kind whose settings type parses itself: each kind's
/// folder declares one as a constant (`msgraph::MSGRAPH`), so the trait's body is written
/// once.
pub struct Kind<S> {
    /// The `kind = "..."` value ([`ConnectorKind::name`]).
    pub name: &'static str,
    /// The kind's catalog TOML ([`ConnectorKind::catalog`]).
    pub catalog: &'static str,
    /// Decodes and validates the kind-specific keys ([`ConnectorKind::settings`]).
    pub parse: fn(toml::Table, &SettingsContext<'_>) -> Result<S, Vec<ConfigProblem>>,
}

impl<S: ConnectorSettings> ConnectorKind for Kind<S> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn catalog(&self) -> &'static str {
        self.catalog
    }

    fn settings(
        &self,
        table: toml::Table,
        cx: &SettingsContext<'_>,
    ) -> Result<Arc<dyn ConnectorSettings>, Vec<ConfigProblem>> {
        Ok(Arc::new((self.parse)(table, cx)?))
    }
}

/// One connector's typed, validated settings (secrets resolved, redacted in `Debug`).
pub trait ConnectorSettings: fmt::Debug + Send + Sync + Any {
    /// Build the connector for one tenant. Errors: settings that cannot be used (a message
    /// without secrets).
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, String>;

    /// Whether this connector serves recorded responses instead of a live source (such a
    /// connector cannot be recorded).
    fn replays(&self) -> bool {
        false
    }

    /// A catalog file of this one connector (resolved against the configuration file's
    /// directory), merged by the daemon with the kinds' catalogs: for kinds whose signals the
    /// user declares (`http_json`), so is the catalog that tests them. `None` (the default):
    /// the kind's catalog ([`ConnectorKind::catalog`]) is all.
    fn catalog(&self) -> Option<PathBuf> {
        None
    }

    /// The connector's name among its tenant's connectors of the same kind, for kinds whose
    /// connectors are named (`http_json`, `exec`: `name`, which also names their signal
    /// namespace `<kind>.<name>.`). `None` (the default): a tenant has at most one connector
    /// of the kind.
    fn instance(&self) -> Option<&str> {
        None
    }

    /// For downcasting to the concrete settings type (tests, kind-specific tooling).
    fn as_any(&self) -> &dyn Any;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{ credential = "NAME" }` reads `$CREDENTIALS_DIRECTORY/NAME` (systemd's
    /// `LoadCredential=`); names with a `/` and an unset directory are clear errors.
    #[test]
    fn systemd_credentials_are_read_from_their_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("contoso-secret"), "s3cret\n").unwrap();
        let d = dir.path().display().to_string();
        let env = |k: &str| (k == "CREDENTIALS_DIRECTORY").then(|| d.clone());
        let r: SecretRef = toml::from_str::<toml::Table>("s = { credential = \"contoso-secret\" }")
            .unwrap()["s"]
            .clone()
            .try_into()
            .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(r.resolve(&env).unwrap().expose_secret(), "s3cret");
        let err = r.resolve(&|_| None).unwrap_err();
        assert!(err.contains("CREDENTIALS_DIRECTORY is not set"), "{err}");
        let up = SecretRef::Credential {
            credential: "../etc/passwd".into(),
        };
        assert!(
            up.resolve(&env)
                .unwrap_err()
                .contains("not a credential name")
        );
    }

    /// Issue 8 (bound every input): the files a configuration names are read under a cap; past
    /// it the error names the file, never its content.
    #[test]
    fn configured_files_are_read_under_a_cap() {
        let dir = tempfile::tempdir().unwrap();
        let at_cap = dir.path().join("at-cap");
        std::fs::write(&at_cap, "x".repeat(MAX_SECRET_FILE_BYTES as usize)).unwrap();
        assert!(read_bounded(&at_cap, MAX_SECRET_FILE_BYTES).is_ok());
        let over = dir.path().join("secret");
        std::fs::write(&over, "s".repeat(MAX_SECRET_FILE_BYTES as usize + 1)).unwrap();
        let err = SecretRef::File { file: over.clone() }
            .resolve(&|_| None)
            .unwrap_err();
        assert!(err.contains("larger than 65536 bytes"), "{err}");
        assert!(
            err.contains(&over.display().to_string()) && !err.contains("sss"),
            "{err}"
        );
        let catalog = dir.path().join("catalog.toml");
        std::fs::write(&catalog, "#".repeat(MAX_CATALOG_BYTES as usize + 1)).unwrap();
        assert!(read_catalog(&catalog).unwrap_err().contains("larger than"));
    }
}
