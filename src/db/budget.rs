//! The budget of database sessions that HTTP requests cause: at most
//! [`SESSIONS_PER_SHARD`] per shard at a time, shared by everything that serves a request
//! (the one-column endpoint, and any page that reads a shard on demand). A request that
//! cannot have its shard's session within a short wait ([`wait_for`]) is refused with
//! [`Busy`] (an HTTP 503 with `Retry-After`) instead of queueing: however many requests
//! arrive, the monitor adds at most this many connections to a shard beside its poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Sessions that requests may hold on one shard at once.
pub const SESSIONS_PER_SHARD: usize = 1;

/// The longest a request waits for its shard's session (see [`wait_for`]).
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// How long a request waits for its shard's session: `poll.query_timeout`, at most
/// [`MAX_WAIT`]. One query's time is what the session in use is likely to need; past 5 s
/// a client is better told to come back than kept waiting.
pub fn wait_for(query_timeout: Duration) -> Duration {
    query_timeout.min(MAX_WAIT)
}

/// The per-shard budget, shared by every request (clone the `Arc` that holds it).
#[derive(Debug, Default)]
pub struct Budget {
    /// One semaphore per shard name, made at its first use. Names come from the
    /// configuration, never from a request, so the map stays as small as the fleet.
    shards: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A session slot on a shard; the slot frees when this is dropped.
#[derive(Debug)]
pub struct Permit {
    _permit: OwnedSemaphorePermit,
}

/// The shard's sessions stayed in use for the whole wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "shard {shard}: another request is reading it; try again in {}s",
    self.retry_after_seconds()
)]
pub struct Busy {
    /// The shard asked for.
    pub shard: String,
    /// How long the request waited: the client should wait as long before retrying.
    pub waited: Duration,
}

impl Busy {
    /// Whole seconds for a `Retry-After` header: the wait rounded up, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        let secs = self.waited.as_secs() + u64::from(self.waited.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl Budget {
    pub fn new() -> Budget {
        Budget::default()
    }

    /// A session slot on `shard`, waiting at most `wait` for one to free.
    pub async fn acquire(&self, shard: &str, wait: Duration) -> Result<Permit, Busy> {
        let semaphore = {
            let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                shards
                    .entry(shard.to_string())
                    .or_insert_with(|| Arc::new(Semaphore::new(SESSIONS_PER_SHARD))),
            )
        };
        let busy = || Busy {
            shard: shard.to_string(),
            waited: wait,
        };
        match tokio::time::timeout(wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Permit { _permit: permit }),
            // The semaphore is never closed; treat it as busy rather than panic.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_query_timeout_at_most_five_seconds() {
        assert_eq!(wait_for(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(wait_for(Duration::from_secs(10)), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_acquire_on_a_busy_shard_waits_then_is_refused_with_retry_after() {
        let budget = Budget::new();
        let wait = Duration::from_millis(2_500);
        let held = budget.acquire("s1", wait).await.expect("a free shard");
        let started = tokio::time::Instant::now();
        let refused = budget.acquire("s1", wait).await.expect_err("a busy shard");
        assert_eq!(started.elapsed(), wait);
        assert_eq!(
            refused,
            Busy {
                shard: "s1".to_string(),
                waited: wait
            }
        );
        assert_eq!(refused.retry_after_seconds(), 3);
        assert_eq!(
            refused.to_string(),
            "shard s1: another request is reading it; try again in 3s"
        );
        // Another shard has its own slot.
        let other = budget.acquire("s2", wait).await.expect("another shard");
        drop((held, other));
        budget.acquire("s1", wait).await.expect("freed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_acquire_gets_the_slot_once_it_is_freed() {
        let budget = Arc::new(Budget::new());
        let held = budget.acquire("s1", MAX_WAIT).await.expect("a free shard");
        let waiter = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.acquire("s1", MAX_WAIT).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
        assert_eq!(waiter.await.expect("the waiter"), Ok(()));
    }
}
