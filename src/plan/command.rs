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
        let unwritten: Vec<&Change> = p
            .plan
            .changes
            .iter()
            .filter(|c| c.shard == shard && c.statement.is_none())
            .collect();
        if steps.is_empty() && unwritten.is_empty() {
            continue;
        }
        written += 1;
        let c = &p.column;
        let _ = writeln!(
            out,
            "\n-- {written}. {} ({}): to {}",
            escape(&c.name()),
            c.status,
            p.plan.target_type
        );
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
        let unwritten: Vec<&Change> = p
            .plan
            .changes
            .iter()
            .filter(|c| c.shard == shard && c.statement.is_none())
            .collect();
        if changes.is_empty() && unwritten.is_empty() {
            continue;
        }
        written += 1;
        let c = &p.column;
        let _ = writeln!(
            out,
            "\n-- {written}. {} ({}): to {}",
            escape(&c.name()),
            c.status,
            p.plan.target_type
        );
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
mod tests {

    use super::*;
    use crate::headroom::{IntType, Width};
    use crate::inventory::ColumnId;
    use crate::measure::ColumnReport;
    use crate::plan::{ColumnPlan, Step};

    /// Every shard is a MySQL one.
    const MYSQL: fn(&str) -> Option<Engine> = |_| Some(Engine::Mysql);

    /// A table named to end a `--` comment and start a statement of its own.
    const TABLE: &str = "or\\d`ers\n\u{1}DROP TABLE x; -- ";

    fn report(shard: &str, table: &str) -> ColumnReport {
        let id = ColumnId::new("app", table, "id");
        let int = IntType::new(Width::Int, false);
        crate::measure::fixture::column(shard, id, int, 2_104_533_975).build()
    }

    fn change(shard: &str, table: &str, statement: Option<&str>, note: Option<&str>) -> Change {
        Change {
            shard: shard.to_string(),
            schema: "app".to_string(),
            table: table.to_string(),
            column: "id".to_string(),
            host: "db".to_string(),
            port: 3306,
            from_type: "int(11)".to_string(),
            to_type: "BIGINT".to_string(),
            definition: None,
            table_size: None,
            statement: statement.map(str::to_string),
            gh_ost: None,
            pt_online_schema_change: None,
            rebuilds: true,
            rebuild_seconds_estimate: None,
            note: note.map(str::to_string),
        }
    }

    fn planned(column: ColumnReport, changes: Vec<Change>, steps: &[(&str, &str)]) -> Planned {
        Planned {
            column,
            plan: ColumnPlan {
                target_type: "BIGINT".to_string(),
                reason: "critical".to_string(),
                changes,
                foreign_keys: Vec::new(),
                steps: steps
                    .iter()
                    .map(|(shard, statement)| Step {
                        shard: shard.to_string(),
                        statement: statement.to_string(),
                    })
                    .collect(),
                same_as: None,
                postgres: Vec::new(),
            },
        }
    }

    /// Shard `a`: the hostile table's key dropped, two columns widened, the key added
    /// again; a generated column with no statement; and a second column of the same group
    /// (`same_as`), which adds nothing.
    fn plan() -> Vec<Planned> {
        let drop = "ALTER TABLE `app`.`c` DROP FOREIGN KEY `k`";
        let widen = format!(
            "ALTER TABLE `app`.`{}` MODIFY COLUMN `id` BIGINT NOT NULL",
            TABLE.replace('`', "``")
        );
        let child = "ALTER TABLE `app`.`c` MODIFY COLUMN `p` BIGINT NULL";
        let add = "ALTER TABLE `app`.`c` ADD CONSTRAINT `k` FOREIGN KEY (`p`) REFERENCES `app`.`t` (`id`) ON DELETE CASCADE ON UPDATE RESTRICT";
        let first = planned(
            report("a", TABLE),
            vec![
                change("a", TABLE, Some(&widen), None),
                change("a", "g\nDROP", None, Some("a generated column:\nby hand")),
            ],
            &[("a", drop), ("a", &widen), ("a", child), ("a", add)],
        );
        let mut second = planned(report("a", "c"), Vec::new(), &[]);
        second.plan.same_as = Some("a/app.t.id".to_string());
        vec![first, second]
    }

