//! For tests of statements built from names: a tokenizer that reads SQL as MySQL and
//! MariaDB do (quoted identifiers, strings, every comment form), and a proptest strategy
//! of hostile identifiers.

use proptest::prelude::*;

/// One token of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A backtick-quoted identifier, unquoted.
    Ident(String),
    /// A bare word or number, upper-cased.
    Word(String),
    /// A quoted string: none is ever expected in the statements tested.
    Str(String),
    /// `#`, `-- ` or `/* */`: never expected either.
    Comment(String),
    Punct(char),
}

/// Tokenizes `sql`; `Err` on an unterminated quote or comment.
pub fn tokens(sql: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' || c == '\'' || c == '"' {
            let (text, end) = quoted(&chars, i, c)?;
            out.push(if c == '`' {
                Token::Ident(text)
            } else {
                Token::Str(text)
            });
            i = end;
        } else if c == '#'
            || (c == '-'
                && next == Some('-')
                && chars
                    .get(i + 2)
                    .is_none_or(|c| c.is_whitespace() || c.is_control()))
        {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| i + p);
            out.push(Token::Comment(chars[i..end].iter().collect()));
            i = end;
        } else if c == '/' && next == Some('*') {
            let body = &chars[i + 2..];
            let close = body
                .windows(2)
                .position(|w| w == ['*', '/'])
                .ok_or("unterminated comment")?;
            out.push(Token::Comment(body[..close].iter().collect()));
            i += close + 4;
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let end = chars[i..]
                .iter()
                .position(|&c| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .map_or(chars.len(), |p| i + p);
            out.push(Token::Word(
                chars[i..end].iter().collect::<String>().to_uppercase(),
            ));
            i = end;
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    Ok(out)
}

/// The text of the quoted token starting at `start`, and the index after it. A doubled
/// quote is one quote; in strings a backslash escapes the next character.
fn quoted(chars: &[char], start: usize, quote: char) -> Result<(String, usize), String> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(format!("unterminated {quote}")),
            Some('\\') if quote != '`' => {
                text.extend(chars.get(i + 1));
                i += 2;
            }
            Some(&c) if c == quote => {
                if chars.get(i + 1) == Some(&quote) {
                    text.push(quote);
                    i += 2;
                } else {
                    return Ok((text, i + 1));
                }
            }
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// Words and punctuation of a fixed statement skeleton, for building expectations.
pub fn skeleton(sql: &str) -> Vec<Token> {
    tokens(sql).unwrap_or_default()
}

/// Identifiers as a hostile user would create them: pieces that mean something to SQL
/// or to a template, quotes, newlines, control and bidi characters, multi-byte text,
/// and anything else, up to MySQL's 64 characters.
pub fn hostile_ident() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("`".to_string()),
        Just("``".to_string()),
        Just("{table}".to_string()),
        Just("{column}".to_string()),
        Just("{schema}".to_string()),
        Just("{n}".to_string()),
        Just("{filter}".to_string()),
        Just("#".to_string()),
        Just("-- ".to_string()),
        Just("--".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("/*!".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just(";".to_string()),
        Just(") UNION SELECT 0,val FROM vault.k#".to_string()),
        Just("\u{1b}[31m".to_string()),
        Just("\u{202e}".to_string()),
        Just("ñandú".to_string()),
        Just("日本".to_string()),
        "[a-z_]{1,8}",
        any::<char>()
            .prop_filter("no NUL", |c| *c != '\0')
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 1..8)
        .prop_map(|pieces| pieces.concat().chars().take(64).collect::<String>())
}
