//! One root cancellation token for the whole process, cancelled by SIGINT or SIGTERM. Every
//! task selects on it; the HTTP server drains with `with_graceful_shutdown`. SIGHUP reloads
//! the configuration.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGINT or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutdown signal received, stopping");
        token.cancel();
    });
}

/// Reloads the configuration through `handle` on every SIGHUP, until `shutdown`. The
/// outcome is logged by the reload itself.
pub fn reload_on_hangup(handle: crate::reload::Handle, shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Installed before returning: a SIGHUP from now on reloads, never terminates.
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(signal) => signal,
            Err(e) => {
                tracing::error!(error = %e, "Cannot listen for SIGHUP");
                return;
            }
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    got = hangups.recv() => if got.is_none() { return },
                }
                tracing::info!("SIGHUP received, reloading the configuration");
                let _ = handle.reload().await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (handle, shutdown);
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "Cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