    #[test]
    fn the_sql_is_the_steps_in_order_with_every_name_in_a_comment_escaped() {
        let got = sql(&plan(), None, &MYSQL).expect("one shard");
        let widen = "ALTER TABLE `app`.`or\\d``ers\n\u{1}DROP TABLE x; -- ` MODIFY COLUMN `id` BIGINT NOT NULL";
        let expected = format!(
            "-- headroom plan: the statements to run on shard a, in order.\n\
             -- Run them all with the mariadb client, which stops at the first error.\n\
             \n\
             -- 1. app.or\\\\d`ers\\n\\u{{1}}DROP TABLE x; -- .id (critical): to BIGINT\n\
             ALTER TABLE `app`.`c` DROP FOREIGN KEY `k`;\n\
             {widen};\n\
             ALTER TABLE `app`.`c` MODIFY COLUMN `p` BIGINT NULL;\n\
             ALTER TABLE `app`.`c` ADD CONSTRAINT `k` FOREIGN KEY (`p`) REFERENCES `app`.`t` (`id`) ON DELETE CASCADE ON UPDATE RESTRICT;\n\
             -- not written: app.g\\nDROP.id: a generated column:\\nby hand\n"
        );
        assert_eq!(got.text, expected);
        assert!(got.raw_controls, "the name's \\u{{1}} is written exactly");
        // Every line is a comment, or part of a statement: no name starts a line of its
        // own outside a statement.
        let statements = got
            .text
            .lines()
            .filter(|l| !l.starts_with("--") && !l.is_empty());
        assert_eq!(
            statements.collect::<Vec<_>>().len(),
            5,
            "four statements, one over two lines"
        );
    }

    #[test]
    fn the_sql_without_a_control_character_may_go_to_a_terminal() {
        let mut p = plan();
        p[0].plan.steps.retain(|s| !s.statement.contains('\n'));
        let got = sql(&p, Some("a"), &MYSQL).expect("shard a");
        assert!(!got.raw_controls);
        assert_eq!(got.text.matches(";\n").count(), 3);
    }

    #[test]
    fn the_sql_of_a_plan_on_several_shards_needs_one_named() {
        let mut p = plan();
        p[0].plan.steps.push(Step {
            shard: "b\nx".to_string(),
            statement: "ALTER TABLE `app`.`t` MODIFY COLUMN `id` BIGINT NOT NULL".to_string(),
        });
        assert_eq!(
            sql(&p, None, &MYSQL),
            Err(
                "the plan's statements run on 2 shards (a, b\\nx): write one file for each \
                 with --shard NAME"
                    .to_string()
            )
        );
        let b = sql(&p, Some("b\nx"), &MYSQL).expect("shard b");
        assert_eq!(
            b.text,
            "-- headroom plan: the statements to run on shard b\\nx, in order.\n\
             -- Run them all with the mariadb client, which stops at the first error.\n\
             \n\
             -- 1. app.or\\\\d`ers\\n\\u{1}DROP TABLE x; -- .id (critical): to BIGINT\n\
             ALTER TABLE `app`.`t` MODIFY COLUMN `id` BIGINT NOT NULL;\n"
        );
        assert!(!b.raw_controls);
    }

    #[test]
    fn the_sql_of_an_empty_plan_says_so_in_a_comment() {
        assert_eq!(
            sql(&[], None, &MYSQL).map(|s| s.text),
            Ok("-- No column at warning or worse or mismatched: nothing to widen.\n".to_string())
        );
        assert_eq!(
            sql(&[], Some("a"), &MYSQL).map(|s| s.text),
            Ok(
                "-- headroom plan: the statements to run on shard a, in order.\n\
                -- Run them all with the mariadb client, which stops at the first error.\n\
                \n\
                -- Nothing to widen on this shard.\n"
                    .to_string()
            )
        );
    }

