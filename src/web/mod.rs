//! The HTTP edge: the accept loop and each connection's limits, TLS and basic auth from the
//! web configuration file, and the request time limit.
//!
//! `axum::serve` has no limits of its own: a client that sends half a request line holds its
//! connection (and a file descriptor) forever. Here every connection is served by hyper's
//! HTTP/1 server with a header read timeout, which also runs while a keep-alive connection
//! waits for its next request; at most `max_connections` are served at once, and further
//! ones wait in the kernel's listen backlog until a slot frees (as Go's
//! `netutil.LimitListener` does), so a flood cannot starve the process of descriptors. A
//! client that stops reading its response is closed after `request_timeout` ([`stall`]).

pub mod auth;
pub mod config;
pub mod stall;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use crate::config::ServerSettings;

pub use config::{WebConfig, WebConfigError};

/// How long connections still open at shutdown may take to finish their request before
/// they are closed. Handlers only read memory, so a request in flight needs milliseconds;
/// this bounds the wait for a client that is still sending its headers.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Why headroom could not start serving. Each is a problem of configuration or of the
/// machine that a restart will not fix: `headroom run` exits 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen on {addr}: the address is already in use (is another headroom, or another program, listening there?)"
    )]
    AddressInUse { addr: SocketAddr },
    /// The cause is in the message rather than a `source`, so it is printed once.
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: SocketAddr, error: io::Error },
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
}

/// Binds `addr`, telling an address in use from other failures.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|error| {
        if error.kind() == io::ErrorKind::AddrInUse {
            StartError::AddressInUse { addr }
        } else {
            StartError::Listen { addr, error }
        }
    })
}

/// Everything the edge needs besides the listener and the router.
#[derive(Clone)]
pub struct Edge {
    /// Connections not done sending request headers within this are closed.
    pub header_read_timeout: Duration,
    /// A handler running longer is answered 503.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// HTTPS when present.
    pub tls: Option<TlsAcceptor>,
    /// Basic auth when the web configuration lists users.
    pub auth: Option<auth::BasicAuth>,
}

impl Edge {
    /// The edge for `server`, with the web configuration file loaded when one is named.
    pub fn from_settings(server: &ServerSettings) -> Result<Edge, WebConfigError> {
        let web = match &server.web_config_file {
            Some(path) => config::load(path)?,
            None => WebConfig::default(),
        };
        for warning in web.warnings() {
            tracing::warn!("Web configuration: {warning}");
        }
        Ok(Edge {
            header_read_timeout: server.header_read_timeout,
            request_timeout: server.request_timeout,
            max_connections: server.max_connections,
            tls: web.tls.map(TlsAcceptor::from),
            auth: (!web.users.is_empty()).then(|| auth::BasicAuth::new(web.users)),
        })
    }

    /// `router` behind the request time limit and, when configured, basic auth (checked
    /// first, so an unauthenticated client learns nothing, not even which paths exist).
    pub fn wrap(&self, router: Router) -> Router {
        let router = router.layer(axum::middleware::from_fn_with_state(
            self.request_timeout,
            time_limit,
        ));
        match &self.auth {
            Some(auth) => router.layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                auth::require,
            )),
            None => router,
        }
    }
}

/// Answers 503 with the JSON error body when the rest of the request takes longer than
/// `limit`. 503 rather than 408: the client sent its request in time; the server is slow.
pub async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => api::error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request took longer than server.request_timeout ({})",
                humantime::format_duration(limit)
            ),
        ),
    }
}

/// Serves `router` (already wrapped by [`Edge::wrap`]) on `listener` until `shutdown` is
/// cancelled; then stops accepting, lets open connections finish the request they are in
/// (up to [`DRAIN_LIMIT`]) and returns.
pub async fn serve(listener: TcpListener, router: Router, edge: Edge, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(edge.max_connections));
    let connections = TaskTracker::new();
    let hard_stop = CancellationToken::new();
    loop {
        // A slot first, then accept: while every slot is taken, new connections stay in the
        // listen backlog rather than being accepted and left unserved.
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of descriptors or memory: wait rather than spin.
                        tracing::error!(error = %e, "Cannot accept a connection");
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    continue;
                }
            },
        };
        let router = router.clone();
        let edge = edge.clone();
        let shutdown = shutdown.clone();
        let hard_stop = hard_stop.clone();
        connections.spawn(async move {
            connection(stream, peer, router, &edge, &shutdown, &hard_stop).await;
            // The slot is freed only once the socket is closed.
            drop(permit);
        });
    }
    // Connections still in the backlog are refused from here on.
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_LIMIT, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            "Closing connections still open after the drain limit"
        );
        hard_stop.cancel();
        connections.wait().await;
    }
}

/// Errors of one connection that leave the listener fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    edge: &Edge,
    shutdown: &CancellationToken,
    hard_stop: &CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    // A client that stops reading its response is cut off like one that stops sending.
    let stream = stall::WriteStallLimit::new(stream, edge.request_timeout);
    match &edge.tls {
        None => http(stream, router, edge, shutdown, hard_stop).await,
        Some(acceptor) => {
            // The handshake is part of what a client must finish within the header read
            // timeout: a client that connects and says nothing holds no slot for longer.
            let handshake = tokio::select! {
                () = shutdown.cancelled() => return,
                h = tokio::time::timeout(edge.header_read_timeout, acceptor.accept(stream)) => h,
            };
            match handshake {
                Ok(Ok(tls)) => http(tls, router, edge, shutdown, hard_stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn http<I>(
    io: I,
    router: Router,
    edge: &Edge,
    shutdown: &CancellationToken,
    hard_stop: &CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(edge.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "Connection closed on error");
            }
            return;
        }
        () = shutdown.cancelled() => {}
    }
    // Finish the request in flight, if any, then close: idle connections close at once.
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        () = hard_stop.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(120)).await;
        "done"
    }

    fn router(limit: Duration) -> Router {
        Router::new()
            .route("/slow", get(slow))
            .route("/fast", get(|| async { "fast" }))
            .layer(axum::middleware::from_fn_with_state(limit, time_limit))
    }

    async fn call(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_slower_than_the_request_timeout_is_answered_503_with_the_json_error() {
        let (status, body) = call(router(Duration::from_secs(60)), "/slow").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            r#"{"error":"the request took longer than server.request_timeout (1m)"}"#
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_handler_within_the_request_timeout_answers_normally() {
        let (status, body) = call(router(Duration::from_secs(60)), "/fast").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fast"));
        let (status, body) = call(router(Duration::from_secs(200)), "/slow").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "done"));
    }
}
