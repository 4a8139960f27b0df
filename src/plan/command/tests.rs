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
    let widen =
        "ALTER TABLE `app`.`or\\d``ers\n\u{1}DROP TABLE x; -- ` MODIFY COLUMN `id` BIGINT NOT NULL";
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
