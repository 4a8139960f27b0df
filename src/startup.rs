//! Builds the application from settings: binds the listener (port 0 in tests), prepares the
//! connection pools, the state and the metrics; `run` serves and polls until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, AppState};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::pager::Pager;
use crate::poller::Poller;
use crate::state::Store;

/// A built, not yet running, headroom.
pub struct App {
    listener: TcpListener,
    poller: Poller,
    /// Present when a notifier is configured.
    pager: Option<Arc<Pager>>,
    state: AppState,
}

impl App {
    /// Binds `server.listen` and prepares everything; connects to no database yet.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        let settings = Arc::new(settings);
        let store = Store::new(&settings);
        let metrics = Arc::new(Metrics::new());
        let mut poller = Poller::new(Arc::clone(&settings), store.clone(), Arc::clone(&metrics))
            .context("cannot prepare database connections")?;
        let pager = Pager::new(&settings, Arc::clone(&metrics)).map(Arc::new);
        if let Some(pager) = &pager {
            poller = poller.with_pager(Arc::clone(pager));
        }
        Ok(App {
            listener,
            poller,
            state: AppState {
                store,
                metrics,
                pager: pager.clone(),
            },
            pager,
        })
    }

    /// The address actually bound (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The pager, when a notifier is configured (tests).
    pub fn pager(&self) -> Option<Arc<Pager>> {
        self.pager.clone()
    }

    /// The metrics registry (tests).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.state.metrics)
    }

    /// The state the API serves, for tests and the demo.
    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// Serves HTTP and polls until `shutdown` is cancelled, then drains both.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let tracker = TaskTracker::new();
        let poller = self.poller;
        let poll_token = shutdown.clone();
        tracker.spawn(async move { poller.run(poll_token).await });
        if let Some(pager) = &self.pager {
            pager.spawn_delivery(&tracker, shutdown.clone());
        }
        tracker.close();

        tracing::info!(%addr, "Listening");
        let router = api::router(self.state);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("HTTP server failed")?;
        tracker.wait().await;
        tracing::info!("Stopped");
        Ok(())
    }
}
