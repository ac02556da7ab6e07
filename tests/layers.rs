//! The layer check: every top-level module of `src/` imports only from modules in layers below
//! its own, as the "Layers" table of ARCHITECTURE.md states them. A new import cycle between
//! top-level modules, an upward import, or a top-level module missing from the table fails this
//! test with the file and the path that broke the rule.
//!
//! Imports are the `crate::<module>` paths in non-test code (`use` items and inline paths);
//! comments and `#[cfg(test)]` items are ignored, since tests may reach across layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `module -> layer` from ARCHITECTURE.md: rows `| 3 | `config`, `interchange` | ... |` under
/// the `## Layers` heading.
fn layers() -> BTreeMap<String, u32> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md");
    let section = doc
        .split("\n## Layers")
        .nth(1)
        .expect("ARCHITECTURE.md has a `## Layers` section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(Ok(layer)) = cells.get(1).map(|c| c.parse::<u32>()) else {
            continue;
        };
        for module in cells[2].split('`').skip(1).step_by(2) {
            let module = module.trim_start_matches("src/").trim_end_matches('/');
            assert!(
                out.insert(module.to_owned(), layer).is_none(),
                "{module} is listed twice in the Layers table"
            );
        }
    }
    assert!(
        !out.is_empty(),
        "the Layers table of ARCHITECTURE.md is empty"
    );
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without line comments, block comments and `#[cfg(test)]` items (an item ends at
/// the `;` or the brace that closes its body). String literals are skipped over so braces in
/// them do not count.
fn production_code(src: &str) -> String {
    let mut no_comments = String::with_capacity(src.len());
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            i = src[i..].find("*/").map_or(bytes.len(), |j| i + j + 2);
        } else if bytes[i] == b'"' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            // keep the literal, without its content
            no_comments.push_str("\"\"");
            let _ = start;
        } else {
            no_comments.push(bytes[i] as char);
            i += 1;
        }
    }
    let mut out = String::with_capacity(no_comments.len());
    let mut rest = no_comments.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(open)) if semi < open => semi + 1,
            (_, Some(open)) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (j, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(semi), None) => semi + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// `(module it names, path as written)` for every `crate::<module>` in the code.
fn crate_paths(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at + "crate::".len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let is_path = before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if is_path && !name.is_empty() {
            let shown: String = tail.chars().take(60).collect();
            out.push((
                name,
                format!("crate::{}", shown.lines().next().unwrap_or("")),
            ));
        }
        rest = tail;
    }
    out
}

#[test]
fn top_level_modules_import_only_from_lower_layers() {
    let layers = layers();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("file name")
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        modules.insert(top.clone());
        let Some(&own) = layers.get(&top) else {
            problems.push(format!(
                "src/{top}: not in the Layers table of ARCHITECTURE.md"
            ));
            continue;
        };
        let code = production_code(&std::fs::read_to_string(file).expect("read"));
        for (target, path) in crate_paths(&code) {
            if target == top {
                continue;
            }
            match layers.get(&target) {
                Some(&layer) if layer < own => {}
                Some(&layer) => problems.push(format!(
                    "{}: `{path}` imports `{target}` (layer {layer}) from `{top}` (layer {own}): \
                     a module may import only from lower layers",
                    rel.display()
                )),
                None => problems.push(format!(
                    "{}: `{path}`: `{target}` is not in the Layers table",
                    rel.display()
                )),
            }
        }
    }
    for listed in layers.keys() {
        if !modules.contains(listed) {
            problems.push(format!(
                "ARCHITECTURE.md lists `{listed}`, which is not a module of src/"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "layer violations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_comments_strings_and_tests_for_what_they_are() {
    let code = production_code(
        "use crate::a::X; // crate::b\n/* crate::c */ let s = \"crate::d {\";\n\
         #[cfg(test)]\nmod tests { use crate::e; fn f() { {} } }\nfn g() { crate::f::h(); }\n\
         #[cfg(test)]\nmod conformance;\nmycrate::g::x();",
    );
    let names: Vec<String> = crate_paths(&code).into_iter().map(|(m, _)| m).collect();
    assert_eq!(names, ["a", "f"]);
}
