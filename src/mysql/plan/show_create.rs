//! The foreign keys of a table, read from the text of `SHOW CREATE TABLE`: what a user
//! with only `SELECT` sees (MariaDB shows such a user no row of
//! information_schema.REFERENTIAL_CONSTRAINTS, so the rules `ON DELETE`/`ON UPDATE` are
//! nowhere else). Pure.
//!
//! The text is lexed as the server writes it, never searched: identifiers quoted with
//! backticks (or double quotes under `ANSI_QUOTES`, or bare under
//! `sql_quote_show_create = 0`), a doubled quote standing for one; string literals (a
//! comment, a default, a CHECK) in single quotes, with doubled quotes and backslash
//! escapes, so that nothing inside a comment can read as a key. A key is only taken at the
//! start of one of the table's own definitions (after its `(` or a `,` at that depth),
//! and one whose clause does not read as MariaDB and MySQL write it is an error, never a
//! guess.

use crate::plan::found::ForeignKey;

/// One token of a `CREATE TABLE` text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A quoted identifier, unquoted.
    Quoted(String),
    /// A bare word or number, as written.
    Word(String),
    /// A string literal (its text is never needed).
    Str,
    Punct(char),
}

impl Token {
    /// Whether it is the bare keyword `kw` (any case).
    fn is(&self, kw: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    /// An identifier: quoted, or a bare word.
    fn name(&self) -> Option<&str> {
        match self {
            Token::Quoted(n) | Token::Word(n) => Some(n),
            Token::Str | Token::Punct(_) => None,
        }
    }
}

fn bare(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Tokenizes a `CREATE TABLE` text; `Err` on an unterminated quote or comment.
fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' || c == '"' {
            let mut name = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("an identifier quoted with {c} is not closed")),
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        name.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&x) => {
                        name.push(x);
                        i += 1;
                    }
                }
            }
            out.push(Token::Quoted(name));
        } else if c == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("a string literal is not closed".to_string()),
                    Some('\\') => i += 2,
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => i += 2,
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            out.push(Token::Str);
        } else if c == '/' && next == Some('*') {
            let close = chars[i + 2..]
                .windows(2)
                .position(|w| w == ['*', '/'])
                .ok_or("a comment is not closed")?;
            i += close + 4;
        } else if c == '#'
            || (c == '-'
                && next == Some('-')
                && chars
                    .get(i + 2)
                    .is_none_or(|c| c.is_whitespace() || c.is_control()))
        {
            while chars.get(i).is_some_and(|&c| c != '\n') {
                i += 1;
            }
        } else if bare(c) {
            let start = i;
            while chars.get(i).is_some_and(|&c| bare(c)) {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    Ok(out)
}

/// Reads tokens of one definition.
struct Cursor<'a> {
    toks: &'a [Token],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.toks.get(self.at);
        self.at += 1;
        t
    }

    fn eat(&mut self, kw: &str) -> bool {
        let hit = self.peek().is_some_and(|t| t.is(kw));
        if hit {
            self.at += 1;
        }
        hit
    }

    fn expect(&mut self, kw: &str) -> Result<(), String> {
        if self.eat(kw) {
            Ok(())
        } else {
            Err(format!("{kw} expected"))
        }
    }

    fn punct(&mut self, p: char) -> Result<(), String> {
        match self.next() {
            Some(Token::Punct(c)) if *c == p => Ok(()),
            _ => Err(format!("`{p}` expected")),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.next()
            .and_then(Token::name)
            .map(str::to_string)
            .ok_or_else(|| "a name expected".to_string())
    }

    /// `(a, b, …)`.
    fn names(&mut self) -> Result<Vec<String>, String> {
        self.punct('(')?;
        let mut out = vec![self.name()?];
        loop {
            match self.next() {
                Some(Token::Punct(',')) => out.push(self.name()?),
                Some(Token::Punct(')')) => return Ok(out),
                _ => return Err("`,` or `)` expected in a column list".to_string()),
            }
        }
    }

    /// `RESTRICT`, `CASCADE`, `SET NULL`, `NO ACTION` or `SET DEFAULT`.
    fn action(&mut self) -> Result<String, String> {
        for (first, second) in [("SET", "NULL"), ("NO", "ACTION"), ("SET", "DEFAULT")] {
            if self.peek().is_some_and(|t| t.is(first))
                && self.toks.get(self.at + 1).is_some_and(|t| t.is(second))
            {
                self.at += 2;
                return Ok(format!("{first} {second}"));
            }
        }
        for one in ["RESTRICT", "CASCADE"] {
            if self.eat(one) {
                return Ok(one.to_string());
            }
        }
        Err("a referential action expected".to_string())
    }

    /// Whether the definition ends here: `,` or the table's closing `)`.
    fn at_end(&self) -> bool {
        matches!(self.peek(), Some(Token::Punct(',' | ')')))
    }
}

