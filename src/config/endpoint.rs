//! Database servers: `mysql://` URLs with their password split off (from the URL,
//! `password_env` or `password_file`), and redaction, so that a URL can be shown anywhere.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::section::Section;

/// A database server to connect to. The password is held apart from the URL so that the
/// URL can be shown anywhere.
#[derive(Clone)]
pub struct Endpoint {
    /// The URL without its password.
    pub url: Url,
    /// From the URL, `password_env` or `password_file`.
    pub password: Option<SecretString>,
}

impl Endpoint {
    /// `host:port`: a label of bounded cardinality that never carries credentials.
    pub fn label(&self) -> String {
        let host = self.url.host_str().unwrap_or("localhost");
        let port = self.url.port().unwrap_or(3306);
        format!("{host}:{port}")
    }

    /// The database named in the URL path, if any.
    pub fn database(&self) -> Option<String> {
        let path = self.url.path().trim_start_matches('/');
        if path.is_empty() {
            None
        } else {
            Some(percent_decode(path))
        }
    }

    /// The password, for the driver only.
    pub fn expose_password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.expose_secret())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// A server URL under `key`, with the password from the URL or from `password`. A URL
/// that carries a password (even an empty one) beside `password_env`/`password_file`
/// is a conflict, whether or not the other one could be read.
pub(super) fn read(
    s: &mut Section,
    key: &str,
    text: &str,
    password: &Option<Option<SecretString>>,
    password_keys: bool,
) -> Option<Endpoint> {
    match parse_url(text) {
        Ok((url, url_password)) => {
            if password_keys && has_password(text) {
                s.problem(
                    key,
                    "has a password and password_env or password_file is also set: keep one"
                        .to_string(),
                );
                return None;
            }
            let configured = password.as_ref()?;
            Some(Endpoint {
                url,
                password: url_password.or_else(|| configured.clone()),
            })
        }
        Err(message) => {
            s.problem(key, message);
            None
        }
    }
}

/// Whether a URL's user information holds a password part (`user:...@`), even an empty one.
fn has_password(text: &str) -> bool {
    let start = text.find("://").map_or(0, |i| i + 3);
    text.rfind('@')
        .filter(|&at| at >= start)
        .is_some_and(|at| text[start..at].contains(':'))
}

/// Parses a server's URL (`mysql://`, `postgres://`, …) and splits off its password. Every message shows the URL
/// redacted.
fn parse_url(text: &str) -> Result<(Url, Option<SecretString>), String> {
    let shown = redact_text(text);
    let mut url = Url::parse(text).map_err(|e| format!("{shown} is not a URL: {e}"))?;
    let Some(engine) = crate::engine::kind::Engine::of(&url) else {
        return Err(format!(
            "{shown} has scheme {:?}: expected {}",
            url.scheme(),
            crate::engine::kind::Engine::SCHEMES
        ));
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown} names no host"));
    }
    if url.username().is_empty() {
        return Err(format!(
            "{shown} names no user: write {}://USER@HOST:PORT",
            url.scheme()
        ));
    }
    let password = url
        .password()
        .map(|p| SecretString::from(percent_decode(p)));
    // Cannot fail: the URL has a host.
    let _ = url.set_password(None);
    // The driver's own reading of the options (ssl-mode=..., charset=...), checked now so
    // that a bad one is a configuration problem with its key, not a failure at start.
    engine
        .check_url(&url)
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok((url, password))
}

/// A URL string as it may be shown: everything between the scheme (or the start) and the
/// last `@` after the user name is replaced by `***`. Works on text that is not a valid
/// URL too, so a malformed URL's password is never echoed.
pub fn redact_text(text: &str) -> String {
    let start = text.find("://").map(|i| i + 3).unwrap_or(0);
    let Some(at) = text.rfind('@').filter(|&at| at >= start) else {
        return text.to_string();
    };
    let userinfo = &text[start..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &text[..start],
            &userinfo[..colon],
            &text[at..]
        ),
        None => text.to_string(),
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::redact_text;

    #[test]
    fn redaction_hides_passwords_even_in_malformed_urls() {
        assert_eq!(
            redact_text("mysql://monitor:s3cret@db1:3306"),
            "mysql://monitor:***@db1:3306"
        );
        assert_eq!(
            redact_text("monitor:s3cret@db1:3306"),
            "monitor:***@db1:3306"
        );
        assert_eq!(
            redact_text("mysql://monitor:12/34@x@db1/tickets"),
            "mysql://monitor:***@db1/tickets"
        );
        assert_eq!(
            redact_text("mysql://monitor@db1:3306"),
            "mysql://monitor@db1:3306"
        );
        assert_eq!(redact_text("not a url"), "not a url");
    }
}
