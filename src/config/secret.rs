//! Secrets — a database password, a PagerDuty routing key — from an environment variable
//! or a file, exactly one of the two, and both read alike: trailing line breaks (as `echo`
//! and editors leave them) are removed, and a secret that is empty or only whitespace is a
//! problem, never a login without a password.

use std::path::Path;

use secrecy::SecretString;

use super::section::Section;

/// The secret named by `env_key` or `file_key` (a file path relative to `base`):
/// `Some(None)` when neither is set and the secret is optional, `None` when something is
/// wrong (the problem is recorded).
pub(super) fn read(
    s: &mut Section,
    env_key: &str,
    file_key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
    required: bool,
) -> Option<Option<SecretString>> {
    let env = s.string(env_key, false);
    let file = s.string(file_key, false);
    let (key, value, origin) = match (env, file) {
        (Some(_), Some(_)) => {
            s.problem(env_key, format!("and {file_key} are both set: keep one"));
            return None;
        }
        (None, None) if required => {
            s.problem(env_key, format!("is missing: set {env_key} or {file_key}"));
            return None;
        }
        (None, None) => return Some(None),
        (Some(var), None) => (
            env_key,
            lookup(&var).ok_or_else(|| format!("environment variable {var} is not set")),
            format!("environment variable {var}"),
        ),
        (None, Some(file)) => {
            let path = base.join(file);
            (
                file_key,
                super::file::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display())),
                path.display().to_string(),
            )
        }
    };
    match value {
        Ok(text) => {
            let secret = text.trim_end_matches(['\r', '\n']);
            if secret.trim().is_empty() {
                s.problem(key, format!("{origin} is empty"));
                None
            } else {
                Some(Some(SecretString::from(secret.to_string())))
            }
        }
        Err(message) => {
            s.problem(key, message);
            None
        }
    }
}
