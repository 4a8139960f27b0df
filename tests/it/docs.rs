//! The documentation kept honest, without a server: every configuration key the parser
//! accepts is in docs/configuration.md and every key written there is accepted; every
//! metric headroom exports is in docs/metrics.md and every metric written there is
//! exported; every relative link of README.md, CONTRIBUTING.md and docs/ resolves, to a
//! file and, with a `#fragment`, to a heading of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use headroom::config;
use headroom::headroom::Status;
use headroom::metrics::Metrics;
use headroom::state::Store;

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The text of `markdown` outside fenced code blocks, line by line, with inline code spans
/// blanked out (their text is not markdown).
fn prose_lines(markdown: &str) -> Vec<String> {
    let mut fence: Option<String> = None;
    let mut out = Vec::new();
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let ticks: String = trimmed.chars().take_while(|c| *c == '`').collect();
        match &fence {
            Some(open) if ticks.len() >= open.len() && trimmed.trim() == ticks => {
                fence = None;
                out.push(String::new());
                continue;
            }
            Some(_) => {
                out.push(String::new());
                continue;
            }
            None if ticks.len() >= 3 => {
                fence = Some(ticks);
                out.push(String::new());
                continue;
            }
            None => {}
        }
        out.push(without_code_spans(line));
    }
    out
}

/// `line` with every inline code span (a run of backticks up to the next run of the same
/// length) replaced by spaces.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let other = chars[j..].iter().take_while(|c| **c == '`').count();
                if other == run {
                    close = Some(j + other);
                    break;
                }
                j += other;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end - i));
                i = end;
            }
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// The inline code spans of `text`, in order.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// The anchor GitHub gives a heading: lowercase, spaces to `-`, every character but
/// letters, digits, `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of `markdown`'s headings; a repeated one gets `-1`, `-2`, … as on GitHub.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fence = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        let level = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&level) || !line[level..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[level..]);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// The targets of the inline links and images of `markdown`, outside code.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(markdown) {
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let end = after.find([')', ' ']).unwrap_or(after.len());
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

/// What is wrong with each relative link of the markdown file `file` (text `markdown`).
fn broken_links(file: &Path, markdown: &str) -> Vec<String> {
    let mut broken = Vec::new();
    for target in link_targets(markdown) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (target.as_str(), None),
        };
        if path.is_empty() {
            let fragment = fragment.unwrap_or_default();
            if !anchors(markdown).contains(fragment) {
                broken.push(format!(
                    "{}: {target}: no heading #{fragment}",
                    file.display()
                ));
            }
            continue;
        }
        let resolved = file.parent().unwrap_or(Path::new(".")).join(path);
        if !resolved.exists() {
            broken.push(format!("{}: {target}: no such file", file.display()));
            continue;
        }
        if let Some(fragment) = fragment {
            let is_markdown = resolved.extension().is_some_and(|e| e == "md");
            if !is_markdown || !anchors(&read(&resolved)).contains(fragment) {
                broken.push(format!(
                    "{}: {target}: no heading #{fragment} in {}",
                    file.display(),
                    resolved.display()
                ));
            }
        }
    }
    broken
}

/// README.md, CONTRIBUTING.md and every markdown file under docs/.
fn documentation() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    walk(&root().join("docs"), &mut files);
    files
}

#[test]
fn every_relative_link_in_the_documentation_resolves_to_a_file_and_heading() {
    let files = documentation();
    assert!(files.len() > 10, "found only {files:?}");
    let broken: Vec<String> = files
        .iter()
        .flat_map(|f| broken_links(f, &read(f)))
        .collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_reports_a_missing_file_and_a_missing_heading_but_not_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("other.md"),
        "# Other page\n\n## Fleets, written once\n",
    )
    .expect("write");
    let file = dir.path().join("page.md");
    let text = "# Page: `one`\n\n\
                [ok](other.md#fleets-written-once) [ok](#page-one) [ok](other.md)\n\
                [file](gone.md) [heading](other.md#fleets) [self](#nowhere)\n\
                `[code](gone.md)` and\n```\n[fenced](gone.md)\n```\n\
                [web](https://example.com/x.md#y)\n";
    let broken: Vec<String> = broken_links(&file, text)
        .iter()
        .map(|b| b.rsplit(": ").nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!(broken, ["gone.md", "other.md#fleets", "#nowhere"]);
}

/// The keys documented in `markdown`: the code spans of the first cell of every row of a
/// table whose first column is headed `key`.
fn documented_keys(markdown: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut in_key_table = false;
    for line in markdown.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if !line.trim_start().starts_with('|') || cells.len() < 3 {
            in_key_table = false;
            continue;
        }
        if cells[1] == "key" {
            in_key_table = true;
            continue;
        }
        if in_key_table && !cells[1].starts_with("---") {
            keys.extend(code_spans(cells[1]));
        }
    }
    keys
}

/// A TOML text that sets every key of `keys` (dotted, `[]` for a list of tables) to a
/// string, with one entry in each list of tables.
fn toml_setting(keys: &BTreeSet<String>) -> String {
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in keys {
        let (table, leaf) = key.rsplit_once('.').expect("a key names its section");
        tables
            .entry(table.to_string())
            .or_default()
            .push(leaf.to_string());
    }
    let mut text = String::new();
    for (table, leaves) in tables {
        let name = table.replace("[]", "");
        if table.ends_with("[]") {
            text.push_str(&format!("[[{name}]]\n"));
        } else {
            text.push_str(&format!("[{name}]\n"));
        }
        for leaf in leaves {
            text.push_str(&format!("{leaf} = \"x\"\n"));
        }
    }
    text
}

