//! Delivery: the loop that sends each notifier's outbox in order under its rate limit, and
//! for one event the PagerDuty Events API v2 body and the webhook body, how a response is
//! judged (delivered, rejected for good, or worth a retry), and the backoff between tries.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Pager;
use super::event::{Action, Event};
use super::state_file::Taken;
use crate::config::{NotifierKind, NotifierSettings};

/// What came of one try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The receiver refused the event itself (400): retrying cannot help.
    Rejected(String),
    /// A network error, a timeout, 429 or 5xx (or another answer worth a new try), and how
    /// long the receiver asked us to wait (`Retry-After`), if it did.
    Retry(String, Option<Duration>),
}

/// The links of a trigger: the condition in headroom, and for a column its widening plan
/// and its page.
fn links(event: &Event) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = event
        .link
        .iter()
        .map(|href| json!({ "href": href, "text": "This condition in headroom" }))
        .collect();
    for (key, text) in [
        ("plan_url", "The plan that widens this column"),
        ("page_url", "This column's page"),
    ] {
        if let Some(href) = event.custom_details.get(key).and_then(|v| v.as_str()) {
            out.push(json!({ "href": href, "text": text }));
        }
    }
    out
}

/// The Events API v2 body for `event`.
pub fn pagerduty_body(event: &Event, routing_key: &str, client_url: &str) -> serde_json::Value {
    match event.action {
        Action::Resolve => json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": event.dedup_key,
        }),
        Action::Trigger => json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": event.dedup_key,
            "payload": {
                "summary": event.summary,
                "source": event.source,
                "severity": event.severity,
                "timestamp": event.created_at,
                "component": event.component,
                "group": event.group,
                "class": event.class,
                "custom_details": event.custom_details,
            },
            "links": links(event),
            "client": "headroom",
            "client_url": client_url,
        }),
    }
}

/// Sends `event` once.
pub async fn send(
    client: &reqwest::Client,
    notifier: &NotifierSettings,
    event: &Event,
    client_url: &str,
) -> Outcome {
    let body = match &notifier.kind {
        NotifierKind::PagerDuty { routing_key } => {
            pagerduty_body(event, routing_key.expose_secret(), client_url)
        }
        NotifierKind::Webhook => match serde_json::to_value(event) {
            Ok(v) => v,
            Err(e) => return Outcome::Rejected(format!("cannot encode the event: {e}")),
        },
    };
    let response = match client.post(notifier.url.clone()).json(&body).send().await {
        Ok(r) => r,
        // Without the URL: a webhook URL is often a secret itself.
        Err(e) => return Outcome::Retry(format!("{}", e.without_url()), None),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(500).collect();
    match (status.as_u16(), &notifier.kind) {
        (200..=299, _) => Outcome::Delivered,
        // The event itself is refused (malformed, too large): no retry can help.
        (400 | 413, _) => Outcome::Rejected(format!("{status}: {text}")),
        (401..=499, NotifierKind::Webhook) if !matches!(status.as_u16(), 408 | 429) => {
            Outcome::Rejected(format!("{status}: {text}"))
        }
        // 429 and 5xx; and for PagerDuty 401/403/404, a wrong key or URL that an operator
        // fixes: the page waits (and headroom_pager_queue_depth shows it) rather than being
        // lost.
        _ => Outcome::Retry(format!("{status}: {text}"), retry_after),
    }
}

/// The wait before try `attempt` (1 for the first retry): doubling from `initial` up to
/// `max`, then scaled by a random factor in 0.5..1 so that replicas do not retry in step.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, seed: u64) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    // xorshift64*: a dependency-free spread, plenty for jitter.
    let mut x = seed | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
    let unit = r as f64 / (1u64 << 53) as f64;
    capped.mul_f64(0.5 + 0.5 * unit)
}

/// The delivery loop: one task per notifier sends its outbox in order, under the rate
/// limit, retrying with backoff; each event taken off is journalled.
impl Pager {
    /// Delivers every notifier's outbox until `shutdown`; undelivered events stay in the
    /// state file for the next start.
    pub fn spawn_delivery(
        self: &Arc<Self>,
        tracker: &tokio_util::task::TaskTracker,
        shutdown: CancellationToken,
    ) {
        for i in 0..self.notifiers.len() {
            let pager = Arc::clone(self);
            let token = shutdown.clone();
            tracker.spawn(async move { pager.deliver(i, token).await });
        }
    }

    async fn deliver(&self, i: usize, shutdown: CancellationToken) {
        let n = &self.notifiers[i];
        let name = n.name;
        let mut last_sent: Option<tokio::time::Instant> = None;
        let mut attempt: u32 = 0;
        loop {
            let next = self.lock().outboxes[i].front().cloned();
            let Some(event) = next else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = n.wake.notified() => continue,
                }
            };
            // Taken for each event: a reload may have changed them.
            let live = n.live();
            let spacing = Duration::from_secs(60) / live.settings.max_events_per_minute.max(1);
            // Stay under the receiver's rate limit.
            if let Some(at) = last_sent {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(at + spacing) => {}
                }
            }
            last_sent = Some(tokio::time::Instant::now());
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                outcome = send(&live.client, &live.settings, &event, &self.external_url) => outcome,
            };
            let action = event.action.as_str();
            match outcome {
                Outcome::Delivered => {
                    attempt = 0;
                    self.metrics.pager_event(name, action, "delivered");
                    tracing::info!(notifier = name, action, dedup_key = %event.dedup_key, "Page delivered");
                    self.pop(i, &event);
                }
                Outcome::Rejected(why) => {
                    attempt = 0;
                    self.metrics.pager_event(name, action, "rejected");
                    tracing::error!(notifier = name, action, dedup_key = %event.dedup_key, response = %why, "Page rejected by the receiver, dropped");
                    self.pop(i, &event);
                }
                Outcome::Retry(why, retry_after) => {
                    attempt += 1;
                    self.metrics.pager_event(name, action, "retry");
                    let seed =
                        Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64 ^ (i as u64) << 32;
                    let backoff = backoff(
                        attempt,
                        live.settings.retry_initial,
                        live.settings.retry_max,
                        seed,
                    );
                    // A receiver's Retry-After is honoured, up to retry_max.
                    let wait = retry_after
                        .map_or(backoff, |r| r.min(live.settings.retry_max).max(backoff));
                    tracing::warn!(notifier = name, action, dedup_key = %event.dedup_key, attempt, wait_ms = wait.as_millis() as u64, error = %why, "Page not delivered, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Takes a delivered (or dropped) event off the front of outbox `i`, and journals it.
    pub(super) fn pop(&self, i: usize, event: &Event) {
        let taken = {
            let mut books = self.lock();
            if books.outboxes[i].front() != Some(event) {
                return;
            }
            books.outboxes[i].pop_front();
            books.seq += 1;
            self.publish_depths(&books);
            Taken::new(books.seq, self.notifiers[i].name, event)
        };
        self.persist_taken(&taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let (i, m) = (Duration::from_secs(1), Duration::from_secs(60));
        for seed in [1u64, 42, 9_999_999] {
            let b1 = backoff(1, i, m, seed);
            assert!(b1 >= Duration::from_millis(500) && b1 <= Duration::from_secs(1));
            let b3 = backoff(3, i, m, seed);
            assert!(b3 >= Duration::from_secs(2) && b3 <= Duration::from_secs(4));
            let b30 = backoff(30, i, m, seed);
            assert!(b30 >= Duration::from_secs(30) && b30 <= m);
        }
        assert_ne!(backoff(2, i, m, 1), backoff(2, i, m, 2));
    }
}
