//! The web configuration file (`--web.config.file`, `server.web_config_file`): the YAML
//! format of the Prometheus exporter-toolkit, of which headroom implements
//! `tls_server_config.cert_file` / `key_file` and `basic_auth_users`.
//!
//! The file is read once at start-up and checked in one pass: every problem is listed, each
//! with the key that holds it. Keys of the format that headroom does not implement are
//! errors that say so, rather than settings silently ignored (a `client_ca_file` that is
//! ignored would be a hole, not a convenience).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_yaml_ng::Value;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What the web configuration file asks for.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// Serve HTTPS with this; plain HTTP when absent.
    pub tls: Option<Arc<ServerConfig>>,
    /// User name → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hashes are secrets of a kind (offline guessing): list only the names.
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The lowest bcrypt cost that is not warned about: the exporter-toolkit's and bcrypt's
/// default. Below it a stolen hash is cheap to guess, and a user with a cheaper hash than
/// another answers a wrong password faster, which tells the two apart.
pub const WEAK_COST: u32 = 10;

impl WebConfig {
    /// One warning per user whose hash costs less than [`WEAK_COST`].
    pub fn warnings(&self) -> Vec<String> {
        self.users
            .iter()
            .filter_map(|(user, hash)| {
                let cost = hash.parse::<bcrypt::HashParts>().ok()?.get_cost();
                (cost < WEAK_COST).then(|| {
                    format!(
                        "basic_auth_users.{user:?}: bcrypt cost {cost} is below {WEAK_COST}: cheap to guess from a leaked file, and faster to answer than other users' hashes (hash it again with htpasswd -nBC {WEAK_COST})"
                    )
                })
            })
            .collect()
    }
}

/// A web configuration file that cannot be used, with every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.path, .problems))]
pub struct WebConfigError {
    pub path: PathBuf,
    /// `key: problem`, or the problem alone when it concerns the whole file.
    pub problems: Vec<String>,
}

