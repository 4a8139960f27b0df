//! The lint report as text (people), JSON (tools) and JUnit XML (GitLab and Jenkins test
//! reports). Names come from the databases: the text escapes them for terminals
//! ([`crate::escape`]); the JSON holds them exactly; the XML escapes them for terminals
//! too (XML 1.0 cannot carry most control characters even as references) and then for XML.

use std::fmt::Write as _;

use chrono::Utc;
use serde_json::json;

use super::Finding;
use crate::escape::escape;
use crate::state::ShardState;

/// `1 finding`, `2 findings`.
fn counted(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The summary line: `N findings (M allowed) on S shards`, or `No findings on S shards (M
/// allowed).`; N counts the findings that fail, M those accepted by `[lint] allow`.
pub fn summary(findings: &[Finding], shards: usize) -> String {
    let allowed = findings.iter().filter(|f| f.allowed).count();
    let failing = findings.len() - allowed;
    if failing == 0 {
        format!(
            "No findings on {} ({allowed} allowed).",
            counted(shards, "shard")
        )
    } else {
        format!(
            "{} ({allowed} allowed) on {}",
            counted(failing, "finding"),
            counted(shards, "shard")
        )
    }
}

/// The report for people: the failing findings, then the allowed ones with their reasons,
/// then the summary.
pub fn text(findings: &[Finding], shards: usize) -> String {
    let mut out = String::new();
    let (allowed, failing): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| f.allowed);
    if !failing.is_empty() {
        out.push_str(&table(&failing, "MESSAGE", |f| {
            escape(&f.message).into_owned()
        }));
    }
    if !allowed.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("Allowed by [lint] allow:\n");
        out.push_str(&table(&allowed, "REASON", |f| {
            format!("allowed: {}", escape(f.reason.as_deref().unwrap_or("")))
        }));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary(findings, shards));
    out
}

fn table(findings: &[&Finding], last: &str, last_cell: impl Fn(&Finding) -> String) -> String {
    let header = ["RULE", "SHARD", "COLUMN", "TYPE", "KIND", last];
    let dash = || "-".to_string();
    let rows: Vec<[String; 6]> = findings
        .iter()
        .map(|f| {
            [
                f.rule.as_str().to_string(),
                escape(&f.shard).into_owned(),
                f.column_name()
                    .map_or_else(dash, |n| escape(&n).into_owned()),
                f.column_type
                    .as_deref()
                    .map_or_else(dash, |t| escape(t).into_owned()),
                f.kind.map_or_else(dash, |k| k.as_str().to_string()),
                last_cell(f),
            ]
        })
        .collect();
    crate::escape::table(&header, &rows)
}

/// The report for tools: `findings` fail, `allowed` do not; each entry carries `allowed`
/// and `reason` as well.
pub fn json(findings: &[Finding], shards: usize) -> String {
    let (allowed, failing): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| f.allowed);
    let doc = json!({
        "generated_at": Utc::now(),
        "shards": shards,
        "findings": failing,
        "allowed": allowed,
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

/// Text made safe for an XML attribute or element: escaped for terminals first (which
/// leaves no control character), then the five XML specials as entities; the two
/// non-characters XML 1.0 refuses are written as visible escapes too.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one testcase per finding (`classname` `shard.schema.table`, `name`
/// `column: rule`; a shard's own finding has `classname` `shard` and `name` the rule), a
/// failure for each failing one, skipped for each allowed one; with no finding at all, one
/// passing testcase per shard (`shard: lint`), so that CI shows the lint ran.
pub fn junit(findings: &[Finding], shards: &[ShardState]) -> String {
    let failures = findings.iter().filter(|f| !f.allowed).count();
    let skipped = findings.len() - failures;
    let tests = if findings.is_empty() {
        shards.len()
    } else {
        findings.len()
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"headroom lint\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"headroom lint\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
    );
    if findings.is_empty() {
        for shard in shards {
            let name = xml(&shard.name);
            let _ = writeln!(
                out,
                "    <testcase classname=\"{name}\" name=\"{name}: lint\"/>"
            );
        }
    }
    for f in findings {
        testcase(&mut out, f);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn testcase(out: &mut String, f: &Finding) {
    let rule = f.rule.as_str();
    let (classname, name) = match f.target() {
        Some((schema, table, column)) => (
            format!("{}.{schema}.{table}", f.shard),
            format!("{column}: {rule}"),
        ),
        None => (f.shard.clone(), rule.to_string()),
    };
    let _ = writeln!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\">",
        xml(&classname),
        xml(&name)
    );
    if f.allowed {
        let reason = format!("allowed: {}", f.reason.as_deref().unwrap_or(""));
        let _ = writeln!(out, "      <skipped message=\"{}\"/>", xml(&reason));
    } else {
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"{rule}\">{}</failure>",
            xml(&f.message),
            details(f)
        );
    }
    out.push_str("    </testcase>\n");
}

/// The failure's body: where and what, one fact per line, each escaped.
fn details(f: &Finding) -> String {
    let mut lines = vec![format!("shard: {}", f.shard)];
    if let Some(name) = f.column_name() {
        lines.push(format!("column: {name}"));
    }
    if let Some(t) = &f.column_type {
        lines.push(format!("type: {t}"));
    }
    if let Some(k) = f.kind {
        lines.push(format!("kind: {}", k.as_str()));
    }
    if let Some(s) = &f.source {
        lines.push(format!("source: {s}"));
    }
    if let Some(p) = &f.parent {
        lines.push(format!("parent: {p}"));
    }
    lines.push(f.message.clone());
    lines.iter().map(|l| xml(l)).collect::<Vec<_>>().join("\n")
}
