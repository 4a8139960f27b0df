//! The `headroom plan` command: one poll (as `check`), the definitions of the columns to
//! widen read from their shards, and the plan as text, JSON or SQL. Names in the text are
//! escaped ([`crate::escape`]); the JSON holds them exactly; the SQL is the statements to
//! run, exactly, with names in its comments escaped so that none can end a comment. On a
//! PostgreSQL shard the SQL is a psql script: `ON_ERROR_STOP` set, and a `\connect` to
//! each database before its statements, its name quoted for psql and for libpq.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use super::{Change, Planned, PostgresChange, Widening};
use crate::config::Settings;
use crate::engine::Engine;
use crate::escape::escape;
use crate::policy::ColumnGlobs;
use crate::poller::Poller;

/// How `plan` writes the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people: names escaped for the terminal.
    Text,
    /// For tools: names exact.
    Json,
    /// The statements to run on one shard, for `mariadb < plan.sql` (`psql -f plan.sql` on
    /// PostgreSQL): names exact.
    Sql,
}

/// What `plan` prints and how it ends.
pub struct Outcome {
    /// The plan, on stdout.
    pub output: String,
    /// Why it could not be made, on stderr.
    pub errors: String,
    /// 0 printed; 2 a server unreachable, or SQL asked for without saying which shard.
    pub exit_code: u8,
    /// The output holds characters a terminal would act on (the SQL writes names exactly):
    /// it must go to a file, not to a terminal.
    pub raw_controls: bool,
}

impl Outcome {
    fn failed(errors: String) -> Outcome {
        Outcome {
            output: String::new(),
            errors,
            exit_code: 2,
            raw_controls: false,
        }
    }
}

/// Polls once, reads the definitions, and writes the plan; with [`Format::Sql`], the
/// statements of `shard` (which may be left out when they all run on one shard).
pub async fn run(
    settings: Settings,
    format: Format,
    globs: Option<&ColumnGlobs>,
    shard: Option<&str>,
) -> anyhow::Result<Outcome> {
    if let Some(name) = shard
        && !settings.shards.iter().any(|s| s.name == name)
    {
        return Ok(Outcome::failed(format!(
            "headroom: --shard: no shard named {:?}\n",
            escape(name)
        )));
    }
    let settings = Arc::new(settings);
    let snapshot = Poller::snapshot_once(Arc::clone(&settings)).await?;
    let errors = snapshot.unreachable_errors();
    if !errors.is_empty() {
        return Ok(Outcome::failed(errors));
    }
    let entries = super::select(&snapshot, globs);
    let widenings: Vec<&Widening> = super::to_read(&entries);
    let found = match super::read(&settings, &widenings, None).await {
        Ok(found) => found,
        Err(e) => {
            return Ok(Outcome::failed(format!(
                "headroom: {}\n",
                escape(&e.to_string())
            )));
        }
    };
    let planned = super::write(&settings, &entries, &found);
    let rate = settings.plan.rebuild_mb_per_second;
    let (output, raw_controls) = match format {
        Format::Json => {
            let doc = json!({
                "generated_at": Utc::now(),
                "rebuild_mb_per_second": rate,
                "columns": planned,
            });
            (format!("{}\n", serde_json::to_string_pretty(&doc)?), false)
        }
        Format::Text => (text(&planned, rate), false),
        Format::Sql => match sql(&planned, shard, &|name| engine_of(&settings, name)) {
            Ok(sql) => (sql.text, sql.raw_controls),
            Err(e) => return Ok(Outcome::failed(format!("headroom: {e}\n"))),
        },
    };
    Ok(Outcome {
        output,
        errors: String::new(),
        exit_code: 0,
        raw_controls,
    })
}

/// The engine of the shard named `name`, if configured.
fn engine_of(settings: &Settings, name: &str) -> Option<Engine> {
    settings
        .shards
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| Engine::of(&s.endpoint.url))
}

