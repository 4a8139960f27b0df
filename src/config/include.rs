//! `[include] files`: more `[[shards]]`, `[[sources]]`, `[[references]]`, `[[overrides]]`
//! and `[[silences]]` from other files (`conf.d/*.toml`), appended to the main file's.
//!
//! Each pattern is relative to the main file's folder; `*` and `?` match in its file-name
//! part only, never a `/`, and the matches are taken in name order. A pattern that matches
//! nothing is no problem (an empty `conf.d/` is a fleet written elsewhere).

use std::path::{Path, PathBuf};

use config::Value;

use super::section::Section;

/// What an included file may not hold is reported with this.
pub(super) const NOT_ALLOWED: &str = "is not allowed in an included file: it may hold only [[shards]], [[sources]], [[references]], [[overrides]] and [[silences]]";

/// `[include]` of `root`: the root table of every included file, as a section whose
/// problems name the file.
pub(super) fn sections(root: &mut Section, base: &Path) -> Vec<Section> {
    let included = root
        .section("include")
        .map(|mut s| read(&mut s, base))
        .unwrap_or_default();
    included
        .into_iter()
        .map(|(label, value)| root.included(value, &label))
        .collect()
}

/// `[include]`: the root table of every included file, in pattern order, then name order;
/// each named as written relative to the main file (`conf.d/a.toml`).
fn read(s: &mut Section, base: &Path) -> Vec<(String, Value)> {
    let patterns = s.string_list("files", false).unwrap_or_default();
    s.finish();
    let mut out = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let key = format!("files[{i}]");
        let files = match matches(base, pattern) {
            Ok(files) => files,
            Err(message) => {
                s.problem(&key, message);
                continue;
            }
        };
        for (label, path) in files {
            let built = super::file::read(&path).and_then(|text| {
                config::Config::builder()
                    .add_source(config::File::from_str(&text, config::FileFormat::Toml))
                    .build()
                    .map_err(|e| super::without_quoted_lines(&e.to_string()))
            });
            match built {
                Ok(built) => out.push((label, built.cache)),
                Err(e) => s.problem(&key, format!("cannot read {label}: {e}")),
            }
        }
    }
    out
}

/// The files `pattern` names under `base`, sorted, each with its name as written.
fn matches(base: &Path, pattern: &str) -> Result<Vec<(String, PathBuf)>, String> {
    let (dir, name) = match pattern.rfind('/') {
        Some(i) => (&pattern[..=i], &pattern[i + 1..]),
        None => ("", pattern),
    };
    if name.is_empty() {
        return Err(format!(
            "{pattern:?} names a folder: write a file pattern such as \"conf.d/*.toml\""
        ));
    }
    if dir.contains(['*', '?']) {
        return Err(format!(
            "{pattern:?} has a wildcard in its folder part: only the file name may hold * and ?"
        ));
    }
    if !name.contains(['*', '?']) {
        let path = base.join(pattern);
        if !path.is_file() {
            return Err(format!("{} is not a file", path.display()));
        }
        return Ok(vec![(pattern.to_string(), path)]);
    }
    let folder = base.join(dir);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        // No folder, no match: the same as an empty one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", folder.display())),
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|file| wildcard(name.as_bytes(), file.as_bytes()))
        .map(|file| (format!("{dir}{file}"), folder.join(&file)))
        .collect();
    found.sort();
    Ok(found)
}

/// Whether `text` matches `pattern`, where `*` is any run of bytes and `?` one character.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    // The classic two-pointer match with backtracking to the last `*`: linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                t += utf8_len(text[t]);
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + utf8_len(text[st]);
                    star = Some((sp, t));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// The length of the UTF-8 character that starts with `first`.
