//! The walker every section reader uses: a table whose keys are taken out one by one, so
//! that what is left at [`Section::finish`] is unknown; typed readers that record a problem
//! (with the key, and the environment variable when one set it) instead of stopping.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::rc::Rc;
use std::time::Duration;

use config::{Value, ValueKind};

use super::{ENV_PREFIX, Problem};
use crate::headroom::Ppm;

/// A table being read.
pub(super) struct Section {
    path: String,
    table: BTreeMap<String, Value>,
    /// Shared by every section of one parse.
    problems: Rc<RefCell<Vec<Problem>>>,
    /// Every key a reader asked for, present or not (`shards[].url`): what the parser
    /// accepts, for [`super::keys_asked`]. Shared by every section of one parse.
    asked: Rc<RefCell<BTreeSet<String>>>,
    /// The included file this table comes from, named before the key of its problems;
    /// `None` for the main file.
    file: Option<Rc<str>>,
}

impl Section {
    pub(super) fn root(value: Value, problems: Rc<RefCell<Vec<Problem>>>) -> Section {
        let table = match value.kind {
            ValueKind::Table(t) => t.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        Section {
            path: String::new(),
            table,
            problems,
            asked: Rc::default(),
            file: None,
        }
    }

    /// Every key asked for so far in this parse, list indices written `[]`.
    pub(super) fn asked(&self) -> BTreeSet<String> {
        self.asked.borrow().clone()
    }

    /// Records that a reader asked for `key` of this table.
    fn ask(&self, key: &str) {
        let mut path = String::new();
        let mut in_index = false;
        for c in self.key(key).chars() {
            match c {
                '[' => {
                    in_index = true;
                    path.push_str("[]");
                }
                ']' => in_index = false,
                c if !in_index => path.push(c),
                _ => {}
            }
        }
        self.asked.borrow_mut().insert(path);
    }

    /// The root table of an included file, `file` as its problems name it.
    pub(super) fn included(&self, value: Value, file: &str) -> Section {
        let mut root = Section::root(value, Rc::clone(&self.problems));
        root.asked = Rc::clone(&self.asked);
        root.file = Some(Rc::from(file));
        root
    }

    pub(super) fn child(&self, path: String, table: BTreeMap<String, Value>) -> Section {
        Section {
            path,
            table,
            problems: Rc::clone(&self.problems),
            asked: Rc::clone(&self.asked),
            file: self.file.clone(),
        }
    }

    pub(super) fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn problem(&mut self, key: &str, message: String) {
        let key = match &self.file {
            Some(file) => format!("{file}: {}", self.key(key)),
            None => self.key(key),
        };
        self.problems.borrow_mut().push(Problem { key, message });
    }

    /// A sub-table (`[poll]`); absent is an empty table, so defaults apply.
    pub(super) fn section(&mut self, key: &str) -> Option<Section> {
        self.ask(key);
        let path = self.key(key);
        match self.table.remove(key).map(|v| v.kind) {
            None | Some(ValueKind::Nil) => Some(self.child(path, BTreeMap::new())),
            Some(ValueKind::Table(t)) => Some(self.child(path, t.into_iter().collect())),
            Some(_) => {
                self.problem(key, "must be a table, e.g. [".to_string() + key + "]");
                None
            }
        }
    }

    /// An array of tables (`[[shards]]`), each read by `read`.
    pub(super) fn tables<T>(
        &mut self,
        key: &str,
        required: bool,
        mut read: impl FnMut(&mut Section) -> Option<T>,
    ) -> Vec<Option<T>> {
        self.ask(&format!("{key}[]"));
        let Some(values) = self.list(key, required) else {
            return vec![None];
        };
        if required && values.is_empty() {
            self.problem(key, format!("is empty: at least one [[{key}]] is needed"));
        }
        let mut out = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            let path = format!("{}[{i}]", self.key(key));
            match value.kind {
                ValueKind::Table(t) => {
                    let mut section = self.child(path, t.into_iter().collect());
                    out.push(read(&mut section));
                }
                _ => {
                    self.problem(
                        &format!("{key}[{i}]"),
                        format!("must be a table: write it as [[{key}]]"),
                    );
                    out.push(None);
                }
            }
        }
        out
    }

