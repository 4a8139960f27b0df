//! For tests of statements built from names: a tokenizer that reads SQL as PostgreSQL does
//! (double-quoted identifiers, `U&"…"`, strings in all their forms, dollar quotes, `--`
//! and nested `/* */` comments, `$1` parameters), and a proptest strategy of hostile
//! identifiers.

use proptest::prelude::*;

/// One token of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A double-quoted identifier, unquoted.
    Ident(String),
    /// A `U&"…"` identifier: never expected in the statements tested.
    UnicodeIdent(String),
    /// A bare word or number, upper-cased.
    Word(String),
    /// A string (`'…'`, `E'…'`, `B'…'`, `X'…'`, `N'…'`, `U&'…'`, `$tag$…$tag$`): never
    /// expected either.
    Str(String),
    /// `--` or `/* */`: never expected either.
    Comment(String),
    /// `$1`, a parameter.
    Param(String),
    Punct(char),
}

fn starts_word(c: char) -> bool {
    c.is_alphabetic() || c == '_' || !c.is_ascii()
}

fn continues_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Tokenizes `sql`; `Err` on an unterminated quote or comment.
pub fn tokens(sql: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = at(i + 1);
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let (text, end) = quoted(&chars, i, '"', false)?;
            out.push(Token::Ident(text));
            i = end;
        } else if (c == 'U' || c == 'u') && next == Some('&') && at(i + 2) == Some('"') {
            let (text, end) = quoted(&chars, i + 2, '"', false)?;
            out.push(Token::UnicodeIdent(text));
            i = end;
        } else if (c == 'U' || c == 'u') && next == Some('&') && at(i + 2) == Some('\'') {
            let (text, end) = quoted(&chars, i + 2, '\'', false)?;
            out.push(Token::Str(text));
            i = end;
        } else if c == '\'' {
            let (text, end) = quoted(&chars, i, '\'', false)?;
            out.push(Token::Str(text));
            i = end;
        } else if matches!(c, 'E' | 'e') && next == Some('\'') {
            let (text, end) = quoted(&chars, i + 1, '\'', true)?;
            out.push(Token::Str(text));
            i = end;
        } else if matches!(c, 'B' | 'b' | 'X' | 'x' | 'N' | 'n') && next == Some('\'') {
            let (text, end) = quoted(&chars, i + 1, '\'', false)?;
            out.push(Token::Str(text));
            i = end;
        } else if c == '-' && next == Some('-') {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n' || c == '\r')
                .map_or(chars.len(), |p| i + p);
            out.push(Token::Comment(chars[i..end].iter().collect()));
            i = end;
        } else if c == '/' && next == Some('*') {
            let (text, end) = block_comment(&chars, i)?;
            out.push(Token::Comment(text));
            i = end;
        } else if c == '$' && next.is_some_and(|c| c.is_ascii_digit()) {
            let end = chars[i + 1..]
                .iter()
                .position(|c| !c.is_ascii_digit())
                .map_or(chars.len(), |p| i + 1 + p);
            out.push(Token::Param(chars[i..end].iter().collect()));
            i = end;
        } else if c == '$' {
            let (text, end) = dollar_quoted(&chars, i)?;
            out.push(Token::Str(text));
            i = end;
        } else if starts_word(c) || c.is_ascii_digit() {
            let end = chars[i..]
                .iter()
                .position(|&c| !continues_word(c))
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

/// The text of the quoted token whose opening quote is at `start`, and the index after it.
/// A doubled quote is one quote; in an `E'…'` string a backslash escapes the next character.
fn quoted(
    chars: &[char],
    start: usize,
    quote: char,
    backslash: bool,
) -> Result<(String, usize), String> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(format!("unterminated {quote}")),
            Some('\\') if backslash => {
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

/// A `/* */` comment starting at `start`, which nests in PostgreSQL.
fn block_comment(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut depth = 0usize;
    let mut i = start;
    loop {
        match (chars.get(i), chars.get(i + 1)) {
            (Some('/'), Some('*')) => {
                depth += 1;
                i += 2;
            }
            (Some('*'), Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok((chars[start..i].iter().collect(), i));
                }
            }
            (Some(_), _) => i += 1,
            (None, _) => return Err("unterminated comment".to_string()),
        }
    }
}

/// A `$tag$…$tag$` string starting at `start` (the tag may be empty); a lone `$` that
/// opens no such quote is an error, as it is to the server.
fn dollar_quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let tag_end = chars[start + 1..]
        .iter()
        .position(|&c| !(c.is_alphanumeric() || c == '_' || !c.is_ascii()))
        .map(|p| start + 1 + p)
        .filter(|&p| chars[p] == '$')
        .ok_or("a lone $")?;
    let tag: Vec<char> = chars[start..=tag_end].to_vec();
    let body = tag_end + 1;
    let close = chars[body..]
        .windows(tag.len())
        .position(|w| w == tag.as_slice())
        .ok_or("unterminated dollar quote")?;
    Ok((
        chars[body..body + close].iter().collect(),
        body + close + tag.len(),
    ))
}