fn utf8_len(first: u8) -> usize {
    match first {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark_match_in_the_file_name() {
        let yes = [
            ("*.toml", "a.toml"),
            ("*.toml", ".toml"),
            ("s?.toml", "sé.toml"),
            ("*b*", "abc"),
        ];
        for (p, t) in yes {
            assert!(wildcard(p.as_bytes(), t.as_bytes()), "{p} {t}");
        }
        let no = [
            ("*.toml", "a.toml~"),
            ("s?.toml", "s.toml"),
            ("a", "ab"),
            ("[a].toml", "a.toml"),
        ];
        for (p, t) in no {
            assert!(!wildcard(p.as_bytes(), t.as_bytes()), "{p} {t}");
        }
    }

    #[test]
    fn matches_are_sorted_and_named_as_written() {
        let dir = tempfile::tempdir().expect("dir");
        let conf = dir.path().join("conf.d");
        std::fs::create_dir(&conf).expect("mkdir");
        for f in ["b.toml", "a.toml", "c.txt"] {
            std::fs::write(conf.join(f), "").expect("write");
        }
        std::fs::create_dir(conf.join("d.toml")).expect("a folder is not a match");
        let found: Vec<String> = matches(dir.path(), "conf.d/*.toml")
            .expect("matches")
            .into_iter()
            .map(|(label, _)| label)
            .collect();
        assert_eq!(found, ["conf.d/a.toml", "conf.d/b.toml"]);
        assert_eq!(matches(dir.path(), "none.d/*.toml"), Ok(Vec::new()));
        assert!(matches(dir.path(), "*/a.toml").is_err());
        assert!(matches(dir.path(), "conf.d/x.toml").is_err());
    }

    /// A main file with `[include] files = ["conf.d/*.toml"]` and these included files.
    fn fleet(main: &str, included: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
        for (name, text) in included {
            std::fs::write(dir.path().join("conf.d").join(name), text).expect("write");
        }
        let path = dir.path().join("headroom.toml");
        let text = format!("[include]\nfiles = [\"conf.d/*.toml\"]\n{main}");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    #[test]
    fn included_entries_are_appended_to_the_main_files_in_name_order() {
        let (_dir, path) = fleet(
            "[[shards]]\nname = \"main\"\nurl = \"mysql://m@h/\"\n",
            &[
                (
                    "b.toml",
                    "[[shards]]\nname = \"b-{1..2}\"\nurl = \"mysql://m@b/\"\n",
                ),
                (
                    "a.toml",
                    "[[shards]]\nname = \"a\"\nurl = \"mysql://m@a/\"\n\
                     [[silences]]\ncolumns = [\"a.*.*\"]\nuntil = \"2999-01-01T00:00:00Z\"\nreason = \"r\"\n",
                ),
            ],
        );
        let settings =
            super::super::load_with_env(&path, Some(Default::default())).expect("settings");
        let names: Vec<&str> = settings.shards.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["main", "a", "b-1", "b-2"]);
        assert_eq!(settings.policy.silences.len(), 1);
    }

    #[test]
    fn problems_of_every_file_are_listed_together_naming_the_file() {
        let (_dir, path) = fleet(
            "[[shards]]\nname = \"x\"\nurl = \"mysql://m@h/\"\n",
            &[
                (
                    "a.toml",
                    "[server]\nlisten = \"0.0.0.0:1\"\n[[shards]]\nname = \"x\"\nurl = \"mysql://m@a/\"\n",
                ),
                ("b.toml", "[[shards]]\nname = \"y\"\n"),
            ],
        );
        let err =
            super::super::load_with_env(&path, Some(Default::default())).expect_err("problems");
        let super::super::ConfigError::Invalid { problems, .. } = err else {
            panic!("{err}");
        };
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "conf.d/a.toml: shards[0].name: shard name \"x\" is used twice",
                "conf.d/b.toml: shards[0].url: is missing",
                &format!("conf.d/a.toml: server: {NOT_ALLOWED}"),
            ]
        );
    }

    #[test]
    fn an_included_file_over_the_size_limit_is_refused_by_name_unread() {
        let (dir, path) = fleet(
            "[[shards]]\nname = \"x\"\nurl = \"mysql://m@h/\"\n",
            &[("a.toml", "")],
        );
        let huge = std::fs::File::create(dir.path().join("conf.d/huge.toml")).expect("create");
        // Sparse: 512 MiB that take no disk, and would take 1.5 GiB to parse.
        huge.set_len(512 * 1024 * 1024).expect("size");
        let err =
            super::super::load_with_env(&path, Some(Default::default())).expect_err("problems");
        let super::super::ConfigError::Invalid { problems, .. } = err else {
            panic!("{err}");
        };
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "include.files[0]: cannot read conf.d/huge.toml: 536870912 bytes, over the limit of 4 MiB for a configuration file"
            ]
        );
    }

    #[test]
    fn a_main_file_over_the_size_limit_is_refused_by_name_unread() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("headroom.toml");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(512 * 1024 * 1024).expect("size");
        let err =
            super::super::load_with_env(&path, Some(Default::default())).expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read configuration {}: 536870912 bytes, over the limit of 4 MiB for a configuration file",
                path.display()
            )
        );
    }
}
