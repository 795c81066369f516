//! Keeps proofs/ from rotting: every test named on a "Checked by:" line must
//! exist, every proposition must name one, and every proofs/ file the code
//! cites must exist.

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
