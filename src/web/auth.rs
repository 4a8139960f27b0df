//! HTTP basic authentication against the bcrypt hashes of the web configuration file.
//!
//! Every endpoint but `/healthz` asks for it. A bcrypt check costs tens of milliseconds by
//! design, too much for every scrape, so successful checks are remembered (as the
//! exporter-toolkit does), keyed by an HMAC of user and password under a key drawn at
//! start-up: the cache never holds a password, and its keys are useless outside this process.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use ring::hmac;
use tokio::sync::Semaphore;

use crate::api;

/// The one endpoint open without credentials: load balancers and liveness probes use it.
pub const OPEN_PATH: &str = "/healthz";

/// How many successful checks are remembered before the cache starts over.
const CACHE_LIMIT: usize = 1024;

/// Checks credentials; cheap to clone.
#[derive(Clone)]
pub struct BasicAuth {
    inner: Arc<Inner>,
}

struct Inner {
    /// User name → bcrypt hash.
    users: BTreeMap<String, String>,
    /// Hashed in place of a missing user's, so that an unknown user costs the same time
    /// as a wrong password and names cannot be told apart by timing.
    decoy: String,
    /// Keys the cache; drawn at start-up, never leaves the process.
    key: hmac::Key,
    /// HMACs of credentials that passed bcrypt.
    passed: Mutex<HashSet<Vec<u8>>>,
    /// bcrypt runs on the blocking pool; this keeps a flood of bad passwords from queueing
    /// more work than there are cores.
    bcrypt_slots: Semaphore,
}

impl BasicAuth {
    /// Authentication against `users` (user → bcrypt hash, already checked by the loader).
    pub fn new(users: BTreeMap<String, String>) -> BasicAuth {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &random_fallback()));
        // The cost of the most expensive hash: an unknown user then takes as long as the
        // slowest wrong password, never less, so no configured name shows by being slow.
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let decoy = bcrypt::hash("decoy", cost).unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        BasicAuth {
            inner: Arc::new(Inner {
                users,
                decoy,
                key,
                passed: Mutex::new(HashSet::new()),
                bcrypt_slots: Semaphore::new(cores),
            }),
        }
    }

    /// Whether `user` / `password` are right.
    pub async fn check(&self, user: &str, password: &str) -> bool {
        let mac = self.mac(user, password);
        if self.lock().contains(&mac) {
            return true;
        }
        let known = self.inner.users.get(user);
        let hash = known.unwrap_or(&self.inner.decoy).clone();
        let password = password.to_string();
        let Ok(_slot) = self.inner.bcrypt_slots.acquire().await else {
            return false;
        };
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|r| r.unwrap_or(false));
        let ok = verified && known.is_some();
        if ok {
            let mut passed = self.lock();
            if passed.len() >= CACHE_LIMIT {
                passed.clear();
            }
            passed.insert(mac);
        }
        ok
    }

    /// How many successful checks are remembered (tests).
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    fn mac(&self, user: &str, password: &str) -> Vec<u8> {
        // Length-prefixed user, so that ("ab", "c") and ("a", "bc") differ.
        let mut ctx = hmac::Context::with_key(&self.inner.key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        // A poisoned cache only ever held successful checks; keep using it.
        self.inner
            .passed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A key when the system's random source fails (it does not on Linux): the process id and
/// the time, which still keeps cache keys from being plain hashes of the password.
fn random_fallback() -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    [
        now.to_be_bytes().as_slice(),
        &std::process::id().to_be_bytes(),
    ]
    .concat()
}

/// The user and password of an `Authorization: Basic` header.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The middleware: `/healthz` passes, everything else needs credentials.
pub async fn require(State(auth): State<BasicAuth>, request: Request, next: Next) -> Response {
    if request.uri().path() == OPEN_PATH {
        return next.run(request).await;
    }
    match credentials(request.headers()) {
        Some((user, password)) if auth.check(&user, &password).await => next.run(request).await,
        _ => {
            let mut response = api::error(
                StatusCode::UNAUTHORIZED,
                "authentication required: send HTTP basic auth credentials",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"headroom\""),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> BasicAuth {
        let users = BTreeMap::from([
            ("ann".to_string(), bcrypt::hash("right", 4).unwrap()),
            ("bob".to_string(), bcrypt::hash("other", 4).unwrap()),
        ]);
        BasicAuth::new(users)
    }

    #[tokio::test]
    async fn only_the_right_password_for_the_user_passes_and_only_successes_are_cached() {
        let auth = auth();
        assert!(!auth.check("ann", "wrong").await);
        assert!(!auth.check("ann", "other").await, "bob's password");
        assert!(!auth.check("nobody", "right").await);
        assert_eq!(auth.cached(), 0);
        assert!(auth.check("ann", "right").await);
        assert_eq!(auth.cached(), 1);
        assert!(auth.check("ann", "right").await);
        assert_eq!(auth.cached(), 1);
        assert!(auth.check("bob", "other").await);
        assert_eq!(auth.cached(), 2);
    }

    fn cost(hash: &str) -> u32 {
        hash.parse::<bcrypt::HashParts>()
            .expect("a hash")
            .get_cost()
    }

    #[test]
    fn an_unknown_user_costs_what_the_most_expensive_configured_hash_costs() {
        // alice sorts first and is the cheapest: the decoy must not follow her.
        let users = BTreeMap::from([
            ("alice".to_string(), bcrypt::hash("a", 4).unwrap()),
            ("mia".to_string(), bcrypt::hash("m", 6).unwrap()),
            ("zed".to_string(), bcrypt::hash("z", 7).unwrap()),
        ]);
        assert_eq!(cost(&BasicAuth::new(users).inner.decoy), 7);
    }

    #[test]
    fn cache_keys_are_keyed_macs_not_the_password() {
        let auth = auth();
        let mac = auth.mac("ann", "right");
        assert_eq!(mac.len(), 32);
        assert!(!mac.windows(5).any(|w| w == b"right"));
        assert_ne!(mac, auth.mac("annr", "ight"));
        assert_ne!(mac, BasicAuth::new(BTreeMap::new()).mac("ann", "right"));
    }

    #[test]
    fn basic_credentials_are_decoded_and_other_schemes_are_not() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YW5uOnBhOnNz"),
        );
        assert_eq!(
            credentials(&headers),
            Some(("ann".to_string(), "pa:ss".to_string()))
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer YW5uOnBhOnNz"),
        );
        assert_eq!(credentials(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert_eq!(credentials(&headers), None);
    }
}
