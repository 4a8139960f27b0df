//! What the pager evaluates: the conditions of a snapshot (every source, every shard, and
//! the columns of the shards polled since the last evaluation), and the scope that says
//! which incidents are held as they are.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use chrono::{DateTime, Utc};

use super::event::{self, Condition, Event};
use super::{Pager, Scope};
use crate::config::NotifierSettings;
use crate::state::Snapshot;

impl Pager {
    /// The conditions of every source and shard in `snapshot`, and of the columns of every
    /// shard polled since `evaluated` says, and their scope: the key prefixes to hold (shards
    /// down or not polled since, sources never read) and each prefix's stamp.
    pub(super) fn conditions<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        notifier: &NotifierSettings,
        (evaluated, open): (&mut HashMap<String, u64>, &BTreeMap<String, Event>),
        now: DateTime<Utc>,
    ) -> (Vec<Condition<'a>>, Scope) {
        let url = self.external_url.as_str();
        let mut out = Vec::new();
        let mut scope = Scope::default();
        if evaluated.len() > snapshot.shards.len()
            || snapshot
                .shards
                .iter()
                .any(|s| !evaluated.contains_key(&s.name))
        {
            // Shards were removed or added (a reload): forget those gone, in one pass.
            let names: std::collections::HashSet<&str> =
                snapshot.shards.iter().map(|s| s.name.as_str()).collect();
            evaluated.retain(|name, _| names.contains(name.as_str()));
        }
        for s in &snapshot.shards {
            let columns = event::column_prefix(&s.name);
            scope
                .stamps
                .push((event::dedup_key(&["blind", &s.name]), s.polls));
            let polled_since = evaluated.get(&s.name) != Some(&s.polls);
            if !s.up || !polled_since {
                scope.held.push(columns.clone());
            }
            if polled_since {
                evaluated.insert(s.name.clone(), s.polls);
                // An ok column matters only to its open incident: without any on the shard,
                // only the columns that could trigger are evaluated.
                let any_open = open
                    .range::<str, _>((Bound::Included(columns.as_str()), Bound::Unbounded))
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(columns.as_str()));
                out.extend(
                    s.columns
                        .iter()
                        .filter(|c| any_open || event::may_trigger(c))
                        .map(|c| event::column(c, s, url)),
                );
            }
            scope.stamps.push((columns, s.polls));
            if s.databases.is_some() {
                let ages = super::wraparound::prefix(&s.name);
                if !s.up {
                    scope.held.push(ages.clone());
                }
                scope.stamps.push((ages, s.polls));
                out.extend(super::wraparound::conditions(s, url));
            }
            out.push(event::blind_shard(
                s,
                notifier.blind_after,
                self.started,
                url,
                now,
            ));
        }
        for s in &snapshot.sources {
            let key = event::dedup_key(&["source", &s.name]);
            if s.current.is_none() {
                scope.held.push(key);
            } else {
                scope.stamps.push((key, s.reads));
                out.push(event::source(s, url));
            }
            let key = event::dedup_key(&["collision", &s.name]);
            if s.servers
                .iter()
                .all(|srv| srv.auto_increment_increment.is_none())
            {
                scope.held.push(key);
            } else {
                scope.stamps.push((key, s.reads));
                out.push(event::collision(s, url));
            }
        }
        (out, scope)
    }
}
