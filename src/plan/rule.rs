//! The pure rules of a widening: which type a column widens to, the `MODIFY` clause that
//! keeps every other attribute of its definition, the `ALTER TABLE` and the equivalent
//! `gh-ost` and `pt-online-schema-change` commands, and the rebuild estimate. No I/O.
//!
//! # The target type
//! A group of columns that must widen together (see [`super::related`]) needs one value
//! range, `need`: the largest of every member's own maximum, the maximum of each member's
//! parent or source when the member is narrower than it, and, for a member at warning or
//! worse, the maximum of its [`widened`] type. Each member then takes [`holding`]: the
//! narrowest integer type of its own signedness whose maximum reaches `need`, or BIGINT
//! UNSIGNED when no type of its signedness does (a signed column under a BIGINT UNSIGNED
//! parent). So a column is never narrowed, keeps its signedness unless only UNSIGNED can
//! hold its parent's values, and is at least as wide as its parent afterwards.
//!
//! A column running out widens straight to BIGINT (UNSIGNED if it was): each step in
//! between buys only 256 times the room for a second rebuild of the same table, which is
//! what Etsy's second outage was. A signed BIGINT running out becomes BIGINT UNSIGNED; a
//! BIGINT UNSIGNED has nothing wider.
//!
//! # Attributes
//! `MODIFY` replaces the whole column definition, so every attribute is written again:
//! NULL/NOT NULL, DEFAULT, AUTO_INCREMENT, ZEROFILL (UNSIGNED comes with the target type),
//! INVISIBLE and COMMENT. Integer columns have no character set or collation, so none is
//! written. Text from the server (the comment, a default) is written as a SQL string
//! literal: quotes doubled, backslashes and control characters escaped, which is exact
//! under the default `sql_mode` and still cannot end the literal early under
//! `NO_BACKSLASH_ESCAPES`.

use crate::headroom::{IntType, Width};
use crate::mysql as db;
use serde::Serialize;

/// A declared foreign key, whole: InnoDB refuses to change the type of a column in one,
/// even with `foreign_key_checks` off, so a widening drops it first and adds it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ForeignKey {
    /// `CONSTRAINT_NAME`.
    pub name: String,
    /// The child table's schema and name.
    pub schema: String,
    pub table: String,
    /// The child's columns, in order.
    pub columns: Vec<String>,
    /// The parent table's schema and name.
    pub parent_schema: String,
    pub parent_table: String,
    /// The parent's columns, in order.
    pub parent_columns: Vec<String>,
    /// `ON UPDATE` and `ON DELETE`, e.g. `CASCADE`, `RESTRICT`.
    pub on_update: String,
    pub on_delete: String,
}

/// The type a column running out widens to; `None` for BIGINT UNSIGNED.
pub fn widened(from: IntType) -> Option<IntType> {
    match (from.width, from.unsigned) {
        (Width::Big, true) => None,
        (Width::Big, false) => Some(IntType::new(Width::Big, true)),
        (_, unsigned) => Some(IntType::new(Width::Big, unsigned)),
    }
}

/// The narrowest type of `from`'s signedness, never narrower than `from`, whose maximum is
/// at least `need`; BIGINT UNSIGNED when no such type exists.
pub fn holding(from: IntType, need: u64) -> IntType {
    [
        Width::Tiny,
        Width::Small,
        Width::Medium,
        Width::Int,
        Width::Big,
    ]
    .into_iter()
    .filter(|w| *w >= from.width)
    .map(|w| IntType::new(w, from.unsigned))
    .find(|t| t.max() >= need)
    .unwrap_or(IntType::new(Width::Big, true))
}

/// A column's definition as information_schema.COLUMNS gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Definition {
    /// `COLUMN_TYPE`, e.g. `int(10) unsigned zerofill`.
    pub column_type: String,
    /// `IS_NULLABLE = 'YES'`.
    pub nullable: bool,
    /// `COLUMN_DEFAULT` as the server writes it: `None` for no default; MariaDB writes a
    /// NULL default as the text `NULL` and quotes string literals.
    pub default: Option<String>,
    /// `EXTRA`, e.g. `auto_increment`, `INVISIBLE`, `VIRTUAL GENERATED`.
    pub extra: String,
    /// `COLUMN_COMMENT`; empty for none.
    pub comment: String,
}