    pub(super) fn list(&mut self, key: &str, required: bool) -> Option<Vec<Value>> {
        self.ask(key);
        match self.table.remove(key).map(|v| v.kind) {
            None | Some(ValueKind::Nil) => {
                if required {
                    self.problem(key, "is missing".to_string());
                    None
                } else {
                    Some(Vec::new())
                }
            }
            Some(ValueKind::Array(values)) => Some(values),
            Some(_) => {
                self.problem(key, "must be a list".to_string());
                None
            }
        }
    }

    /// A string; any other type is a problem, not converted (`name = 123` is a mistake).
    pub(super) fn string(&mut self, key: &str, required: bool) -> Option<String> {
        self.ask(key);
        match self.table.remove(key) {
            None => {
                if required {
                    self.problem(key, "is missing".to_string());
                }
                None
            }
            Some(value) => match value.kind {
                ValueKind::String(s) => Some(s),
                ref other => {
                    let what = kind_name(other);
                    let shown = self.shown(key, &value);
                    self.problem(key, format!("must be a string, not {what} ({shown})"));
                    None
                }
            },
        }
    }

    pub(super) fn string_list(&mut self, key: &str, required: bool) -> Option<Vec<String>> {
        self.ask(key);
        if !required && !self.table.contains_key(key) {
            return None;
        }
        let values = self.list(key, required)?;
        let mut out = Vec::new();
        for (i, value) in values.into_iter().enumerate() {
            match value.kind {
                ValueKind::String(s) => out.push(s),
                _ => self.problem(&format!("{key}[{i}]"), "must be a string".to_string()),
            }
        }
        Some(out)
    }

