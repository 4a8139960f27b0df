//! Builds the application from settings: loads the web configuration file, binds the
//! listener (port 0 in tests), prepares the connection pools, the state and the metrics;
//! `run` serves and polls until shutdown.

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
use crate::reload;
use crate::state::Store;
use crate::web::{self, Edge};

/// A built, not yet running, headroom.
pub struct App {
    listener: TcpListener,
    poller: Poller,
    /// Present when a notifier is configured.
    pager: Option<Arc<Pager>>,
    state: AppState,
    /// Limits, TLS and basic auth of the HTTP server.
    edge: Edge,
    /// Reload requests, when the configuration came from a file.
    reload: Option<reload::Requests>,
    /// Sends them (SIGHUP, `POST /-/reload`).
    reload_handle: Option<reload::Handle>,
}

impl App {
    /// Loads the web configuration file, binds `server.listen` and prepares everything;
    /// connects to no database yet. A bad web configuration file or a listen address that
    /// cannot be bound is a [`web::StartError`] (`headroom run` exits 2 on it).
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let edge = Edge::from_settings(&settings.server).map_err(web::StartError::from)?;
        let listener = web::bind(settings.server.listen).await?;
        let settings = Arc::new(settings);
        let store = Store::new(&settings);
        let metrics = Arc::new(Metrics::with_settings(settings.metrics));
        metrics.publish_cluster(
            settings.cluster,
            settings.shards.len(),
            settings.configured_shards.len(),
        );
        let poller = Poller::new(Arc::clone(&settings), store.clone())
            .context("cannot prepare database connections")?;
        let pager = Pager::new(&settings, Arc::clone(&metrics))?.map(Arc::new);
        Ok(App {
            listener,
            poller,
            state: AppState {
                store,
                metrics,
                pager: pager.clone(),
                reload: None,
                settings: Arc::new(std::sync::RwLock::new(Arc::clone(&settings))),
                plans: Arc::new(api::plan_cache::Plans::new()),
            },
            pager,
            edge,
            reload: None,
            reload_handle: None,
        })
    }

    /// Makes the configuration reloadable from `source`: through [`App::reload_handle`]
    /// (SIGHUP), and through `POST /-/reload` when `lifecycle` (`--web.enable-lifecycle`).
    pub fn reloadable(mut self, source: reload::Source, lifecycle: bool) -> App {
        let (handle, requests) = reload::channel(source);
        self.reload = Some(requests);
        self.state.reload = lifecycle.then(|| handle.clone());
        self.reload_handle = Some(handle);
        self
    }

    /// Asks for a reload, once [`App::reloadable`] said where from.
    pub fn reload_handle(&self) -> Option<reload::Handle> {
        self.reload_handle.clone()
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
        let parts = reload::Parts {
            store: self.state.store.clone(),
            metrics: Arc::clone(&self.state.metrics),
            pager: self.pager.clone(),
            settings: Arc::clone(&self.state.settings),
        };
        // The poller, one generation per configuration.
        tracker.spawn(reload::run(
            self.poller,
            parts,
            self.reload,
            shutdown.clone(),
        ));
        if let Some(pager) = &self.pager {
            // The pager hears of every finished shard poll from the store.
            pager.spawn_evaluation(&tracker, self.state.store.clone(), shutdown.clone());
            pager.spawn_delivery(&tracker, shutdown.clone());
        }
        tracker.close();

        tracing::info!(
            %addr,
            tls = self.edge.tls.is_some(),
            basic_auth = self.edge.auth.is_some(),
            "Listening"
        );
        let router = self.edge.wrap(api::router(self.state));
        web::serve(self.listener, router, self.edge, shutdown).await;
        tracker.wait().await;
        tracing::info!("Stopped");
        Ok(())
    }
}