fn render(path: &Path, problems: &[String]) -> String {
    let head = match problems.len() {
        1 => format!("1 problem in web configuration file {}:", path.display()),
        n => format!("{n} problems in web configuration file {}:", path.display()),
    };
    std::iter::once(head)
        .chain(problems.iter().map(|p| format!("  - {p}")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The keys that headroom reads, for messages.
const IMPLEMENTED: &str =
    "tls_server_config.cert_file, tls_server_config.key_file and basic_auth_users";

/// Top-level keys of the exporter-toolkit format that headroom does not implement.
const UNSUPPORTED_TOP: &[&str] = &["http_server_config", "rate_limit"];

/// `tls_server_config` keys of the exporter-toolkit format that headroom does not implement.
const UNSUPPORTED_TLS: &[&str] = &[
    "cert",
    "key",
    "client_ca",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
];

/// Reads and checks `path`; certificate and key paths are relative to the file's folder.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let fail = |problems: Vec<String>| WebConfigError {
        path: path.to_path_buf(),
        problems,
    };
    let text = crate::config::file::read(path)
        .map_err(|e| fail(vec![format!("cannot read the file: {e}")]))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(fail)
}

/// Parses the YAML `text`; relative file names are taken from `base`.
pub fn parse(text: &str, base: &Path) -> Result<WebConfig, Vec<String>> {
    let root: Value = serde_yaml_ng::from_str(text).map_err(|e| vec![format!("not YAML: {e}")])?;
    let mut problems = Vec::new();
    let mut config = WebConfig::default();
    let top = match root {
        // An empty file is a valid configuration: plain HTTP, no authentication.
        Value::Null => return Ok(config),
        Value::Mapping(m) => m,
        _ => {
            return Err(vec![
                "must be a mapping of keys, such as basic_auth_users:".to_string(),
            ]);
        }
    };
    for (key, value) in top {
        let Some(key) = key.as_str() else {
            problems.push(format!("{key:?}: keys must be strings"));
            continue;
        };
        match key {
            "tls_server_config" => config.tls = tls(value, base, &mut problems),
            "basic_auth_users" => config.users = users(value, &mut problems),
            other if UNSUPPORTED_TOP.contains(&other) => problems.push(format!(
                "{other}: not supported by headroom (it implements {IMPLEMENTED})"
            )),
            other => problems.push(format!(
                "{other:?}: unknown key (headroom implements {IMPLEMENTED})"
            )),
        }
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

fn tls(value: Value, base: &Path, problems: &mut Vec<String>) -> Option<Arc<ServerConfig>> {
    let (cert_file, key_file) = tls_files(value, base, problems)?;
    server_config(&cert_file, &key_file, problems)
}

/// `tls_server_config`'s `cert_file` and `key_file`, resolved against `base`.
fn tls_files(value: Value, base: &Path, problems: &mut Vec<String>) -> Option<(PathBuf, PathBuf)> {
    let map = match value {
        Value::Mapping(m) => m,
        _ => {
            problems
                .push("tls_server_config: must be a mapping with cert_file and key_file".into());
            return None;
        }
    };
    let mut cert_file = None;
    let mut key_file = None;
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            problems.push(format!("tls_server_config.{key:?}: keys must be strings"));
            continue;
        };
        let slot = match key {
            "cert_file" => &mut cert_file,
            "key_file" => &mut key_file,
            other if UNSUPPORTED_TLS.contains(&other) => {
                problems.push(format!(
                    "tls_server_config.{other}: not supported by headroom (it implements {IMPLEMENTED})"
                ));
                continue;
            }
            other => {
                problems.push(format!(
                    "tls_server_config.{other:?}: unknown key (headroom implements {IMPLEMENTED})"
                ));
                continue;
            }
        };
        match value {
            Value::String(s) if !s.is_empty() => *slot = Some(base.join(s)),
            _ => problems.push(format!("tls_server_config.{key}: must be a file name")),
        }
    }
    for (key, file) in [("cert_file", &cert_file), ("key_file", &key_file)] {
        let named = format!("tls_server_config.{key}:");
        if file.is_none() && !problems.iter().any(|p| p.starts_with(&named)) {
            problems.push(format!("{named} is missing"));
        }
    }
    Some((cert_file?, key_file?))
}

/// The rustls configuration serving the certificate chain in `cert_file` with the key in
/// `key_file`.
fn server_config(
    cert_file: &Path,
    key_file: &Path,
    problems: &mut Vec<String>,
) -> Option<Arc<ServerConfig>> {
    let certs = match CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
    {
        Ok(certs) if certs.is_empty() => {
            problems.push(format!(
                "tls_server_config.cert_file: cannot read a PEM certificate from {}: the file holds none",
                cert_file.display()
            ));
            None
        }
        Ok(certs) => Some(certs),
        Err(e) => {
            problems.push(format!(
                "tls_server_config.cert_file: cannot read a PEM certificate from {}: {}",
                cert_file.display(),
                pem_error(&e)
            ));
            None
        }
    };
    let key = match PrivateKeyDer::from_pem_file(key_file) {
        Ok(key) => Some(key),
        Err(e) => {
            problems.push(format!(
                "tls_server_config.key_file: cannot read a PEM private key from {}: {}",
                key_file.display(),
                pem_error(&e)
            ));
            None
        }
    };
    let (certs, key) = (certs?, key?);
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let built = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key));
    match built {
        Ok(mut config) => {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        }
        Err(e) => {
            problems.push(format!(
                "tls_server_config: the certificate in {} and the key in {} cannot be used together: {e}",
                cert_file.display(),
                key_file.display()
            ));
            None
        }
    }
}

fn pem_error(e: &tokio_rustls::rustls::pki_types::pem::Error) -> String {
    use tokio_rustls::rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no PEM section of that kind in the file".to_string(),
        Error::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}

fn users(value: Value, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let map = match value {
        Value::Null => return out,
        Value::Mapping(m) => m,
        _ => {
            problems.push("basic_auth_users: must be a mapping of user name to bcrypt hash".into());
            return out;
        }
    };
    for (user, hash) in map {
        let Some(user) = user.as_str().map(str::to_string) else {
            problems.push(format!(
                "basic_auth_users.{user:?}: user names must be strings"
            ));
            continue;
        };
        let key = format!("basic_auth_users.{user:?}");
        if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
            problems.push(format!(
                "{key}: a user name must be non-empty, without ':' or control characters (basic auth cannot send them)"
            ));
            continue;
        }
        let Value::String(hash) = hash else {
            problems.push(format!(
                "{key}: must be a bcrypt hash such as \"$2y$10$...\""
            ));
            continue;
        };
        match check_hash(&hash) {
            Ok(()) => {
                out.insert(user, hash);
            }
            Err(why) => problems.push(format!("{key}: not a bcrypt hash: {why}")),
        }
    }
    out
}