    /// The database `psql` connects to for a `\connect` line as [`psql_connect`] writes
    /// it: the argument as psql reads a single-quoted option (`''`, and `\` escapes: `\n`,
    /// `\t`, `\b`, `\r`, `\f`, up to three octal digits, any other character as itself),
    /// then stripped of double quotes as psql strips the database argument (`""` inside
    /// them one quote), then the connection string's `dbname` as libpq reads a quoted value
    /// (`\` escapes the next character). `None` when the line is not one such command.
    fn as_psql_reads(line: &str) -> Option<String> {
        let arg = line.strip_prefix("\\connect -reuse-previous=on ")?;
        let chars: Vec<char> = arg.chars().collect();
        if chars.first() != Some(&'\'') || chars.iter().any(char::is_ascii_control) {
            return None;
        }
        let mut read = String::new();
        let mut i = 1;
        loop {
            match chars.get(i)? {
                '\'' if chars.get(i + 1) == Some(&'\'') => {
                    read.push('\'');
                    i += 2;
                }
                '\'' => break,
                '\\' => {
                    let next = *chars.get(i + 1)?;
                    let octal: String = chars[i + 1..]
                        .iter()
                        .take(3)
                        .take_while(|c| c.is_digit(8))
                        .collect();
                    if !octal.is_empty() {
                        read.push(char::from_u32(u32::from_str_radix(&octal, 8).ok()?)?);
                        i += 1 + octal.len();
                        continue;
                    }
                    read.push(match next {
                        'n' => '\n',
                        't' => '\t',
                        'b' => '\u{8}',
                        'r' => '\r',
                        'f' => '\u{c}',
                        c => c,
                    });
                    i += 2;
                }
                c => {
                    read.push(*c);
                    i += 1;
                }
            }
        }
        if i + 1 != chars.len() {
            return None;
        }
        // Double quotes stripped, as from an identifier.
        let mut dequoted = String::new();
        let mut quoted = false;
        let mut it = read.chars().peekable();
        while let Some(c) = it.next() {
            if c == '"' {
                if quoted && it.peek() == Some(&'"') {
                    it.next();
                    dequoted.push('"');
                } else {
                    quoted = !quoted;
                }
            } else {
                dequoted.push(c);
            }
        }
        // libpq's quoted value.
        let value = dequoted.strip_prefix("dbname='")?.strip_suffix('\'')?;
        let mut out = String::new();
        let mut it = value.chars();
        while let Some(c) = it.next() {
            match c {
                '\\' => out.push(it.next()?),
                '\'' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    #[test]
    fn a_connect_line_names_the_database_whatever_it_holds() {
        let line = psql_connect("leg'acy \"{db}\" \\x\n");
        assert_eq!(
            line,
            "\\connect -reuse-previous=on '\"dbname=''leg\\\\''acy \"\"{db}\"\" \\\\\\\\x\\012''\"'"
        );
        assert_eq!(
            as_psql_reads(&line).as_deref(),
            Some("leg'acy \"{db}\" \\x\n")
        );
    }

    proptest::proptest! {
        #[test]
        fn hostile_database_names_reach_psql_and_libpq_exactly(
            name in crate::postgres::sql_lexer::hostile_ident(),
        ) {
            let line = psql_connect(&name);
            proptest::prop_assert!(!line.contains('\n'), "{line}");
            proptest::prop_assert_eq!(as_psql_reads(&line), Some(name));
        }
    }

    /// A plan on PostgreSQL shard `pg`: a column of `app` and its child, widened with
    /// their sequence, a change in a hostile database that only widens a sequence, and a
    /// change with no statement.
    fn postgres_plan() -> Vec<Planned> {
        let id = ColumnId::in_database(
            Some("app".into()),
            "public".to_string(),
            "users".to_string(),
            "id".to_string(),
        );
        let int = IntType::new(Width::Int, false);
        let column = crate::measure::fixture::column("pg", id, int, 2_104_533_975).build();
        let entry = |database: &str, table: &str, statements: &[&str]| PostgresChange {
            shard: "pg".to_string(),
            database: database.to_string(),
            schema: "public".to_string(),
            table: table.to_string(),
            column: "id".to_string(),
            statements: statements.iter().map(|s| s.to_string()).collect(),
            online_steps: Vec::new(),
            online_note: None,
        };
        let users = "ALTER TABLE \"public\".\"users\" ALTER COLUMN \"id\" TYPE bigint";
        let seq = "ALTER SEQUENCE \"public\".\"users_id_seq\" AS bigint";
        let orders = "ALTER TABLE \"public\".\"orders\" ALTER COLUMN \"id\" TYPE bigint";
        let mut p = planned(
            column,
            vec![
                change("pg", "users", Some(users), None),
                change("pg", "orders", Some(orders), None),
                change("pg", "legacy", Some(seq), None),
                change("pg", "g\nx", None, Some("a generated column")),
            ],
            &[("pg", users), ("pg", seq), ("pg", orders), ("pg", seq)],
        );
        p.plan.postgres = vec![
            entry("app", "users", &[users, seq]),
            entry("app", "orders", &[orders]),
            entry("o'ther\n", "legacy", &[seq]),
            entry("app", "g\nx", &[]),
        ];
        vec![p]
    }

    #[test]
    fn the_sql_of_a_postgresql_shard_is_a_psql_script_connecting_to_each_database() {
        let pg = |_: &str| Some(Engine::Postgres);
        let got = sql(&postgres_plan(), None, &pg).expect("one shard");
        assert_eq!(
            got.text,
            "-- headroom plan: the statements to run on shard pg, in order, each in its database.\n\
             -- Run them all with psql -f, which stops at the first error (ON_ERROR_STOP).\n\
             -- Each statement commits on its own; the foreign keys stay in place throughout.\n\
             \\set ON_ERROR_STOP on\n\
             \n\
             -- 1. app.public.users.id (critical): to BIGINT\n\
             \\connect -reuse-previous=on '\"dbname=''app''\"'\n\
             ALTER TABLE \"public\".\"users\" ALTER COLUMN \"id\" TYPE bigint;\n\
             ALTER SEQUENCE \"public\".\"users_id_seq\" AS bigint;\n\
             ALTER TABLE \"public\".\"orders\" ALTER COLUMN \"id\" TYPE bigint;\n\
             \\connect -reuse-previous=on '\"dbname=''o\\\\''ther\\012''\"'\n\
             ALTER SEQUENCE \"public\".\"users_id_seq\" AS bigint;\n\
             -- not written: app.g\\nx.id: a generated column\n"
        );
        assert!(!got.raw_controls);
        let empty = sql(&[], Some("pg"), &pg).expect("shard pg");
        assert!(
            empty
                .text
                .ends_with("\\set ON_ERROR_STOP on\n\n-- Nothing to widen on this shard.\n")
        );
    }
}
