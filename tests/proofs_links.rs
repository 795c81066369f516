//! Keeps proofs/ from rotting: every test named on a "Checked by:" line must
//! exist, every proposition must name one, and every proofs/ file the code
//! cites must exist. Every code citation (`file.rs:Type::function`,
//! `file.rs:function`, `path/file.rs::test`) and every "spec test `name`"
//! in proofs/ and in the comments of src/ must name code that exists.

use std::fs;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `file::test` names on the "Checked by:" paragraph of a proof.
fn checked_by(proof: &str) -> Vec<String> {
    let Some(start) = proof.find("**Checked by:**") else {
        return Vec::new();
    };
    let paragraph = proof[start..].split("\n\n").next().unwrap_or_default();
    paragraph
        .trim_start_matches("**Checked by:**")
        .split([',', '\n'])
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why `name` (`path/to/file.rs::test_fn`) does not name an existing test, if it does not.
fn dangling(name: &str) -> Option<String> {
    let Some((file, function)) = name.split_once("::") else {
        return Some(format!("{name}: not of the form file.rs::test_name"));
    };
    let Ok(source) = fs::read_to_string(Path::new(ROOT).join(file)) else {
        return Some(format!("{name}: no file {file}"));
    };
    let defined = source.lines().any(|line| {
        let line = line.trim_start();
        let line = line.strip_prefix("async ").unwrap_or(line);
        line.strip_prefix("fn ").is_some_and(|rest| {
            rest.starts_with(function) && rest[function.len()..].starts_with(['(', '<'])
        })
    });
    (!defined).then(|| format!("{name}: no fn {function} in {file}"))
}

fn proposition_files() -> Vec<(String, String)> {
    let mut files: Vec<_> = fs::read_dir(Path::new(ROOT).join("proofs"))
        .expect("proofs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with('P') && name.ends_with(".md")
        })
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_named_checker_exists() {
    let files = proposition_files();
    assert!(files.len() >= 9, "expected P1..P9, found {}", files.len());
    let mut problems = Vec::new();
    for (file, text) in &files {
        let names = checked_by(text);
        if names.is_empty() {
            problems.push(format!("{file}: no Checked by: line"));
        }
        problems.extend(
            names
                .iter()
                .filter_map(|name| dangling(name))
                .map(|p| format!("{file}: {p}")),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_proof_the_code_cites_exists() {
    let mut problems = Vec::new();
    for entry in fs::read_dir(Path::new(ROOT).join("src")).unwrap() {
        let path = entry.unwrap().path();
        let source = fs::read_to_string(&path).unwrap();
        for (at, _) in source.match_indices("proofs/") {
            let cited: String = source[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || "/-._".contains(*c))
                .collect();
            let cited = cited.trim_end_matches('.');
            if cited.ends_with(".md") && !Path::new(ROOT).join(cited).exists() {
                problems.push(format!("{}: cites missing {cited}", path.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Where a bare file name in a citation (`table.rs`) may live: the
/// library first, then its tests, then the `src/` and `tests/` of every
/// other workspace member (the harness, the tools, other backends).
fn source_dirs() -> Vec<String> {
    let manifest = fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let members = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or("", |(list, _)| list);
    let mut dirs = vec![
        "src".to_owned(),
        "tests".to_owned(),
        "tests/common".to_owned(),
    ];
    for member in members.split(',').map(|m| m.trim().trim_matches('"')) {
        if !member.is_empty() && member != "." {
            dirs.push(format!("{member}/src"));
            dirs.push(format!("{member}/tests"));
        }
    }
    dirs
}

/// The source of the cited `file`: a path from the root, or a bare name
/// looked up in [`source_dirs`].
fn source_of(file: &str) -> Option<String> {
    let root = Path::new(ROOT);
    if file.contains('/') {
        return fs::read_to_string(root.join(file)).ok();
    }
    source_dirs()
        .iter()
        .find_map(|dir| fs::read_to_string(root.join(dir).join(file)).ok())
}

/// Whether `source` defines `fn name` (then `(` or `<`).
fn defines_fn(source: &str, name: &str) -> bool {
    source.match_indices("fn ").any(|(at, _)| {
        let before = source[..at].chars().next_back();
        let rest = &source[at + 3..];
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && rest.starts_with(name)
            && rest[name.len()..].starts_with(['(', '<'])
    })
}

/// The bodies of the `impl` blocks of `source` whose self type is `ty`,
/// and of the item named `ty` itself (a trait's default methods).
fn bodies_of<'a>(source: &'a str, ty: &str) -> Vec<&'a str> {
    let mut bodies = Vec::new();
    for (at, _) in source
        .match_indices("impl")
        .chain(source.match_indices("trait "))
    {
        let line_start = source[..at].rfind('\n').map_or(0, |n| n + 1);
        let lead = source[line_start..at].trim();
        if !(lead.is_empty() || lead == "pub" || lead == "unsafe") {
            continue;
        }
        let Some(open) = source[at..].find('{').map(|n| at + n) else {
            continue;
        };
        let header = &source[at..open];
        let header = header.split("where").next().unwrap_or(header);
        let self_type = match header.rsplit_once(" for ") {
            Some((_, after)) => after,
            None => header
                .trim_start_matches("impl")
                .trim_start_matches("trait ")
                .trim_start(),
        };
        // Skip the impl's own generics: `impl<K, S> Table<K, S>`.
        let self_type = if let Some(generics) = self_type.strip_prefix('<') {
            let mut depth = 1;
            let end = generics
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '<' => 1,
                        '>' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(generics.len(), |(n, _)| n + 1);
            &generics[end..]
        } else {
            self_type
        };
        let name: String = self_type
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name != ty {
            continue;
        }
        let mut depth = 0;
        let close = source[open..]
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(source.len(), |(n, _)| open + n);
        bodies.push(&source[open..close]);
    }
    bodies
}

/// Why the citation `file.rs:Type::function` or `file.rs:function` does
/// not name existing code, if it does not.
fn unresolved(citation: &str) -> Option<String> {
    let Some((file, item)) = citation.split_once(':') else {
        return Some(format!("{citation}: not of the form file.rs:item"));
    };
    let Some(source) = source_of(file) else {
        return Some(format!("{citation}: no file {file}"));
    };
    let found = match item.split_once("::") {
        Some((ty, function)) => bodies_of(&source, ty)
            .iter()
            .any(|body| defines_fn(body, function)),
        None => defines_fn(&source, item),
    };
    (!found).then(|| format!("{citation}: no fn {item} in {file}"))
}

/// The code citations in `text`: every backquoted `file.rs:item`, and
/// every backquoted `::function` that continues the type of the citation
/// before it (`recorder.rs:AsyncTasksRecorder::launch`, `::launch_block`).
fn citations(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut last_type: Option<String> = None;
    for quoted in text.split('`').skip(1).step_by(2) {
        let is_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || "_:/.-".contains(c))
        };
        if let Some(function) = quoted.strip_prefix("::") {
            if let (Some(ty), true) = (&last_type, is_name(function)) {
                found.push(format!("{ty}::{function}"));
            }
            continue;
        }
        let Some((file, item)) = quoted.split_once(".rs:") else {
            continue;
        };
        if item.starts_with(':') || !is_name(file) || !is_name(item) {
            // `file.rs::test` is a test name, checked by `dangling`.
            continue;
        }
        let citation = format!("{file}.rs:{item}");
        last_type = item
            .rsplit_once("::")
            .map(|(ty, _)| format!("{file}.rs:{ty}"));
        found.push(citation);
    }
    found
}

/// The test names in `text`: every backquoted `path/file.rs::test`.
fn test_names(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| {
            quoted.contains(".rs::")
                && !quoted.contains(' ')
                && !quoted.ends_with('_')
                && !quoted.ends_with("::")
        })
        .map(str::to_owned)
        .collect()
}

/// The names in `text` cited as "spec test `name`" (or "`spec.rs` test `name`").
fn spec_tests(text: &str) -> Vec<String> {
    let text = text.replace("`spec.rs` test", "spec test");
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.match_indices("spec test `")
        .filter_map(|(at, prefix)| {
            let rest = &flat[at + prefix.len()..];
            rest.split_once('`').map(|(name, _)| name.to_owned())
        })
        .collect()
}

/// The comment text of a Rust source: every `//` comment, joined.
fn comments(source: &str) -> String {
    source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("//"))
        .map(|comment| comment.trim_start_matches(['/', '!']))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every proofs/ file and the comments of every src/ file, by name.
fn citing_texts() -> Vec<(String, String)> {
    let mut texts = Vec::new();
    for (dir, is_code) in [("proofs", false), ("src", true)] {
        for entry in fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let text = fs::read_to_string(&path).unwrap();
            let text = if is_code { comments(&text) } else { text };
            texts.push((path.display().to_string(), text));
        }
    }
    texts.sort();
    texts
}

/// Every problem with the citations of `text`.
fn citation_problems(text: &str) -> Vec<String> {
    let spec = source_of("src/spec.rs").expect("src/spec.rs exists");
    let mut problems: Vec<String> = citations(text)
        .iter()
        .filter_map(|citation| unresolved(citation))
        .collect();
    problems.extend(test_names(text).iter().filter_map(|name| dangling(name)));
    problems.extend(
        spec_tests(text)
            .into_iter()
            .filter(|name| !defines_fn(&spec, name))
            .map(|name| format!("spec test `{name}`: no fn {name} in src/spec.rs")),
    );
    problems
}

#[test]
fn every_code_citation_resolves() {
    let mut problems = Vec::new();
    let mut resolved = 0;
    for (file, text) in citing_texts() {
        resolved += citations(&text).len() + spec_tests(&text).len() + test_names(&text).len();
        problems.extend(
            citation_problems(&text)
                .into_iter()
                .map(|p| format!("{file}: {p}")),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The proofs cite dozens; a parser that finds none proves nothing.
    assert!(resolved >= 40, "only {resolved} citations found");
}

#[test]
fn the_citation_check_reports_missing_code() {
    let text = "`table.rs:Table::apply`, `::no_such_method` and \
                `recorder.rs:AsyncTasksRecorder::launch`, `::launch_block`; \
                `table.rs:Table::no_such_fn`, `sync.rs:lock`, `sync.rs:no_such_free_fn`, \
                `nowhere.rs:f`, `spec.rs:Phase::state`, `spec.rs:Op::state`; \
                spec test `only_launch_leaves_not_found`, spec\ntest `no_such_spec_test`; \
                `tests/loom.rs::no_such_model`";
    assert_eq!(
        citations(text),
        [
            "table.rs:Table::apply",
            "table.rs:Table::no_such_method",
            "recorder.rs:AsyncTasksRecorder::launch",
            "recorder.rs:AsyncTasksRecorder::launch_block",
            "table.rs:Table::no_such_fn",
            "sync.rs:lock",
            "sync.rs:no_such_free_fn",
            "nowhere.rs:f",
            "spec.rs:Phase::state",
            "spec.rs:Op::state",
        ]
    );
    let mut problems = citation_problems(text);
    problems.sort();
    let expected = [
        "nowhere.rs:f: no file nowhere.rs",
        "spec test `no_such_spec_test`: no fn no_such_spec_test in src/spec.rs",
        "spec.rs:Op::state: no fn Op::state in spec.rs",
        "sync.rs:no_such_free_fn: no fn no_such_free_fn in sync.rs",
        "table.rs:Table::no_such_fn: no fn Table::no_such_fn in table.rs",
        "table.rs:Table::no_such_method: no fn Table::no_such_method in table.rs",
        "tests/loom.rs::no_such_model: no fn no_such_model in tests/loom.rs",
    ];
    assert_eq!(problems, expected);
    // A bare file name is looked up in the other members too.
    assert!(source_dirs().contains(&"harness/src".to_owned()));
    assert_eq!(unresolved("subject.rs:spawn_until_started"), None);
    assert!(unresolved("subject.rs:no_such_spawn").is_some());
}

#[test]
fn the_link_check_reports_a_missing_test() {
    let proof = "**Checked by:** tests/recorder.rs::no_such_test,\nsrc/spec.rs::launch_is_accepted_or_refused\n\n**Not covered.**";
    let names = checked_by(proof);
    assert_eq!(names.len(), 2);
    assert!(dangling(&names[0]).is_some());
    assert!(dangling(&names[1]).is_none());
    assert!(dangling("tests/nowhere.rs::x").is_some());
    assert!(dangling("just_a_name").is_some());
    // A prefix of a real test's name is not that test.
    assert!(dangling("src/spec.rs::launch_is_accepted").is_some());
}