/// `[CONSTRAINT name] FOREIGN KEY [index] (cols) REFERENCES [schema.]table (cols)
/// [MATCH …] [ON DELETE action] [ON UPDATE action]`, from just after `CONSTRAINT name`.
fn foreign_key(
    c: &mut Cursor<'_>,
    name: Option<String>,
    schema: &str,
    table: &str,
) -> Result<ForeignKey, String> {
    c.expect("FOREIGN")?;
    c.expect("KEY")?;
    if !matches!(c.peek(), Some(Token::Punct('('))) {
        c.name()?;
    }
    let columns = c.names()?;
    c.expect("REFERENCES")?;
    let first = c.name()?;
    let (parent_schema, parent_table) = if matches!(c.peek(), Some(Token::Punct('.'))) {
        c.at += 1;
        (first, c.name()?)
    } else {
        (schema.to_string(), first)
    };
    let parent_columns = c.names()?;
    if parent_columns.len() != columns.len() {
        return Err("the two column lists differ in length".to_string());
    }
    if c.eat("MATCH") {
        c.name()?;
    }
    // Omitted, a rule is RESTRICT: the servers leave it out of SHOW CREATE TABLE.
    let (mut on_delete, mut on_update) = (None, None);
    while c.eat("ON") {
        let slot = if c.eat("DELETE") {
            &mut on_delete
        } else if c.eat("UPDATE") {
            &mut on_update
        } else {
            return Err("DELETE or UPDATE expected after ON".to_string());
        };
        if slot.is_some() {
            return Err("a rule given twice".to_string());
        }
        *slot = Some(c.action()?);
    }
    if !c.at_end() {
        return Err("unexpected text after the key".to_string());
    }
    let name = name.ok_or("a foreign key without a name cannot be dropped")?;
    Ok(ForeignKey {
        name,
        schema: schema.to_string(),
        table: table.to_string(),
        columns,
        parent_schema,
        parent_table,
        parent_columns,
        on_update: on_update.unwrap_or_else(|| "RESTRICT".to_string()),
        on_delete: on_delete.unwrap_or_else(|| "RESTRICT".to_string()),
        database: None,
        deferrable: None,
        match_type: None,
    })
}