    pub(super) fn duration(&mut self, key: &str, default: Duration) -> Option<Duration> {
        let Some(text) = self.string(key, false) else {
            return Some(default);
        };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => {
                self.problem(key, "must be longer than zero".to_string());
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    key,
                    format!("{text:?} is not a duration such as \"60s\" or \"5m\": {e}"),
                );
                None
            }
        }
    }

    pub(super) fn positive(&mut self, key: &str, default: usize) -> Option<usize> {
        self.whole(key, Some(default), 1)
    }

    /// A whole number of at least `least`; `default` when absent, or a problem when there
    /// is none.
    pub(super) fn whole(
        &mut self,
        key: &str,
        default: Option<usize>,
        least: i128,
    ) -> Option<usize> {
        self.ask(key);
        let Some(value) = self.table.remove(key) else {
            if default.is_none() {
                self.problem(key, "is missing".to_string());
            }
            return default;
        };
        let number = match &value.kind {
            ValueKind::I64(n) => Some(i128::from(*n)),
            ValueKind::U64(n) => Some(i128::from(*n)),
            ValueKind::I128(n) => Some(*n),
            ValueKind::U128(n) => i128::try_from(*n).ok(),
            // Environment variables are text: the one place a number may be written as one.
            ValueKind::String(text) if from_env(&value) => text.trim().parse::<i128>().ok(),
            _ => None,
        };
        match number
            .filter(|n| *n >= least)
            .and_then(|n| usize::try_from(n).ok())
        {
            Some(n) => Some(n),
            None => {
                let shown = self.shown(key, &value);
                self.problem(
                    key,
                    format!("{shown} is not a whole number of at least {least}"),
                );
                None
            }
        }
    }

    pub(super) fn ratio(&mut self, key: &str, default: Ppm) -> Option<Ppm> {
        self.ratio_from(key, default, false)
    }

    /// A ratio in `0..=1` (`zero` allowed) or above 0 and at most 1.
    pub(super) fn ratio_from(&mut self, key: &str, default: Ppm, zero: bool) -> Option<Ppm> {
        self.ask(key);
        let Some(value) = self.table.remove(key) else {
            return Some(default);
        };
        let number = match &value.kind {
            ValueKind::Float(f) => Some(*f),
            ValueKind::I64(n) => Some(*n as f64),
            ValueKind::U64(n) => Some(*n as f64),
            ValueKind::String(text) if from_env(&value) => text.trim().parse::<f64>().ok(),
            _ => None,
        };
        match number.and_then(Ppm::from_ratio) {
            Some(p) if zero || p.get() > 0 => Some(p),
            _ => {
                let shown = self.shown(key, &value);
                let least = if zero { "from 0" } else { "above 0" };
                self.problem(
                    key,
                    format!("{shown} is not a ratio {least} and at most 1, such as 0.85"),
                );
                None
            }
        }
    }

    /// `true` or `false` (from the environment also as text).
    pub(super) fn boolean(&mut self, key: &str, default: bool) -> Option<bool> {
        self.ask(key);
        let Some(value) = self.table.remove(key) else {
            return Some(default);
        };
        match &value.kind {
            ValueKind::Boolean(b) => Some(*b),
            ValueKind::String(text)
                if from_env(&value) && matches!(text.trim(), "true" | "false") =>
            {
                Some(text.trim() == "true")
            }
            _ => {
                let shown = self.shown(key, &value);
                self.problem(key, format!("{shown} is not true or false"));
                None
            }
        }
    }

    /// A value as a problem shows it: `"6o s"`, `"abc" (from HEADROOM__POLL__CONCURRENCY)`,
    /// or its type when it is not a scalar.
    pub(super) fn shown(&self, key: &str, value: &Value) -> String {
        let text = match &value.kind {
            ValueKind::String(s) => format!("{s:?}"),
            ValueKind::Table(_) => "a table".to_string(),
            ValueKind::Array(_) => "a list".to_string(),
            other => Value::new(None, other.clone()).to_string(),
        };
        if from_env(value) {
            format!("{text} (from {})", env_var(&self.key(key)))
        } else {
            text
        }
    }

    /// The string at `key`, left in place; `None` when absent or not a string.
    pub(super) fn peek_string(&self, key: &str) -> Option<String> {
        self.ask(key);
        match &self.table.get(key)?.kind {
            ValueKind::String(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// A copy of this table under the same path, with the strings at `keys` replaced by
    /// `values` (their origin kept): one entry of an expanded range.
    pub(super) fn with_strings(&self, keys: &[&str], values: &[String]) -> Section {
        let mut table = self.table.clone();
        for (key, text) in keys.iter().zip(values) {
            let origin = table.get(*key).and_then(|v| v.origin().map(str::to_string));
            let value = Value::new(origin.as_ref(), ValueKind::String(text.clone()));
            table.insert((*key).to_string(), value);
        }
        self.child(self.path.clone(), table)
    }

    /// Drops every key left: their problems were reported by the copies that read them.
    pub(super) fn forget(&mut self) {
        self.table.clear();
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.ask(key);
        self.table.contains_key(key)
    }

    /// A unique, non-empty name.
    pub(super) fn name(
        &mut self,
        key: &str,
        seen: &mut HashSet<String>,
        what: &str,
    ) -> Option<String> {
        let name = self.string(key, true)?;
        if name.trim().is_empty() {
            self.problem(key, "must not be empty".to_string());
            return None;
        }
        if !seen.insert(name.clone()) {
            self.problem(key, format!("{what} name {name:?} is used twice"));
            return None;
        }
        Some(name)
    }

    /// Reports every key left with `message` (an included file's keys that only the main
    /// file may hold).
    pub(super) fn finish_with(&mut self, message: &str) {
        let left: Vec<String> = std::mem::take(&mut self.table).into_keys().collect();
        for key in left {
            self.problem(&key, message.to_string());
        }
    }

    /// Reports every key nobody asked for.
    pub(super) fn finish(&mut self) {
        let unknown: Vec<(String, Value)> = std::mem::take(&mut self.table).into_iter().collect();
        for (key, value) in unknown {
            let message = if from_env(&value) {
                format!(
                    "unknown key, set by the environment variable {}",
                    env_var(&self.key(&key))
                )
            } else {
                "unknown key".to_string()
            };
            self.problem(&key, message);
        }
    }
}

/// What the `config` crate records as the origin of a value from the environment.
const ENV_ORIGIN: &str = "the environment";

/// Whether `value` came from a `HEADROOM__*` variable rather than the file.
fn from_env(value: &Value) -> bool {
    match &value.kind {
        // A table made of variables (HEADROOM__NEW__KEY) carries no origin itself.
        ValueKind::Table(t) => !t.is_empty() && t.values().all(from_env),
        _ => value.origin() == Some(ENV_ORIGIN),
    }
}

/// The variable that sets the dotted `key`: `poll.interval` → `HEADROOM__POLL__INTERVAL`.
fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
}

/// A value's type, as a problem names it.
fn kind_name(kind: &ValueKind) -> &'static str {
    match kind {
        ValueKind::Nil => "empty",
        ValueKind::Boolean(_) => "a boolean",
        ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
            "a number"
        }
        ValueKind::Float(_) => "a number",
        ValueKind::String(_) => "a string",
        ValueKind::Table(_) => "a table",
        ValueKind::Array(_) => "a list",
    }
}