/// Words and punctuation of a fixed statement skeleton, for building expectations.
pub fn skeleton(sql: &str) -> Vec<Token> {
    tokens(sql).unwrap_or_default()
}

/// Identifiers as a hostile user would create them: pieces that mean something to SQL or
/// to a template, quotes of every kind, newlines, control and bidi characters, multi-byte
/// text, and anything else but NUL (which no name can hold), cut to PostgreSQL's 63 bytes.
pub fn hostile_ident() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"".to_string()),
        Just("\"\"".to_string()),
        Just("U&\"".to_string()),
        Just("{table}".to_string()),
        Just("{column}".to_string()),
        Just("{schema}".to_string()),
        Just("{n}".to_string()),
        Just("--".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("'".to_string()),
        Just("E'".to_string()),
        Just("$$".to_string()),
        Just("$a$".to_string()),
        Just("$1".to_string()),
        Just("\\".to_string()),
        Just(";".to_string()),
        Just("::".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\t".to_string()),
        Just("\") UNION SELECT 0, passwd FROM pg_shadow --".to_string()),
        Just("\u{1b}[31m".to_string()),
        Just("\u{202e}".to_string()),
        Just("ñandú".to_string()),
        Just("日本".to_string()),
        "[a-z_]{1,8}",
        any::<char>()
            .prop_filter("no NUL", |c| *c != '\0')
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 1..8).prop_map(|pieces| truncate_bytes(&pieces.concat(), 63))
}

/// `text` cut to at most `limit` bytes, on a character boundary, as the server cuts names.
fn truncate_bytes(text: &str, limit: usize) -> String {
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() > limit {
            break;
        }
        end = i + c.len_utf8();
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokenizer_knows_every_quote_and_comment() {
        let t = tokens(
            "SELECT \"a\"\"b\", U&\"x\", 'it''s', E'\\'', $t$ ' \" $t$, $1, x$y -- c\n/* a /* b */ c */::int",
        )
        .expect("tokens");
        assert_eq!(
            t,
            vec![
                Token::Word("SELECT".into()),
                Token::Ident("a\"b".into()),
                Token::Punct(','),
                Token::UnicodeIdent("x".into()),
                Token::Punct(','),
                Token::Str("it's".into()),
                Token::Punct(','),
                Token::Str("'".into()),
                Token::Punct(','),
                Token::Str(" ' \" ".into()),
                Token::Punct(','),
                Token::Param("$1".into()),
                Token::Punct(','),
                Token::Word("X$Y".into()),
                Token::Comment("-- c".into()),
                Token::Comment("/* a /* b */ c */".into()),
                Token::Punct(':'),
                Token::Punct(':'),
                Token::Word("INT".into()),
            ]
        );
        assert!(tokens("\"open").is_err());
        assert!(tokens("/* /* */").is_err());
    }

    #[test]
    fn names_are_cut_to_63_bytes_on_a_character_boundary() {
        assert_eq!(truncate_bytes(&"é".repeat(40), 63), "é".repeat(31));
        assert_eq!(truncate_bytes("short", 63), "short");
    }
}