/// `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One change for people; `database` names the database it is in (PostgreSQL).
fn change_text(out: &mut String, c: &Change, database: Option<&str>, rate: u64) {
    let name = match database {
        Some(database) => format!("{database}.{}.{}.{}", c.schema, c.table, c.column),
        None => format!("{}.{}.{}", c.schema, c.table, c.column),
    };
    let _ = writeln!(
        out,
        "   {} {}: {} -> {}",
        escape(&c.shard),
        escape(&name),
        escape(&c.from_type),
        c.to_type
    );
    if let (Some(size), Some(secs)) = (&c.table_size, c.rebuild_seconds_estimate) {
        let _ = writeln!(
            out,
            "     table: {} rows, {} bytes data+index, {}; rebuilds the table: {} at {rate} MiB/s",
            grouped(size.rows),
            grouped(size.bytes()),
            if size.engine.is_empty() {
                "engine unknown".to_string()
            } else {
                escape(&size.engine).into_owned()
            },
            crate::growth::humanize(secs.max(1)),
        );
    }
    for line in [&c.statement, &c.gh_ost, &c.pt_online_schema_change]
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "     {}", escape(line));
    }
    if let Some(note) = &c.note {
        let _ = writeln!(out, "     note: {}", escape(note));
    }
}

/// A plan's PostgreSQL part for people: its statements, each in its database, then each
/// change's online steps.
fn postgres_text(out: &mut String, p: &Planned) {
    if !p.plan.foreign_keys.is_empty() {
        let _ = writeln!(
            out,
            "   {} foreign key(s) hold these columns: PostgreSQL keeps them through the change \
             and checks them again",
            p.plan.foreign_keys.len()
        );
    }
    let place = |c: &PostgresChange| format!("{}/{}", escape(&c.shard), escape(&c.database));
    if p.plan.postgres.iter().any(|c| !c.statements.is_empty()) {
        let _ = writeln!(out, "   run in this order, each in its database:");
        let mut seen: Vec<(&str, &str, &str)> = Vec::new();
        for c in &p.plan.postgres {
            for statement in &c.statements {
                let key = (c.shard.as_str(), c.database.as_str(), statement.as_str());
                if !seen.contains(&key) {
                    seen.push(key);
                    let _ = writeln!(out, "     {}: {}", place(c), escape(statement));
                }
            }
        }
    }
    for c in &p.plan.postgres {
        let name = format!("{}.{}.{}", c.schema, c.table, c.column);
        if !c.online_steps.is_empty() {
            let _ = writeln!(
                out,
                "   online instead, for {} {} (no long lock; in order, in autocommit mode):",
                place(c),
                escape(&name)
            );
            for step in &c.online_steps {
                let _ = writeln!(out, "     {}", escape(step));
            }
        } else if let Some(note) = &c.online_note {
            let _ = writeln!(
                out,
                "   no online steps for {} {}: {}",
                place(c),
                escape(&name),
                escape(note)
            );
        }
    }
}

/// The plan for people.
pub fn text(planned: &[Planned], rate: u64) -> String {
    let mut out = String::new();
    if planned.is_empty() {
        out.push_str("No column at warning or worse or mismatched: nothing to widen.\n");
        return out;
    }
    for (i, p) in planned.iter().enumerate() {
        let c = &p.column;
        let _ = writeln!(
            out,
            "{}. {} {} {} ({}): {}",
            i + 1,
            escape(&c.shard),
            escape(&c.name()),
            escape(&c.column_type),
            c.status,
            escape(&p.plan.reason)
        );
        let runs_out = c
            .exhausts_at()
            .map_or_else(|| "-".to_string(), |t| t.to_rfc3339());
        let _ = writeln!(
            out,
            "   runs out: {runs_out}; target: {}",
            p.plan.target_type
        );
        if let Some(same) = &p.plan.same_as {
            let _ = writeln!(out, "   widens with {} (above)\n", escape(same));
            continue;
        }
        if p.plan.changes.is_empty() {
            let _ = writeln!(out, "   nothing wider exists: it cannot be widened");
        }
        // The PostgreSQL changes' databases, in the changes' order.
        let mut databases = p.plan.postgres.iter().peekable();
        for change in &p.plan.changes {
            let database = databases
                .next_if(|d| {
                    (&d.shard, &d.schema, &d.table, &d.column)
                        == (&change.shard, &change.schema, &change.table, &change.column)
                })
                .map(|d| d.database.as_str());
            change_text(&mut out, change, database, rate);
        }
        if !p.plan.postgres.is_empty() {
            postgres_text(&mut out, p);
        } else if !p.plan.foreign_keys.is_empty() {
            let _ = writeln!(
                out,
                "   {} foreign key(s) hold these columns: run in this order",
                p.plan.foreign_keys.len()
            );
            for step in &p.plan.steps {
                let _ = writeln!(
                    out,
                    "     {}: {}",
                    escape(&step.shard),
                    escape(&step.statement)
                );
            }
        }
        out.push('\n');
    }
    out
}

