//! A local stand-in for PagerDuty's Events API v2, for the tests and the demo: it checks
//! each event as PagerDuty does (202 `{"status":"success","dedup_key":...}`, 400
//! `{"status":"invalid event",...}` on a missing or malformed field), records the accepted
//! ones, and can be told to answer 429, 500, late or never.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As PagerDuty: 202 or 400.
    Accept,
    /// 429 Too Many Requests to everything.
    RateLimited,
    /// 500 to everything.
    Fail,
    /// Accepts the connection and never answers.
    Hang,
    /// 400 to everything, as PagerDuty answers a malformed event.
    Reject,
    /// As [`Mode::Accept`] (the event is recorded at once), but the answer comes only after
    /// this long: a slow receiver.
    Delay(std::time::Duration),
}

#[derive(Default)]
struct Inner {
    mode: Option<Mode>,
    /// Accepted events, in order.
    accepted: Vec<Value>,
    /// Every request, whatever the answer.
    requests: usize,
    /// Incidents open now, by dedup key, as PagerDuty groups events.
    open: std::collections::HashSet<String>,
    /// Incidents ever opened: a trigger for a key with no open incident.
    opened: usize,
}

/// A running receiver on 127.0.0.1.
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    stop: CancellationToken,
}

impl Receiver {
    /// Starts on `port` (0 for any free port).
    pub async fn start(port: u16) -> std::io::Result<Receiver> {
        Receiver::serve(port, |inner| {
            Router::new()
                .route("/v2/enqueue", post(enqueue))
                .with_state(inner)
        })
        .await
    }

    async fn serve(
        port: u16,
        router: impl FnOnce(Arc<Mutex<Inner>>) -> Router,
    ) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let stop = CancellationToken::new();
        let app = router(Arc::clone(&inner));
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
        });
        Ok(Receiver { addr, inner, stop })
    }

    /// Starts a plain webhook collector on `port`: any JSON POSTed to `/hook` is recorded
    /// and answered 200 (in [`Mode::Accept`]); the other modes apply as for PagerDuty.
    pub async fn start_webhook(port: u16) -> std::io::Result<Receiver> {
        Receiver::serve(port, |inner| {
            Router::new().route("/hook", post(hook)).with_state(inner)
        })
        .await
    }

    /// The webhook collector's URL.
    pub fn hook_url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The enqueue URL.
    pub fn url(&self) -> String {
        format!("http://{}/v2/enqueue", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = Some(mode);
    }

    /// Every accepted event, in order.
    pub fn events(&self) -> Vec<Value> {
        self.lock().accepted.clone()
    }

    /// Requests received, accepted or not.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Incidents opened so far: as on PagerDuty, a trigger for a key that already has an
    /// open incident adds to it instead of opening another.
    pub fn incidents_opened(&self) -> usize {
        self.lock().opened
    }

    /// Accepted events with this action and dedup key.
    pub fn count(&self, action: &str, dedup_key: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e["event_action"] == action && e["dedup_key"] == dedup_key)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops listening; the port is free again.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn invalid(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "status": "invalid event", "message": "Event object is invalid", "errors": errors })),
    )
        .into_response()
}

/// The checks PagerDuty makes on an event.
pub fn validate(event: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let text = |v: &Value| v.as_str().map(str::to_string);
    match text(&event["routing_key"]) {
        Some(k) if !k.is_empty() => {}
        _ => errors.push("'routing_key' is missing or blank".to_string()),
    }
    let action = text(&event["event_action"]).unwrap_or_default();
    if !matches!(action.as_str(), "trigger" | "acknowledge" | "resolve") {
        errors.push("'event_action' must be trigger, acknowledge or resolve".to_string());
    }
    match text(&event["dedup_key"]) {
        Some(k) if k.len() > 255 => errors.push("'dedup_key' is longer than 255".to_string()),
        None if action != "trigger" => {
            errors.push("'dedup_key' is required to acknowledge or resolve".to_string())
        }
        _ => {}
    }
    if action == "trigger" {
        let payload = &event["payload"];
        match text(&payload["summary"]) {
            Some(s) if !s.is_empty() && s.len() <= 1024 => {}
            _ => errors
                .push("'payload.summary' is missing, blank or over 1024 characters".to_string()),
        }
        if text(&payload["source"]).is_none_or(|s| s.is_empty()) {
            errors.push("'payload.source' is missing or blank".to_string());
        }
        let severity = text(&payload["severity"]).unwrap_or_default();
        if !matches!(severity.as_str(), "critical" | "error" | "warning" | "info") {
            errors.push("'payload.severity' must be critical, error, warning or info".to_string());
        }
    }
    errors
}