/// Every foreign key of `schema`.`table` in its `SHOW CREATE TABLE` text, in order; a
/// parent written without a schema is in `schema`. `Err` says what could not be read.
pub fn foreign_keys(schema: &str, table: &str, text: &str) -> Result<Vec<ForeignKey>, String> {
    let toks = tokens(text)?;
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    // Whether the token at `i` starts one of the table's definitions, and whether the
    // table's own parentheses are closed (what follows is options and partitions).
    let (mut starts, mut closed) = (false, false);
    while let Some(t) = toks.get(i) {
        if depth == 1 && starts && !closed {
            starts = false;
            let mut c = Cursor { toks: &toks, at: i };
            let name = if c.eat("CONSTRAINT") {
                match c.peek() {
                    Some(t) if t.is("FOREIGN") => None,
                    Some(t) if t.name().is_some() => Some(c.name()?),
                    _ => None,
                }
            } else {
                None
            };
            if c.peek().is_some_and(|t| t.is("FOREIGN")) {
                out.push(foreign_key(&mut c, name, schema, table)?);
                i = c.at;
                continue;
            }
        }
        match t {
            Token::Punct('(') => {
                depth += 1;
                starts = depth == 1;
            }
            Token::Punct(')') => {
                depth = depth.saturating_sub(1);
                closed |= depth == 0;
            }
            Token::Punct(',') => starts = depth == 1,
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err("the parentheses do not match".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, table: &str, parent: (&str, &str), rules: (&str, &str)) -> ForeignKey {
        ForeignKey {
            name: name.to_string(),
            schema: "app".to_string(),
            table: table.to_string(),
            columns: vec!["user_id".to_string()],
            parent_schema: parent.0.to_string(),
            parent_table: parent.1.to_string(),
            parent_columns: vec!["id".to_string()],
            on_delete: rules.0.to_string(),
            on_update: rules.1.to_string(),
            database: None,
            deferrable: None,
            match_type: None,
        }
    }

    /// As MariaDB 10.11 writes it for a child with a hostile name, constraint and comment.
    const HOSTILE: &str = "CREATE TABLE `or``d\\ers\n{table}` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `user_id` int(11) DEFAULT NULL COMMENT ''', CONSTRAINT `forged` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`), \\' FOREIGN KEY',
  `x` int(11) DEFAULT NULL CHECK (`x` <> 'a\\'b,('),
  PRIMARY KEY (`id`),
  KEY `user_id` (`user_id`),
  CONSTRAINT `fk``user\n) REFERENCES ``x`` (``y``) -- ` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`) ON DELETE SET NULL,
  CONSTRAINT `fk_other` FOREIGN KEY (`user_id`) REFERENCES `other`.`users` (`id`) ON DELETE CASCADE ON UPDATE NO ACTION,
  CONSTRAINT `positive` CHECK (`x` > 0)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COMMENT='CONSTRAINT `c` FOREIGN KEY (`a`) REFERENCES `b` (`c`)'";

    #[test]
    fn every_key_is_read_whole_and_nothing_inside_a_string_reads_as_one() {
        let got = foreign_keys("app", "t", HOSTILE).expect("readable");
        assert_eq!(
            got,
            vec![
                key(
                    "fk`user\n) REFERENCES `x` (`y`) -- ",
                    "t",
                    ("app", "users"),
                    ("SET NULL", "RESTRICT")
                ),
                key(
                    "fk_other",
                    "t",
                    ("other", "users"),
                    ("CASCADE", "NO ACTION")
                ),
            ]
        );
    }

    #[test]
    fn bare_and_ansi_quoted_names_and_several_columns_are_read() {
        let text = "CREATE TABLE \"t\" (\n  \"a\" int, b int,\n  CONSTRAINT fk_ab FOREIGN KEY \
                    (\"a\", b) REFERENCES p (x, \"y\"\"z\") ON UPDATE SET DEFAULT ON DELETE \
                    RESTRICT\n)";
        let got = foreign_keys("s", "t", text).expect("readable");
        assert_eq!(got.len(), 1);
        let k = &got[0];
        assert_eq!(k.columns, vec!["a", "b"]);
        assert_eq!(
            (k.parent_schema.as_str(), k.parent_table.as_str()),
            ("s", "p")
        );
        assert_eq!(k.parent_columns, vec!["x", "y\"z"]);
        assert_eq!(
            (k.on_delete.as_str(), k.on_update.as_str()),
            ("RESTRICT", "SET DEFAULT")
        );
    }

    #[test]
    fn a_table_without_keys_has_none() {
        let text = "CREATE TABLE `users` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n)";
        assert_eq!(foreign_keys("app", "users", text), Ok(Vec::new()));
    }

    #[test]
    fn a_key_that_does_not_read_as_the_servers_write_it_is_an_error() {
        for text in [
            "CREATE TABLE t (a int, FOREIGN KEY (a) REFERENCES p (x))",
            "CREATE TABLE t (a int, CONSTRAINT k FOREIGN KEY (a) REFERENCES p (x, y))",
            "CREATE TABLE t (a int, CONSTRAINT k FOREIGN KEY (a) REFERENCES p (x) ON DELETE EXPLODE)",
            "CREATE TABLE t (a int, CONSTRAINT k FOREIGN KEY (a) REFERENCES p (x) garbage)",
            "CREATE TABLE t (a int, CONSTRAINT k FOREIGN KEY (a) REFERENCES p (x) ON DELETE CASCADE ON DELETE RESTRICT)",
            "CREATE TABLE `t (a int)",
            "CREATE TABLE t (a int COMMENT 'x)",
            "CREATE TABLE t (a int",
        ] {
            assert!(foreign_keys("s", "t", text).is_err(), "{text}");
        }
    }
}
