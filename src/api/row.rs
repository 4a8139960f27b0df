//! The JSON of a column row, the one format `/api/columns`, `check --json` and
//! `plan --format json` write: written by hand, field by field, so that its order and its
//! derived fields are the contract, and a million rows are serialised without a copy.

use serde::Serialize;

use crate::measure::{ColumnReport, Kind};

/// The JSON of a row (`/api/columns`, `check --json`, `plan --format json`): the fields of
/// [`ColumnReport`] in their order (less those marked "not in the JSON"), with `remaining`,
/// `exhausts_at`, `reason` and `plan_url`, which are derived rather than held (a million
/// rows, each smaller).
impl Serialize for ColumnReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut row = serializer.serialize_struct("ColumnReport", 27)?;
        row.serialize_field("shard", &*self.shard)?;
        match self.id.database() {
            Some(database) => row.serialize_field("database", database)?,
            None => row.skip_field("database")?,
        }
        row.serialize_field("schema", &*self.id.schema)?;
        row.serialize_field("table", &*self.id.table)?;
        row.serialize_field("column", &*self.id.column)?;
        row.serialize_field("column_type", &self.column_type)?;
        row.serialize_field("kind", &self.kind)?;
        row.serialize_field("source", &self.source)?;
        if self.kind == Kind::Sequence {
            row.serialize_field("limited_by", &self.limited_by)?;
            row.serialize_field("cycle", &self.cycle)?;
        } else {
            row.skip_field("limited_by")?;
            row.skip_field("cycle")?;
        }
        row.serialize_field("parent", &self.parent())?;
        row.serialize_field("evidence", &self.evidence)?;
        row.serialize_field("current", &self.current)?;
        row.serialize_field("max", &self.max)?;
        row.serialize_field("remaining", &self.remaining())?;
        row.serialize_field("used_ratio", &self.used_ratio)?;
        row.serialize_field("status", &self.status)?;
        row.serialize_field("type_mismatch", &self.type_mismatch)?;
        row.serialize_field("observed_at", &self.observed_at)?;
        row.serialize_field("growth_per_second", &self.growth_per_second)?;
        row.serialize_field("seconds_to_exhaustion", &self.seconds_to_exhaustion)?;
        row.serialize_field("exhausts_at", &self.exhausts_at())?;
        row.serialize_field("silenced", &self.silenced)?;
        row.serialize_field("last_jump", &self.last_jump)?;
        row.serialize_field("clamped", &self.clamped)?;
        row.serialize_field("reason", &self.reason())?;
        row.serialize_field("plan_url", &self.plan_url())?;
        row.end()
    }
}
