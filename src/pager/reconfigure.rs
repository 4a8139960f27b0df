//! A new configuration for a running pager: each notifier's settings and client swapped,
//! notifiers added or removed named (they take a restart), and the shards another member of
//! a split fleet owns now.

use std::sync::Arc;

use super::{Live, Pager, StartError, event};
use crate::config::Settings;

/// The incident keys of the shards `settings` names but this member does not own.
pub(super) fn owned_elsewhere(settings: &Settings) -> Vec<String> {
    let owned: std::collections::HashSet<&str> =
        settings.shards.iter().map(|s| s.name.as_str()).collect();
    settings
        .configured_shards
        .iter()
        .filter(|s| !owned.contains(s.name.as_str()))
        .flat_map(|s| {
            [
                event::column_prefix(&s.name),
                event::dedup_key(&["blind", &s.name]),
            ]
        })
        .collect()
}

impl Pager {
    /// The settings and clients of a new configuration's notifiers, built before anything
    /// is swapped: a client that cannot be built rejects the configuration.
    pub fn prepare(&self, settings: &Settings) -> Result<Vec<Live>, StartError> {
        settings
            .notifiers
            .iter()
            .filter(|n| self.notifiers.iter().any(|o| o.name == n.name))
            .map(Live::new)
            .collect()
    }

    /// Swaps in what [`Pager::prepare`] built; says (as warnings) which notifiers were added
    /// or removed, which takes a restart: open incidents and their outboxes stay as they are.
    pub fn reconfigure(&self, settings: &Settings, prepared: Vec<Live>) -> Vec<String> {
        *self.elsewhere.write().unwrap_or_else(|e| e.into_inner()) = owned_elsewhere(settings);
        // New thresholds, silences or notifier settings: every shard is looked at again.
        for evaluated in &mut self.lock().evaluated {
            evaluated.clear();
        }
        let mut warnings = Vec::new();
        for n in &self.notifiers {
            if !settings.notifiers.iter().any(|s| s.name == n.name) {
                warnings.push(format!(
                    "[{}] was removed: it keeps running until a restart",
                    n.name
                ));
            }
        }
        for s in &settings.notifiers {
            if !self.notifiers.iter().any(|n| n.name == s.name) {
                warnings.push(format!(
                    "[{}] was added: it starts at the next restart",
                    s.name
                ));
            }
        }
        for live in prepared {
            if let Some(n) = self.notifiers.iter().find(|n| n.name == live.settings.name) {
                *n.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
                // A delivery waiting out a rate limit takes the new one at its next event.
                n.wake.notify_one();
            }
        }
        warnings
    }
}
