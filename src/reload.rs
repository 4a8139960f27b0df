//! Configuration reload without a restart: SIGHUP, or `POST /-/reload` when started with
//! `--web.enable-lifecycle`. This module owns "load, compare, swap".
//!
//! A reload reads the whole configuration again with [`config::load_with`] (the command
//! line's overrides applied again). A configuration
//! with any problem is rejected whole: every problem is logged, the running one stays, and
//! `headroom_config_last_reload_successful` drops to 0. A good one is prepared first (new
//! connectors, new notifier clients), then swapped in: the poller's generation (a child of
//! the shutdown token) ends, the next one takes over its growth histories in memory, the
//! store keeps the state of every shard and source that stays, and the metrics forget what
//! is gone. `[server]` and the state path are kept as they run: changing them takes a
//! restart (a warning says so).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{self, ConfigError, Settings};
use crate::metrics::Metrics;
use crate::pager::{self, Pager};
use crate::poller::Poller;
use crate::state::Store;

/// The running settings, shared with the reload that swaps them.
pub type SharedSettings = Arc<std::sync::RwLock<Arc<crate::config::Settings>>>;

/// What a reload answers: the warnings of a configuration taken, or every problem of one
/// rejected.
pub type Outcome = Result<Vec<String>, Vec<String>>;

/// Asks the running headroom to reload; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    requests: mpsc::Sender<oneshot::Sender<Outcome>>,
}

impl Handle {
    /// Reloads and waits for the outcome; `Err` also when headroom is shutting down.
    pub async fn reload(&self) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        if self.requests.send(reply).await.is_err() {
            return Err(vec!["headroom is shutting down".to_string()]);
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(vec!["headroom is shutting down".to_string()]))
    }
}

/// Where the configuration is read again from.
pub struct Source {
    /// The file given with `--config`.
    pub path: PathBuf,
    /// The command line's `--web.config.file` and `--member`, applied to every reading.
    pub overrides: config::Overrides,
}

/// The receiving end of reload requests, with what it reads.
pub struct Requests {
    source: Source,
    receiver: mpsc::Receiver<oneshot::Sender<Outcome>>,
}

/// A handle and the requests it sends, for [`run`].
pub fn channel(source: Source) -> (Handle, Requests) {
    let (requests, receiver) = mpsc::channel(8);
    (Handle { requests }, Requests { source, receiver })
}

/// Everything a reload swaps.
pub struct Parts {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub pager: Option<Arc<Pager>>,
    /// The settings the API reads (the plan endpoint connects to shards with them).
    pub settings: SharedSettings,
}

/// A new configuration, ready to swap in.
struct Prepared {
    poller: Poller,
    notifiers: Vec<pager::Live>,
    warnings: Vec<String>,
}

/// Runs `poller`, one generation per configuration, until `shutdown`; reloads on each
/// request (none without `requests`). Saves the histories and closes the connections last.
pub async fn run(
    poller: Poller,
    parts: Parts,
    mut requests: Option<Requests>,
    shutdown: CancellationToken,
) {
    let mut running = Arc::clone(poller.settings());
    let mut generation = shutdown.child_token();
    let mut task = tokio::spawn(poller.run_generation(generation.clone()));
    loop {
        let request = match requests.as_mut() {
            Some(r) => tokio::select! {
                _ = shutdown.cancelled() => break,
                request = r.receiver.recv() => request,
            },
            None => None,
        };
        let (Some(reply), Some(r)) = (request, requests.as_ref()) else {
            shutdown.cancelled().await;
            break;
        };
        let outcome = match prepare(&r.source, &running, &parts).await {
            Err(problems) => {
                for p in &problems {
                    tracing::error!(problem = %p, "Configuration reload rejected");
                }
                parts.metrics.reloaded(false);
                Err(problems)
            }
            Ok(prepared) => {
                generation.cancel();
                let Ok(previous) = task.await else {
                    tracing::error!("The poller stopped on a panic");
                    return;
                };
                let Prepared {
                    poller,
                    notifiers,
                    mut warnings,
                } = prepared;
                poller.take_over(&previous);
                warnings.extend(swap(&poller, &parts, notifiers));
                running = Arc::clone(poller.settings());
                // The old connections close in the background, each within a grace period.
                tokio::spawn(async move { previous.close().await });
                generation = shutdown.child_token();
                task = tokio::spawn(poller.run_generation(generation.clone()));
                for w in &warnings {
                    tracing::warn!(warning = %w, "Configuration reload");
                }
                parts.metrics.reloaded(true);
                tracing::info!(
                    shards = running.shards.len(),
                    sources = running.sources.len(),
                    "Configuration reloaded"
                );
                Ok(warnings)
            }
        };
        let _ = reply.send(outcome);
    }
    generation.cancel();
    if let Ok(last) = task.await {
        last.finish().await;
    }
}

/// Reads the configuration again and prepares everything that can fail, so that a
/// configuration that cannot run is rejected before anything is swapped.
async fn prepare(
    source: &Source,
    running: &Settings,
    parts: &Parts,
) -> Result<Prepared, Vec<String>> {
    // Files are read off the runtime's threads: a fleet of includes and password files.
    let path = source.path.clone();
    let overrides = source.overrides.clone();
    let loaded = tokio::task::spawn_blocking(move || config::load_with(&path, &overrides))
        .await
        .map_err(|e| vec![format!("reading the configuration stopped: {e}")])?;
    let mut settings = loaded.map_err(|e| match e {
        ConfigError::Invalid { problems, .. } => problems.iter().map(|p| p.to_string()).collect(),
        other => vec![other.to_string()],
    })?;
    let mut warnings: Vec<String> = settings.warnings.iter().map(|w| w.to_string()).collect();
    if settings.server != running.server {
        warnings
            .push("[server] changed: it takes a restart; the running values are kept".to_string());
        settings.server = running.server.clone();
    }
    if settings.state_path != running.state_path {
        warnings.push(format!(
            "state.path changed: it takes a restart; {} is kept",
            running.state_path.display()
        ));
        settings.state_path = running.state_path.clone();
    }
    let settings = Arc::new(settings);
    let notifiers = match &parts.pager {
        Some(pager) => pager.prepare(&settings).map_err(|e| vec![e.to_string()])?,
        None if !settings.notifiers.is_empty() => {
            warnings.push("notifiers were added: paging starts at the next restart".to_string());
            Vec::new()
        }
        None => Vec::new(),
    };
    let poller = Poller::one_shot(Arc::clone(&settings), parts.store.clone())
        .map_err(|e| vec![format!("cannot prepare database connections: {e}")])?;
    Ok(Prepared {
        poller,
        notifiers,
        warnings,
    })
}

/// Swaps the new configuration into the store, the metrics and the pager; the pager's
/// warnings.
fn swap(poller: &Poller, parts: &Parts, notifiers: Vec<pager::Live>) -> Vec<String> {
    let settings = poller.settings();
    *parts.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(settings);
    let removed = parts.store.reconfigure(settings);
    parts.metrics.forget(&removed);
    parts.metrics.set_settings(settings.metrics);
    parts.metrics.publish_cluster(
        settings.cluster,
        settings.shards.len(),
        settings.configured_shards.len(),
    );
    match &parts.pager {
        Some(pager) => pager.reconfigure(settings, notifiers),
        None => Vec::new(),
    }
}
