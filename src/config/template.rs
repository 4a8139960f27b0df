//! `[[inference.rules]]` templates and the `[inference]` settings: parsed and checked here
//! (the configuration reads them with this), bound against names by the inference.

/// `[inference]`: whether references are guessed, and the house conventions to try first.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `[[inference.rules]]`, in file order.
    pub rules: Vec<Template>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            enabled: true,
            rules: Vec::new(),
        }
    }
}

/// One piece of a column template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Literal(String),
    /// `{prefix}`: one or more letters or digits (no `_`).
    Prefix,
    /// `{table}`: the name of a table of the schema searched.
    Table,
}

/// One `[[inference.rules]]`: a column name template and the parent it names.
///
/// Placeholders: `{table}` stands for the name of a table (required exactly once in
/// `column`, unless `column` has no placeholder at all: then it pins that one name, whatever
/// the ASCII case, to the `parent` written whole); `{prefix}` for one or more letters or digits without `_` (at most once in
/// `column`). `parent` is `table.column` or `schema.table.column`, written with literal
/// text and the placeholders `column` binds; `{{` and `}}` are not supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// As written, for the evidence.
    pub column: String,
    /// As written.
    pub parent: String,
    pub(crate) pieces: Vec<Piece>,
    /// `parent` split at its dots, each part still holding placeholders.
    pub(crate) parent_parts: Vec<String>,
}

pub(crate) fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| format!("{text:?}: `{{` without a closing `}}`"))?;
            out.push(match &after[..end] {
                "table" => Piece::Table,
                "prefix" => Piece::Prefix,
                other => {
                    return Err(format!(
                        "{text:?}: unknown placeholder {{{other}}} (known: {{table}}, {{prefix}})"
                    ));
                }
            });
            rest = &after[end + 1..];
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            if end == 0 {
                return Err(format!("{text:?}: `}}` without an opening `{{`"));
            }
            out.push(Piece::Literal(rest[..end].to_ascii_lowercase()));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

impl Template {
    /// Checks both templates; the error says what is wrong (the caller names the key).
    pub fn new(column: &str, parent: &str) -> Result<Template, (&'static str, String)> {
        let pieces = pieces(column).map_err(|e| ("column", e))?;
        let count = |p: &Piece| pieces.iter().filter(|q| *q == p).count();
        let pin = pieces.iter().all(|p| matches!(p, Piece::Literal(_)));
        if pin && column.is_empty() {
            return Err(("column", "is empty".to_string()));
        }
        if pin {
            // One name, one parent: the parent names no placeholder either.
            if pieces_of_parent(parent)?
                .iter()
                .any(|p| !matches!(p, Piece::Literal(_)))
            {
                return Err((
                    "parent",
                    format!(
                        "{parent:?}: a column without placeholders pins one name, so its parent is written whole, without placeholders"
                    ),
                ));
            }
        } else if count(&Piece::Table) != 1 {
            return Err((
                "column",
                format!(
                    "{column:?} must hold {{table}} exactly once (or no placeholder, to pin one name)"
                ),
            ));
        }
        if count(&Piece::Prefix) > 1 {
            return Err((
                "column",
                format!("{column:?} may hold {{prefix}} at most once"),
            ));
        }
        let literal = |p: &Piece| matches!(p, Piece::Literal(_));
        if pieces
            .windows(2)
            .any(|w| !literal(&w[0]) && !literal(&w[1]))
        {
            return Err((
                "column",
                format!("{column:?}: two placeholders must be separated by literal text"),
            ));
        }
        let parent_pieces = pieces_of_parent(parent)?;
        if parent_pieces.contains(&Piece::Prefix) && count(&Piece::Prefix) == 0 {
            return Err((
                "parent",
                format!("{parent:?} uses {{prefix}}, which the column template does not bind"),
            ));
        }
        let parent_parts: Vec<String> = parent.split('.').map(str::to_string).collect();
        if !(2..=3).contains(&parent_parts.len()) || parent_parts.iter().any(String::is_empty) {
            return Err((
                "parent",
                format!("{parent:?} must be table.column or schema.table.column"),
            ));
        }
        Ok(Template {
            column: column.to_string(),
            parent: parent.to_string(),
            pieces,
            parent_parts,
        })
    }

    /// Whether this template pins one column name to one parent (no placeholder).
    pub fn is_pin(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Literal(_)))
    }

    /// Every way `name` (lower case) matches, as `(prefix, table)` bindings; a pin binds
    /// nothing, once, when `name` is its column.
    pub(crate) fn bind(&self, name: &str) -> Vec<(Option<String>, String)> {
        if self.is_pin() {
            let literal: String = self
                .pieces
                .iter()
                .map(|p| match p {
                    Piece::Literal(l) => l.as_str(),
                    _ => "",
                })
                .collect();
            return if literal == name {
                vec![(None, String::new())]
            } else {
                Vec::new()
            };
        }
        let mut out = Vec::new();
        bind(&self.pieces, name, None, None, &mut out);
        out
    }
}

fn pieces_of_parent(parent: &str) -> Result<Vec<Piece>, (&'static str, String)> {
    pieces(parent).map_err(|e| ("parent", e))
}

fn bind(
    pieces: &[Piece],
    rest: &str,
    prefix: Option<&str>,
    table: Option<&str>,
    out: &mut Vec<(Option<String>, String)>,
) {
    let Some((first, more)) = pieces.split_first() else {
        if rest.is_empty()
            && let Some(table) = table
        {
            out.push((prefix.map(str::to_string), table.to_string()));
        }
        return;
    };
    match first {
        Piece::Literal(text) => {
            if let Some(after) = rest.strip_prefix(text.as_str()) {
                bind(more, after, prefix, table, out);
            }
        }
        Piece::Prefix | Piece::Table => {
            for end in 1..=rest.len() {
                if !rest.is_char_boundary(end) {
                    continue;
                }
                let (value, after) = rest.split_at(end);
                if *first == Piece::Prefix {
                    if !value.chars().all(|c| c.is_ascii_alphanumeric()) {
                        break;
                    }
                    bind(more, after, Some(value), table, out);
                } else {
                    bind(more, after, prefix, Some(value), out);
                }
            }
        }
    }
}
