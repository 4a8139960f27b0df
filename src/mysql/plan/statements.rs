//! The statements of a widening as MySQL and MariaDB take them: the `MODIFY` clause that
//! keeps every other attribute of a column's definition, the `ALTER TABLE`, the foreign
//! keys dropped and added again, and the equivalent `gh-ost` and `pt-online-schema-change`
//! commands (shell words). Pure: names quoted by [`ident`]/[`qualified`], each statement
//! built in one pass. The plan asks for them through [`crate::engine::Engine`].
//!
//! # Attributes
//! `MODIFY` replaces the whole column definition, so every attribute is written again:
//! NULL/NOT NULL, DEFAULT, AUTO_INCREMENT, ZEROFILL (UNSIGNED comes with the target type),
//! INVISIBLE and COMMENT. Integer columns have no character set or collation, so none is
//! written. Text from the server (the comment, a default) is written as a SQL string
//! literal: quotes doubled, backslashes and control characters escaped, which is exact
//! under the default `sql_mode` and still cannot end the literal early under
//! `NO_BACKSLASH_ESCAPES`.

use crate::headroom::IntType;
use crate::mysql::{ident, qualified};
use crate::plan::found::{Definition, ForeignKey, Widening, Written};

/// Whether the column is ZEROFILL (its `COLUMN_TYPE` says so): `MODIFY` must say it again.
fn zerofill(definition: &Definition) -> bool {
    definition
        .column_type
        .to_ascii_lowercase()
        .contains("zerofill")
}

/// Whether the column is INVISIBLE (MariaDB 10.3+, MySQL 8.0.23+, from `EXTRA`).
fn invisible(definition: &Definition) -> bool {
    definition
        .extra
        .to_ascii_uppercase()
        .split_whitespace()
        .any(|w| w == "INVISIBLE")
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
    if zerofill(definition) {
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
    if invisible(definition) {
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
        ident(column),
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
        qualified(schema, table),
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
        .map(|n| ident(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ALTER TABLE child DROP FOREIGN KEY name`.
pub fn drop_foreign_key(fk: &ForeignKey) -> String {
    format!(
        "ALTER TABLE {} DROP FOREIGN KEY {}",
        qualified(&fk.schema, &fk.table),
        ident(&fk.name)
    )
}

/// `ALTER TABLE child ADD CONSTRAINT name FOREIGN KEY (…) REFERENCES parent (…) …`.
pub fn add_foreign_key(fk: &ForeignKey) -> String {
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {}",
        qualified(&fk.schema, &fk.table),
        ident(&fk.name),
        idents(&fk.columns),
        qualified(&fk.parent_schema, &fk.parent_table),
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

/// One widening of a column whose table is on `host`:`port`, written out: the
/// `ALTER TABLE`, and the commands of the online schema change tools (none for
/// pt-online-schema-change when a name cannot go into its DSN, and a note saying so).
pub fn widen(w: &Widening, host: &str, port: u16, definition: &Definition) -> Written {
    let (schema, table, column) = (&w.id.schema, &w.id.table, &w.id.column);
    let modify = modify(column, w.to, definition);
    let at = Target {
        host,
        port,
        schema,
        table,
    };
    let pt_online_schema_change = pt_online_schema_change(&at, &modify);
    let note = pt_online_schema_change.is_none().then(|| {
        "a name holds `,` or `=`, which a pt-online-schema-change DSN cannot carry".to_string()
    });
    Written {
        statement: Some(alter(schema, table, column, w.to, definition)),
        then: Vec::new(),
        rebuilds: true,
        online_steps: Vec::new(),
        online_note: None,
        gh_ost: Some(gh_ost(&at, &modify)),
        pt_online_schema_change,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::Width;
    use crate::mysql::sql_lexer::{Token, tokens};

    fn t(width: Width, unsigned: bool) -> IntType {
        IntType::new(width, unsigned)
    }

    fn definition(nullable: bool, default: Option<&str>, extra: &str, comment: &str) -> Definition {
        Definition {
            column_type: "int(10) unsigned zerofill".to_string(),
            nullable,
            default: default.map(str::to_string),
            extra: extra.to_string(),
            comment: comment.to_string(),
            ..Definition::default()
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
        let fk = ForeignKey {
            name: "fk`{table}".to_string(),
            schema: "app".to_string(),
            table: "orders".to_string(),
            columns: vec!["user_id".to_string(), "shop_id".to_string()],
            parent_schema: "app".to_string(),
            parent_table: "users".to_string(),
            parent_columns: vec!["id".to_string(), "shop".to_string()],
            on_update: "CASCADE".to_string(),
            on_delete: "SET NULL; DROP TABLE x".to_string(),
            database: None,
            deferrable: None,
            match_type: None,
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