fn configuration_reference() -> BTreeSet<String> {
    let keys = documented_keys(&read(&root().join("docs/configuration.md")));
    assert!(keys.len() > 60, "found only {keys:?}");
    keys
}

#[test]
fn every_key_in_the_configuration_reference_is_accepted_by_the_parser() {
    let documented = configuration_reference();
    let (asked, problems) = config::keys_asked(&toml_setting(&documented));
    let unknown: Vec<String> = problems
        .iter()
        .filter(|p| p.message.starts_with("unknown key"))
        .map(ToString::to_string)
        .collect();
    assert!(unknown.is_empty(), "documented but unknown: {unknown:?}");
    let never_read: Vec<&String> = documented.difference(&asked).collect();
    assert!(
        never_read.is_empty(),
        "documented but never read: {never_read:?}"
    );
}

#[test]
fn every_key_the_parser_accepts_is_in_the_configuration_reference() {
    let documented = configuration_reference();
    let (asked, _) = config::keys_asked(&toml_setting(&documented));
    // A section (`poll`, `shards[]`, `lint.allow`) is asked for too: it is documented by
    // the keys under it.
    let is_section = |key: &str| {
        documented.iter().any(|d| {
            d.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    };
    let undocumented: Vec<&String> = asked
        .iter()
        .filter(|k| !documented.contains(*k) && !is_section(k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "accepted but not in docs/configuration.md: {undocumented:?}"
    );
}

/// Every family a headroom with one shard, one source and one notifier exports, each made
/// to hold a sample: the shard and source through the state rendering reads, the rest
/// through the calls the pager and a reload make.
fn exported_metrics() -> BTreeSet<String> {
    let toml = "[metrics]\nused_ratio = true\n\
                [[shards]]\nname = \"s\"\nurl = \"mysql://m@127.0.0.1:1/\"\n\
                [[sources]]\nname = \"t\"\nkind = \"ticket_server\"\n\
                servers = [\"mysql://m@127.0.0.1:2/tickets\"]\ntable = \"Tickets64\"\n";
    let settings = config::from_toml_str(toml, &|_| None).expect("settings");
    let store = Store::new(&settings);
    let age = |age| headroom::wraparound::Age {
        age,
        used_ratio: 0.0,
        status: Status::Ok,
        growth_per_second: None,
        seconds_to_wraparound: None,
        wraps_at: None,
    };
    let result = headroom::measure::ShardResult {
        mode: Some("STRICT_TRANS_TABLES".to_string()),
        strict: true,
        // A PostgreSQL shard's databases (the same state shape for any shard).
        databases: Some(vec![headroom::wraparound::DatabaseState {
            database: "app".to_string(),
            xid: age(1_000),
            multixact: age(10),
            status: Status::Ok,
            oldest_tables: Vec::new(),
        }]),
        ..Default::default()
    };
    store.shard_polled(
        "s",
        Ok(result),
        Duration::from_millis(5),
        chrono::Utc::now(),
    );
    let metrics = Metrics::with_settings(settings.metrics);
    metrics.reloaded(true);
    metrics.publish_cluster(None, 1, 1);
    metrics.pager_event("pagerduty", "trigger", "delivered");
    metrics.pager_queue_depth("pagerduty", 0);
    metrics.state_file_used();
    metrics.state_saved(1.0);
    // Rendering publishes what the snapshot holds: a source as a round of reads leaves it.
    let mut snapshot = store.read().clone();
    for source in &mut snapshot.sources {
        source.max = Some(4_294_967_295);
        source.remaining = Some(4_294_967_195);
        source.used_ratio = Some(0.0);
        source.status = Some(Status::Ok);
        source.growth_per_second = Some(1.0);
        source.seconds_to_exhaustion = Some(4_294_967_195);
        for server in &mut source.servers {
            server.polled = true;
            server.up = true;
            server.current = Some(100);
            server.auto_increment_increment = Some(1);
            server.auto_increment_offset = Some(1);
        }
    }
    metrics
        .render(&snapshot)
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The metrics documented: the `headroom_*` code spans of the first cell of each table row.
fn metrics_reference() -> BTreeSet<String> {
    let text = read(&root().join("docs/metrics.md"));
    let names: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('|'))
        .filter_map(|l| l.split('|').next())
        .flat_map(code_spans)
        .filter(|s| s.starts_with("headroom_"))
        .collect();
    assert!(names.len() > 20, "found only {names:?}");
    names
}

#[test]
fn every_exported_metric_is_in_the_metrics_reference() {
    let exported = exported_metrics();
    assert!(exported.len() > 20, "exported only {exported:?}");
    let documented = metrics_reference();
    let undocumented: Vec<&String> = exported.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in docs/metrics.md: {undocumented:?}"
    );
}

#[test]
fn every_metric_in_the_metrics_reference_is_exported() {
    let missing: Vec<String> = metrics_reference()
        .difference(&exported_metrics())
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "in docs/metrics.md but not exported: {missing:?}"
    );
}