impl Definition {
    /// Whether it is its table's AUTO_INCREMENT column.
    pub fn auto_increment(&self) -> bool {
        self.extra.to_ascii_lowercase().contains("auto_increment")
    }

    /// Whether it is a generated column, whose expression information_schema.COLUMNS does
    /// not give in full on every server: such a column is left to be widened by hand.
    pub fn generated(&self) -> bool {
        let extra = self.extra.to_ascii_uppercase();
        ["GENERATED", "VIRTUAL", "PERSISTENT", "STORED"]
            .iter()
            .any(|w| extra.split_whitespace().any(|x| x == *w))
            && !extra.contains("DEFAULT_GENERATED")
    }

    fn zerofill(&self) -> bool {
        self.column_type.to_ascii_lowercase().contains("zerofill")
    }

    fn invisible(&self) -> bool {
        self.extra
            .to_ascii_uppercase()
            .split_whitespace()
            .any(|w| w == "INVISIBLE")
    }
}

/// A string as a SQL string literal (see the module documentation).
pub fn sql_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The DEFAULT clause for a server's COLUMN_DEFAULT text: a whole number as it is, the
/// NULL default as `NULL`, anything else as a string literal.
fn default_clause(default: &str, nullable: bool) -> String {
    let trimmed = default.trim();
    if trimmed.parse::<i128>().is_ok() {
        return format!(" DEFAULT {trimmed}");
    }
    if nullable && trimmed.eq_ignore_ascii_case("NULL") {
        return " DEFAULT NULL".to_string();
    }
    // MariaDB quotes a literal default: '5'; the text between is a literal with quotes
    // doubled.
    let inner = match trimmed
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
    {
        Some(inner) => inner.replace("''", "'"),
        None => default.to_string(),
    };
    format!(" DEFAULT {}", sql_string(&inner))
}

/// The column definition after `MODIFY COLUMN name`: `target` with every attribute of
/// `definition` kept.
pub fn column_definition(target: IntType, definition: &Definition) -> String {
    let mut out = target.width.sql_name().to_ascii_uppercase();
    if target.unsigned {
        out.push_str(" UNSIGNED");
    }
    if definition.zerofill() {
        out.push_str(" ZEROFILL");
    }
    out.push_str(if definition.nullable {
        " NULL"
    } else {
        " NOT NULL"
    });
    if let Some(default) = &definition.default
        && !definition.auto_increment()
    {
        out.push_str(&default_clause(default, definition.nullable));
    }
    if definition.auto_increment() {
        out.push_str(" AUTO_INCREMENT");
    }
    if definition.invisible() {
        out.push_str(" INVISIBLE");
    }
    if !definition.comment.is_empty() {
        out.push_str(" COMMENT ");
        out.push_str(&sql_string(&definition.comment));
    }
    out
}

/// `MODIFY COLUMN …`: the `--alter` text of the online schema change tools.
pub fn modify(column: &str, target: IntType, definition: &Definition) -> String {
    format!(
        "MODIFY COLUMN {} {}",
        db::ident(column),
        column_definition(target, definition)
    )
}

/// `ALTER TABLE schema.table MODIFY COLUMN …`.
pub fn alter(
    schema: &str,
    table: &str,
    column: &str,
    target: IntType,
    definition: &Definition,
) -> String {
    format!(
        "ALTER TABLE {} {}",
        db::qualified(schema, table),
        modify(column, target, definition)
    )
}

/// The referential actions MySQL and MariaDB accept; anything else read is written as
/// `RESTRICT`, the default, rather than copied into a statement.
fn action(rule: &str) -> &'static str {
    match rule.trim().to_ascii_uppercase().as_str() {
        "CASCADE" => "CASCADE",
        "SET NULL" => "SET NULL",
        "NO ACTION" => "NO ACTION",
        "SET DEFAULT" => "SET DEFAULT",
        _ => "RESTRICT",
    }
}