/// Counts a request and says how to answer it.
fn take_mode(inner: &Mutex<Inner>) -> Mode {
    let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
    g.requests += 1;
    g.mode.unwrap_or(Mode::Accept)
}

async fn enqueue(State(inner): State<Arc<Mutex<Inner>>>, body: axum::body::Bytes) -> Response {
    let mode = take_mode(&inner);
    if let Mode::Delay(delay) = mode {
        let response = accept(&inner, &body);
        tokio::time::sleep(delay).await;
        return response;
    }
    match mode {
        Mode::Hang => std::future::pending::<Response>().await,
        Mode::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "status": "throttle", "message": "Requests for this service are arriving too quickly." })),
        )
            .into_response(),
        Mode::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        Mode::Reject => invalid(vec!["rejected on request of the test".to_string()]),
        Mode::Accept | Mode::Delay(_) => accept(&inner, &body),
    }
}

/// Checks and records an event as PagerDuty does: 202, or 400 naming the problems.
fn accept(inner: &Mutex<Inner>, body: &[u8]) -> Response {
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return invalid(vec!["body is not JSON".to_string()]);
    };
    let errors = validate(&event);
    if !errors.is_empty() {
        return invalid(errors);
    }
    let dedup_key = event["dedup_key"]
        .as_str()
        .unwrap_or("generated")
        .to_string();
    let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
    match event["event_action"].as_str() {
        Some("trigger") if g.open.insert(dedup_key.clone()) => g.opened += 1,
        Some("resolve") => {
            g.open.remove(&dedup_key);
        }
        _ => {}
    }
    g.accepted.push(event);
    drop(g);
    (
        StatusCode::ACCEPTED,
        Json(json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key })),
    )
        .into_response()
}

async fn hook(State(inner): State<Arc<Mutex<Inner>>>, body: axum::body::Bytes) -> Response {
    let mode = take_mode(&inner);
    match mode {
        Mode::Hang => std::future::pending::<Response>().await,
        Mode::RateLimited => StatusCode::TOO_MANY_REQUESTS.into_response(),
        Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Reject => StatusCode::BAD_REQUEST.into_response(),
        Mode::Accept | Mode::Delay(_) => {
            let response = match serde_json::from_slice::<Value>(&body) {
                Ok(event) => {
                    inner
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .accepted
                        .push(event);
                    StatusCode::OK.into_response()
                }
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            };
            if let Mode::Delay(delay) = mode {
                tokio::time::sleep(delay).await;
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::validate;
    use serde_json::json;

    #[test]
    fn events_are_checked_as_pagerduty_does() {
        let ok = json!({"routing_key": "k", "event_action": "trigger", "dedup_key": "d",
            "payload": {"summary": "s", "source": "src", "severity": "critical"}});
        assert!(validate(&ok).is_empty());
        let no_summary = json!({"routing_key": "k", "event_action": "trigger",
            "payload": {"source": "src", "severity": "critical"}});
        assert_eq!(validate(&no_summary).len(), 1);
        let bad = json!({"event_action": "resolve", "payload": {}});
        assert_eq!(validate(&bad).len(), 2, "{:?}", validate(&bad));
        let long = json!({"routing_key": "k", "event_action": "trigger", "dedup_key": "x".repeat(256),
            "payload": {"summary": "s".repeat(1025), "source": "src", "severity": "loud"}});
        assert_eq!(validate(&long).len(), 3);
    }
}