/// The plan as a SQL file (see [`sql`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql {
    pub text: String,
    /// A statement holds a character a terminal would act on.
    pub raw_controls: bool,
}

/// The shards that `planned` has statements or changes on, in order.
fn shards_of(planned: &[Planned]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let on = planned.iter().flat_map(|p| {
        let steps = p.plan.steps.iter().map(|s| s.shard.as_str());
        steps.chain(p.plan.changes.iter().map(|c| c.shard.as_str()))
    });
    for shard in on {
        if !out.contains(&shard) {
            out.push(shard);
        }
    }
    out
}

/// The statements to run on `shard`, in order, each ending in `;` on a line of its own:
/// for each column planned in full (not `same_as`), a `--` comment naming it, its `steps`
/// on that shard (the foreign keys dropped, the columns widened, the keys added again), and
/// a comment for each of its changes there that has no statement, with why. Statements hold
/// names exactly; comments hold them escaped ([`escape`]), so that no line end in a name
/// can end a comment and start a statement. `shard` may be `None` when every statement
/// runs on one shard; `Err` when they run on several. A shard whose engine (`engine_of`)
/// is PostgreSQL gets a psql script ([`postgres_sql`]). Pure.
pub fn sql(
    planned: &[Planned],
    shard: Option<&str>,
    engine_of: &dyn Fn(&str) -> Option<Engine>,
) -> Result<Sql, String> {
    let shards = shards_of(planned);
    let shard = match (shard, shards.as_slice()) {
        (Some(s), _) => Some(s),
        (None, []) => None,
        (None, [one]) => Some(*one),
        (None, many) => {
            let names: Vec<String> = many.iter().map(|s| escape(s).into_owned()).collect();
            return Err(format!(
                "the plan's statements run on {} shards ({}): write one file for each with \
                 --shard NAME",
                many.len(),
                names.join(", ")
            ));
        }
    };
    let mut out = String::new();
    let mut raw_controls = false;
    let Some(shard) = shard else {
        out.push_str("-- No column at warning or worse or mismatched: nothing to widen.\n");
        return Ok(Sql {
            text: out,
            raw_controls,
        });
    };
    if engine_of(shard) == Some(Engine::Postgres) {
        return Ok(postgres_sql(planned, shard));
    }
    let _ = writeln!(
        out,
        "-- headroom plan: the statements to run on shard {}, in order.\n\
         -- Run them all with the mariadb client, which stops at the first error.",
        escape(shard)
    );
    let mut written = 0;
    for p in planned.iter().filter(|p| p.plan.same_as.is_none()) {
        let steps: Vec<&str> = p
            .plan
            .steps
            .iter()
            .filter(|s| s.shard == shard)
            .map(|s| s.statement.as_str())
            .collect();
        let unwritten = unwritten_on(p, shard);
        if steps.is_empty() && unwritten.is_empty() {
            continue;
        }
        written += 1;
        column_header(&mut out, written, p);
        for statement in steps {
            raw_controls |= !crate::escape::terminal_safe(statement);
            let _ = writeln!(out, "{statement};");
        }
        unwritten_sql(&mut out, unwritten);
    }
    if written == 0 {
        out.push_str("\n-- Nothing to widen on this shard.\n");
    }
    Ok(Sql {
        text: out,
        raw_controls,
    })
}