/// Whether `hash` is a bcrypt hash that can be verified: `$2a$`, `$2b$` or `$2y$`, a cost
/// from 4 to 31, and a salt and hash in bcrypt's base64. The hash itself is never shown.
fn check_hash(hash: &str) -> Result<(), String> {
    if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        return Err("it must start with $2a$, $2b$ or $2y$".to_string());
    }
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|e: bcrypt::BcryptError| e.to_string())?;
    if !(4..=31).contains(&parts.get_cost()) {
        return Err(format!("cost {} is outside 4 to 31", parts.get_cost()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_hashed_below_cost_10_is_warned_about_and_one_at_10_is_not() {
        let text = format!(
            "basic_auth_users:\n  alice: {:?}\n  zed: {:?}\n",
            bcrypt::hash("a", 4).unwrap(),
            bcrypt::hash("z", 10).unwrap()
        );
        let warnings = parse(&text, Path::new(".")).unwrap().warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "basic_auth_users.\"alice\": bcrypt cost 4 is below 10: cheap to guess"
            ),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_empty_file_means_plain_http_without_authentication() {
        let config = parse("", Path::new(".")).unwrap();
        assert!(config.tls.is_none());
        assert!(config.users.is_empty());
        let config = parse("basic_auth_users:\n", Path::new(".")).unwrap();
        assert!(config.users.is_empty());
    }

    #[test]
    fn users_with_2a_2b_and_2y_hashes_are_read() {
        let real = bcrypt::hash("secret", 4).unwrap();
        let body = &real[3..];
        let text = format!(
            "basic_auth_users:\n  ann: '$2a{body}'\n  bob: '$2b{body}'\n  cy: '$2y{body}'\n"
        );
        let config = parse(&text, Path::new(".")).unwrap();
        assert_eq!(
            config.users.keys().collect::<Vec<_>>(),
            ["ann", "bob", "cy"]
        );
        assert_eq!(config.users["cy"], format!("$2y{body}"));
    }

    #[test]
    fn every_problem_is_listed_with_its_key_and_unsupported_keys_say_so() {
        let text = "tls_server_config:\n  client_ca_file: ca.pem\n  colour: red\nhttp_server_config:\n  http2: false\nbasic_auth_users:\n  ann: plain\n  'a:b': '$2y$04$x'\nlisten: 1\n";
        let problems = parse(text, Path::new(".")).unwrap_err();
        assert_eq!(
            problems,
            [
                format!("tls_server_config.client_ca_file: not supported by headroom (it implements {IMPLEMENTED})"),
                format!("tls_server_config.\"colour\": unknown key (headroom implements {IMPLEMENTED})"),
                "tls_server_config.cert_file: is missing".to_string(),
                "tls_server_config.key_file: is missing".to_string(),
                format!("http_server_config: not supported by headroom (it implements {IMPLEMENTED})"),
                "basic_auth_users.\"ann\": not a bcrypt hash: it must start with $2a$, $2b$ or $2y$".to_string(),
                "basic_auth_users.\"a:b\": a user name must be non-empty, without ':' or control characters (basic auth cannot send them)".to_string(),
                format!("\"listen\": unknown key (headroom implements {IMPLEMENTED})"),
            ]
        );
    }

    #[test]
    fn a_2x_hash_and_a_malformed_hash_are_refused() {
        let real = bcrypt::hash("secret", 4).unwrap();
        assert_eq!(check_hash(&format!("$2y{}", &real[3..])), Ok(()));
        assert_eq!(
            check_hash(&format!("$2x{}", &real[3..])),
            Err("it must start with $2a$, $2b$ or $2y$".to_string())
        );
        assert_eq!(
            check_hash("$2y$04$short"),
            Err("Invalid hash: the hash format is malformed; expected 60 ASCII bytes".to_string())
        );
    }

    #[test]
    fn text_that_is_not_yaml_is_named_as_such() {
        let problems = parse("basic_auth_users: [\n", Path::new(".")).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("not YAML: "), "{problems:?}");
    }
}
