//! Column reports built by hand, for the tests and the benches: one builder instead of a
//! [`Measured`] written out field by field wherever a report is needed. Not part of the
//! daemon's interface.

use std::sync::Arc;

use chrono::Utc;

use super::{ColumnReport, Kind, Measured};
use crate::growth::Forecast;
use crate::headroom::{Headroom, IntType};
use crate::inventory::ColumnId;
use crate::policy::Limits;

/// A column report being built: see [`column`].
#[derive(Debug, Clone)]
pub struct Column {
    shard: Arc<str>,
    measured: Measured,
    forecast: Forecast,
    limits: Limits,
}

/// Column `id` of `shard`, of type `int_type`, at `current`: an auto-increment column fed by
/// nothing, as information_schema writes its type in lower case (`int unsigned`), with no
/// forecast yet, judged by the built-in thresholds, observed now.
pub fn column(shard: &str, id: ColumnId, int_type: IntType, current: i128) -> Column {
    Column {
        shard: shard.into(),
        measured: Measured {
            id,
            column_type: int_type.normalized().into(),
            int_type,
            kind: Kind::AutoIncrement,
            source: None,
            headroom: Headroom::new(current, int_type.max()),
            type_mismatch: false,
            feeder_max: None,
            evidence: None,
            limited_by: None,
            cycle: false,
        },
        forecast: Forecast::NONE,
        limits: Limits::default(),
    }
}

impl Column {
    pub fn kind(mut self, kind: Kind) -> Column {
        self.measured.kind = kind;
        self
    }

    /// The source, or the parent as `schema.table.column`.
    pub fn source(mut self, source: Option<&str>) -> Column {
        self.measured.source = source.map(str::to_string);
        self
    }

    pub fn type_mismatch(mut self, mismatch: bool) -> Column {
        self.measured.type_mismatch = mismatch;
        self
    }

    /// The largest value its source's or parent's type holds; mismatched when that is above
    /// the column's own maximum, as resolution decides it.
    pub fn feeder_max(mut self, feeder_max: Option<u64>) -> Column {
        let max = self.measured.headroom.max;
        self.measured.feeder_max = feeder_max;
        self.measured.type_mismatch = feeder_max.is_some_and(|m| max < m);
        self
    }

    /// Fed by the sequence `source` (`schema.name`) that may go up to `limit`: bound by the
    /// lower of that and its type's maximum, as resolution decides it.
    pub fn sequence(mut self, source: &str, limit: u64) -> Column {
        let type_max = self.measured.int_type.max();
        let m = &mut self.measured;
        m.kind = Kind::Sequence;
        m.source = Some(source.to_string());
        m.feeder_max = Some(limit);
        m.type_mismatch = type_max < limit;
        m.limited_by = Some(if limit < type_max {
            super::LimitedBy::Sequence
        } else {
            super::LimitedBy::Column
        });
        m.headroom = Headroom::new(m.headroom.current, type_max.min(limit));
        self
    }

    /// For `inferred`: the rule that named the parent.
    pub fn evidence(mut self, evidence: &str) -> Column {
        self.measured.evidence = Some(evidence.to_string());
        self
    }

    pub fn forecast(mut self, forecast: Forecast) -> Column {
        self.forecast = forecast;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Column {
        self.limits = limits;
        self
    }

    /// The report, as [`ColumnReport::new`] ties it to its shard, unsilenced.
    pub fn build(self) -> ColumnReport {
        ColumnReport::new(
            self.shard,
            self.measured,
            self.forecast,
            self.limits,
            None,
            Utc::now(),
        )
    }
}