fn idents(names: &[String]) -> String {
    names
        .iter()
        .map(|n| db::ident(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ALTER TABLE child DROP FOREIGN KEY name`.
pub fn drop_foreign_key(fk: &ForeignKey) -> String {
    format!(
        "ALTER TABLE {} DROP FOREIGN KEY {}",
        db::qualified(&fk.schema, &fk.table),
        db::ident(&fk.name)
    )
}

/// `ALTER TABLE child ADD CONSTRAINT name FOREIGN KEY (…) REFERENCES parent (…) …`.
pub fn add_foreign_key(fk: &ForeignKey) -> String {
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {}",
        db::qualified(&fk.schema, &fk.table),
        db::ident(&fk.name),
        idents(&fk.columns),
        db::qualified(&fk.parent_schema, &fk.parent_table),
        idents(&fk.parent_columns),
        action(&fk.on_delete),
        action(&fk.on_update),
    )
}

/// One word for a POSIX shell: single-quoted, each `'` written as `'\''`.
pub fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Where a table lives, for the online schema change tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub schema: &'a str,
    pub table: &'a str,
}

/// The `gh-ost` command (add the credentials; `--execute` makes the change, without it
/// gh-ost only checks).
pub fn gh_ost(at: &Target<'_>, modify: &str) -> String {
    format!(
        "gh-ost --host={} --port={} --database={} --table={} --alter={} --execute",
        shell_word(at.host),
        at.port,
        shell_word(at.schema),
        shell_word(at.table),
        shell_word(modify)
    )
}

/// The `pt-online-schema-change` command (add the credentials; `--dry-run` first). `None`
/// when a name holds `,` or `=`, which its DSN syntax cannot carry.
pub fn pt_online_schema_change(at: &Target<'_>, modify: &str) -> Option<String> {
    let fields = [at.host, at.schema, at.table];
    if fields.iter().any(|f| f.contains([',', '='])) {
        return None;
    }
    let dsn = format!("h={},P={},D={},t={}", at.host, at.port, at.schema, at.table);
    Some(format!(
        "pt-online-schema-change --alter={} --execute {}",
        shell_word(modify),
        shell_word(&dsn)
    ))
}

/// Seconds to copy `bytes` (data and indexes) at `mb_per_second` MiB/s, rounded up.
pub fn rebuild_seconds(bytes: u64, mb_per_second: u64) -> u64 {
    let rate = mb_per_second.max(1).saturating_mul(1 << 20);
    bytes.div_ceil(rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::sql_lexer::{Token, tokens};

    fn t(width: Width, unsigned: bool) -> IntType {
        IntType::new(width, unsigned)
    }

    #[test]
    fn a_column_running_out_widens_to_bigint_keeping_its_signedness() {
        assert_eq!(widened(t(Width::Int, false)), Some(t(Width::Big, false)));
        assert_eq!(widened(t(Width::Int, true)), Some(t(Width::Big, true)));
        assert_eq!(widened(t(Width::Small, true)), Some(t(Width::Big, true)));
        assert_eq!(widened(t(Width::Big, false)), Some(t(Width::Big, true)));
        assert_eq!(widened(t(Width::Big, true)), None);
    }

    #[test]
    fn the_target_is_the_narrowest_type_of_the_same_signedness_that_holds_the_need() {
        let int_u = t(Width::Int, true).max();
        let big = t(Width::Big, false).max();
        // A signed INT under an INT UNSIGNED parent: signed BIGINT holds it.
        assert_eq!(holding(t(Width::Int, false), int_u), t(Width::Big, false));
        // An unsigned SMALLINT under an INT UNSIGNED parent: INT UNSIGNED, not BIGINT.
        assert_eq!(holding(t(Width::Small, true), int_u), t(Width::Int, true));
        // Under a signed BIGINT: an unsigned child becomes BIGINT UNSIGNED.
        assert_eq!(holding(t(Width::Int, true), big), t(Width::Big, true));
        // Only UNSIGNED holds a BIGINT UNSIGNED parent.
        assert_eq!(holding(t(Width::Int, false), u64::MAX), t(Width::Big, true));
        // Never narrowed.
        assert_eq!(holding(t(Width::Big, false), 10), t(Width::Big, false));
        assert_eq!(
            holding(t(Width::Medium, false), 8_388_607),
            t(Width::Medium, false)
        );
    }

    fn definition(nullable: bool, default: Option<&str>, extra: &str, comment: &str) -> Definition {
        Definition {
            column_type: "int(10) unsigned zerofill".to_string(),
            nullable,
            default: default.map(str::to_string),
            extra: extra.to_string(),
            comment: comment.to_string(),
        }
    }

    #[test]
    fn the_statement_keeps_every_attribute() {
        let d = definition(false, None, "auto_increment", "the key");
        assert_eq!(
            alter("shop", "users", "id", t(Width::Big, true), &d),
            "ALTER TABLE `shop`.`users` MODIFY COLUMN `id` BIGINT UNSIGNED ZEROFILL NOT NULL \
             AUTO_INCREMENT COMMENT 'the key'"
        );
        let d = Definition {
            column_type: "int(11)".to_string(),
            ..definition(false, Some("0"), "", "")
        };
        assert_eq!(
            modify("n", t(Width::Big, false), &d),
            "MODIFY COLUMN `n` BIGINT NOT NULL DEFAULT 0"
        );
        let d = Definition {
            column_type: "int(11)".to_string(),
            ..definition(true, Some("NULL"), "INVISIBLE", "")
        };
        assert_eq!(
            modify("n", t(Width::Big, false), &d),
            "MODIFY COLUMN `n` BIGINT NULL DEFAULT NULL INVISIBLE"
        );
        // MySQL: a nullable column without a default has COLUMN_DEFAULT NULL.
        let d = Definition {
            column_type: "int".to_string(),
            ..definition(true, None, "", "")
        };
        assert_eq!(
            modify("n", t(Width::Big, true), &d),
            "MODIFY COLUMN `n` BIGINT UNSIGNED NULL"
        );
    }

    const HOSTILE: &str = "it's a \\ back'slash\nnew line {table} `x` -- #";

    #[test]
    fn a_hostile_comment_and_default_stay_one_string_literal_each() {
        let d = Definition {
            column_type: "int".to_string(),
            ..definition(false, Some(HOSTILE), "", HOSTILE)
        };
        let sql = alter("s`", "{table}", "c'\n", t(Width::Big, false), &d);
        let toks = tokens(&sql).expect("well formed");
        let strings: Vec<&Token> = toks.iter().filter(|t| matches!(t, Token::Str(_))).collect();
        // The test lexer reads `\\n` as `n`: what matters is one literal, unbroken.
        let read = HOSTILE.replace('\n', "n");
        assert_eq!(strings, vec![&Token::Str(read.clone()), &Token::Str(read)]);
        assert!(toks.iter().all(|t| !matches!(t, Token::Comment(_))));
        assert!(toks.contains(&Token::Ident("s`".to_string())));
        assert!(toks.contains(&Token::Ident("{table}".to_string())));
        assert!(toks.contains(&Token::Ident("c'\n".to_string())));
        assert_eq!(sql.matches('\n').count(), 1, "only the name's own: {sql}");
        assert_eq!(
            sql_string("a'b\\c\nd"),
            "'a''b\\\\c\\nd'",
            "quotes doubled, backslash and newline escaped"
        );
    }

    #[test]
    fn a_quoted_mariadb_default_is_unquoted_once() {
        let d = Definition {
            column_type: "int".to_string(),
            ..definition(false, Some("'it''s'"), "", "")
        };
        assert_eq!(
            modify("c", t(Width::Big, false), &d),
            "MODIFY COLUMN `c` BIGINT NOT NULL DEFAULT 'it''s'"
        );
    }

    #[test]
    fn the_commands_quote_every_word_for_a_posix_shell() {
        let at = Target {
            host: "db-1",
            port: 3307,
            schema: "it's",
            table: "t $(rm)",
        };
        let m = "MODIFY COLUMN `c` BIGINT NOT NULL COMMENT 'o''k'";
        assert_eq!(
            gh_ost(&at, m),
            "gh-ost --host='db-1' --port=3307 --database='it'\\''s' --table='t $(rm)' \
             --alter='MODIFY COLUMN `c` BIGINT NOT NULL COMMENT '\\''o'\\'''\\''k'\\''' --execute"
        );
        assert_eq!(
            pt_online_schema_change(&at, "MODIFY COLUMN `c` BIGINT").as_deref(),
            Some(
                "pt-online-schema-change --alter='MODIFY COLUMN `c` BIGINT' --execute \
                 'h=db-1,P=3307,D=it'\\''s,t=t $(rm)'"
            )
        );
        let comma = Target { table: "a,b", ..at };
        assert_eq!(pt_online_schema_change(&comma, m), None);
    }

    #[test]
    fn a_foreign_key_is_dropped_and_added_again_whole_with_its_actions() {
        let fk = super::ForeignKey {
            name: "fk`{table}".to_string(),
            schema: "app".to_string(),
            table: "orders".to_string(),
            columns: vec!["user_id".to_string(), "shop_id".to_string()],
            parent_schema: "app".to_string(),
            parent_table: "users".to_string(),
            parent_columns: vec!["id".to_string(), "shop".to_string()],
            on_update: "CASCADE".to_string(),
            on_delete: "SET NULL; DROP TABLE x".to_string(),
        };
        assert_eq!(
            drop_foreign_key(&fk),
            "ALTER TABLE `app`.`orders` DROP FOREIGN KEY `fk``{table}`"
        );
        assert_eq!(
            add_foreign_key(&fk),
            "ALTER TABLE `app`.`orders` ADD CONSTRAINT `fk``{table}` FOREIGN KEY (`user_id`, \
             `shop_id`) REFERENCES `app`.`users` (`id`, `shop`) ON DELETE RESTRICT ON UPDATE CASCADE"
        );
    }

    #[test]
    fn the_rebuild_estimate_rounds_up_at_the_configured_rate() {
        assert_eq!(rebuild_seconds(0, 50), 0);
        assert_eq!(rebuild_seconds(1, 50), 1);
        assert_eq!(rebuild_seconds(50 << 20, 50), 1);
        assert_eq!(rebuild_seconds((50 << 20) + 1, 50), 2);
        assert_eq!(rebuild_seconds(10 << 30, 50), 205);
    }

    #[test]
    fn generated_columns_are_recognised_but_default_generated_is_not() {
        assert!(definition(false, None, "VIRTUAL GENERATED", "").generated());
        assert!(definition(false, None, "PERSISTENT", "").generated());
        assert!(!definition(false, None, "DEFAULT_GENERATED", "").generated());
        assert!(!definition(false, None, "auto_increment", "").generated());
    }

    /// What the test lexer reads back from a literal [`sql_string`] wrote: it takes `\X`
    /// as `X`, so the escaped control characters come back as their letters.
    fn as_lexed(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '\n' => 'n',
                '\r' => 'r',
                '\t' => 't',
                '\0' => '0',
                '\u{1a}' => 'Z',
                c => c,
            })
            .collect()
    }

    proptest::proptest! {
        /// Whatever the names, the comment and the default hold, the statement is the
        /// same tokens: the three names as identifiers, the two texts as one literal each,
        /// and no comment.
        #[test]
        fn hostile_names_and_texts_never_change_the_statement(
            schema in crate::mysql::sql_lexer::hostile_ident(),
            table in crate::mysql::sql_lexer::hostile_ident(),
            column in crate::mysql::sql_lexer::hostile_ident(),
            text in crate::mysql::sql_lexer::hostile_ident(),
        ) {
            let d = Definition {
                column_type: "int(11)".to_string(),
                ..definition(true, Some(&format!("x{text}")), "", &text)
            };
            let sql = alter(&schema, &table, &column, t(Width::Big, false), &d);
            let toks = tokens(&sql).map_err(proptest::test_runner::TestCaseError::fail)?;
            let word = |w: &str| Token::Word(w.to_string());
            let expected = vec![
                word("ALTER"), word("TABLE"), Token::Ident(schema.clone()), Token::Punct('.'),
                Token::Ident(table.clone()), word("MODIFY"), word("COLUMN"),
                Token::Ident(column.clone()), word("BIGINT"), word("NULL"), word("DEFAULT"),
                Token::Str(as_lexed(&format!("x{text}"))), word("COMMENT"),
                Token::Str(as_lexed(&text)),
            ];
            proptest::prop_assert_eq!(toks, expected);
        }
    }
}
