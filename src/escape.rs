//! Text from a watched database, made safe for a terminal or a text log line. A table or
//! column may be named with a newline (forging a second log line), an ANSI escape sequence
//! (repainting a terminal) or a bidi override (showing a name backwards); each of those is
//! written as a visible escape instead: `\n`, `\u{1b}`, `\u{202e}`. A backslash is
//! doubled, so an escape that was already in the name stays distinguishable.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL, C1), bidi
/// controls and overrides, and the Unicode line and paragraph separators.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Whether `text` may reach a terminal as it is: it holds no character [`escape`] would
/// escape but the backslash.
pub fn terminal_safe(text: &str) -> bool {
    !text.chars().any(unsafe_char)
}

/// `text` with every unsafe character escaped; borrowed when nothing needs it.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || unsafe_char(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Left-aligned columns two spaces apart, a header line first, trailing spaces trimmed: the
/// tables `check`, `lint` and `bump` print. Cells are expected escaped already; widths
/// count characters.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells.zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn controls_escapes_and_bidi_overrides_become_visible() {
        assert_eq!(escape("users.id"), "users.id");
        assert_eq!(escape("ñandú_日本"), "ñandú_日本");
        assert_eq!(escape("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("rl\u{202e}o\u{2066}"), "rl\\u{202e}o\\u{2066}");
        assert_eq!(escape("\u{7f}\u{85}"), "\\u{7f}\\u{85}");
        assert_eq!(escape("a\\nb"), "a\\\\nb");
    }

    #[test]
    fn escaped_text_holds_no_line_break_or_escape_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = escape(&all);
        assert!(!out.contains(['\n', '\r', '\u{1b}', '\u{202e}', '\u{2028}']));
    }
}