/// The changes of `p` on `shard` that have no statement.
fn unwritten_on<'a>(p: &'a Planned, shard: &str) -> Vec<&'a Change> {
    p.plan
        .changes
        .iter()
        .filter(|c| c.shard == shard && c.statement.is_none())
        .collect()
}

/// The comment that opens the `n`th column's statements: its name (escaped), status and
/// target type.
fn column_header(out: &mut String, n: usize, p: &Planned) {
    let c = &p.column;
    let _ = writeln!(
        out,
        "\n-- {n}. {} ({}): to {}",
        escape(&c.name()),
        c.status,
        p.plan.target_type
    );
}

/// A comment for each change that has no statement, with why.
fn unwritten_sql(out: &mut String, unwritten: Vec<&Change>) {
    for change in unwritten {
        let name = format!("{}.{}.{}", change.schema, change.table, change.column);
        let _ = writeln!(
            out,
            "-- not written: {}: {}",
            escape(&name),
            escape(change.note.as_deref().unwrap_or("no statement"))
        );
    }
}

/// `text` as one argument of a psql meta-command: single-quoted, a quote doubled, a
/// backslash and every control character escaped (a meta-command ends at its line's end).
fn psql_argument(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\{:03o}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The psql meta-command that connects to `database` on the same server, as the same
/// user: a connection string (so that no name can be read as a host or an option), its
/// value quoted for libpq; the whole in double quotes, which psql strips from the
/// database argument as from an identifier (a double quote inside doubled); and that as
/// one single-quoted psql argument.
pub fn psql_connect(database: &str) -> String {
    let value = database.replace('\\', "\\\\").replace('\'', "\\'");
    let conninfo = format!("dbname='{value}'");
    format!(
        "\\connect -reuse-previous=on {}",
        psql_argument(&format!("\"{}\"", conninfo.replace('"', "\"\"")))
    )
}

/// The psql script of `shard`, a PostgreSQL shard: `ON_ERROR_STOP`, then for each column
/// planned in full its statements there, each database's after a `\connect` to it (a
/// statement written once per database), and a comment for each change without one.
fn postgres_sql(planned: &[Planned], shard: &str) -> Sql {
    let mut out = String::new();
    let mut raw_controls = false;
    let _ = writeln!(
        out,
        "-- headroom plan: the statements to run on shard {}, in order, each in its database.\n\
         -- Run them all with psql -f, which stops at the first error (ON_ERROR_STOP).\n\
         -- Each statement commits on its own; the foreign keys stay in place throughout.\n\
         \\set ON_ERROR_STOP on",
        escape(shard)
    );
    let mut written = 0;
    let mut current: Option<&str> = None;
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for p in planned.iter().filter(|p| p.plan.same_as.is_none()) {
        let changes: Vec<&PostgresChange> = p
            .plan
            .postgres
            .iter()
            .filter(|c| c.shard == shard && !c.statements.is_empty())
            .collect();
        let unwritten = unwritten_on(p, shard);
        if changes.is_empty() && unwritten.is_empty() {
            continue;
        }
        written += 1;
        column_header(&mut out, written, p);
        for change in changes {
            if current != Some(change.database.as_str()) {
                current = Some(&change.database);
                let connect = psql_connect(&change.database);
                raw_controls |= !crate::escape::terminal_safe(&connect);
                let _ = writeln!(out, "{connect}");
            }
            for statement in &change.statements {
                if seen.contains(&(change.database.as_str(), statement.as_str())) {
                    continue;
                }
                seen.push((&change.database, statement));
                raw_controls |= !crate::escape::terminal_safe(statement);
                let _ = writeln!(out, "{statement};");
            }
        }
        unwritten_sql(&mut out, unwritten);
    }
    if written == 0 {
        out.push_str("\n-- Nothing to widen on this shard.\n");
    }
    Sql {
        text: out,
        raw_controls,
    }
}

#[cfg(test)]
mod tests;
