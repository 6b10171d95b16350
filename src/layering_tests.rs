//! The layering rules of `docs/architecture.md`, checked on the source: every `crate::`, `super::`
//! and `self::` path in non-test code of `src/` (the binaries aside) is resolved to the module it
//! names, and
//!
//! * a top-level folder only reaches folders below it in [`LAYERS`];
//! * inside any folder, the files and subfolders that reach one another form no circle.
//!
//! Comments and `#[cfg(test)]` code are left out (tests may reach anything); so is `fuzzing/`,
//! test support that sits on top of everything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules from the bottom up; a module may use only those before it.
/// Modules on one line are peers and must not use one another.
const LAYERS: &[&[&str]] = &[
    &["proto"],
    &["time"],
    &["random"],
    &["auth"],
    &["policy"],
    &["alloc"],
    &["server"],
    &["client_core"],
    &["tls"],
    &["io", "client"],
    &["http"],
    &["config"],
    &["fleet"],
    &["daemon"],
    &["fuzzing", "testing"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// A module path from the crate root, e.g. `["proto", "stun", "message"]`.
type ModPath = Vec<String>;

struct Source {
    /// A folder's `mod.rs` (and `lib.rs`) is the folder's module: `super` and `self` resolve
    /// alike for it and for a file.
    module: ModPath,
    code: String,
}

fn collect(dir: &Path, prefix: &[String], out: &mut Vec<Source>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        if path.is_dir() {
            if prefix.is_empty() && name == "bin" {
                continue;
            }
            let mut sub = prefix.to_vec();
            sub.push(name);
            collect(&path, &sub, out);
            continue;
        }
        let Some(stem) = name.strip_suffix(".rs") else { continue };
        // Test files (`tests.rs`, `*_tests.rs`, anything under a `tests/` folder) may reach anything.
        if stem == "tests" || stem.ends_with("_tests") || prefix.iter().any(|p| p == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let module = match stem {
            "mod" | "lib" => prefix.to_vec(),
            _ => {
                let mut m = prefix.to_vec();
                m.push(stem.to_owned());
                m
            }
        };
        out.push(Source { module, code: strip(&text) });
    }
}

/// The code without comments and without `#[cfg(test)]` items.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_test = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim();
        if skip_depth.is_none() && trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let opens = code.matches('{').count() as i32;
        let closes = code.matches('}').count() as i32;
        if pending_test && !trimmed.is_empty() && !trimmed.starts_with("#[") {
            pending_test = false;
            if opens > closes {
                skip_depth = Some(depth);
            }
            depth += opens - closes;
            continue;
        }
        depth += opens - closes;
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Every path that starts with `crate::`, `super::` or `self::`, `use` groups expanded, as written.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        if starts_word {
            for root in ["crate::", "super::", "self::"] {
                if bytes[i..].starts_with(&root.chars().collect::<Vec<_>>()) {
                    let (tree, end) = read_tree(&bytes, i);
                    expand(&tree, &mut Vec::new(), &mut found);
                    i = end;
                    break;
                }
            }
        }
        i += 1;
    }
    found
}

/// A use tree: segments, then optionally a `{…}` group of subtrees.
#[derive(Debug)]
struct Tree {
    segments: Vec<String>,
    group: Vec<Tree>,
}

fn read_tree(chars: &[char], mut i: usize) -> (Tree, usize) {
    let mut tree = Tree { segments: Vec::new(), group: Vec::new() };
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return (tree, i + 1);
                }
                let (sub, end) = read_tree(chars, i);
                tree.group.push(sub);
                i = end;
            }
        }
        let start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if start == i {
            return (tree, i);
        }
        tree.segments.push(chars[start..i].iter().collect());
        if chars[i..].starts_with(&[':', ':']) {
            i += 2;
        } else {
            return (tree, i);
        }
    }
}

fn expand(tree: &Tree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let len = prefix.len();
    prefix.extend(tree.segments.iter().cloned());
    if tree.group.is_empty() {
        out.push(prefix.clone());
    }
    for sub in &tree.group {
        expand(sub, prefix, out);
    }
    prefix.truncate(len);
}

/// The absolute module path `path` names from `source`.
fn resolve(source: &Source, path: &[String]) -> ModPath {
    let mut base: ModPath = source.module.clone();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            base.pop();
            rest = &rest[1..];
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => {}
    }
    base.extend(rest.iter().cloned());
    base
}

struct Graph {
    modules: BTreeSet<ModPath>,
    /// `(parent, from child, to child)` for every reference between siblings.
    edges: BTreeSet<(ModPath, String, String)>,
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    collect(&root, &[], &mut sources);
    let modules: BTreeSet<ModPath> =
        sources.iter().flat_map(|s| (1..=s.module.len()).map(|n| s.module[..n].to_vec()).collect::<Vec<_>>()).collect();
    let mut edges = BTreeSet::new();
    for source in &sources {
        for path in paths(&source.code) {
            let target = resolve(source, &path);
            let from = &source.module;
            let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
            let (Some(a), Some(b)) = (from.get(common), target.get(common)) else { continue };
            let parent = from[..common].to_vec();
            let mut sibling = parent.clone();
            sibling.push(b.clone());
            if modules.contains(&sibling) {
                edges.insert((parent, a.clone(), b.clone()));
            }
        }
    }
    Graph { modules, edges }
}

#[test]
fn top_level_modules_only_reach_down() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (parent, from, to) in &graph.edges {
        if !parent.is_empty() || from == "fuzzing" {
            continue;
        }
        match (rank(from), rank(to)) {
            (Some(a), Some(b)) if b < a => {}
            _ => wrong.push(format!("{from} -> {to}")),
        }
    }
    assert!(wrong.is_empty(), "imports that point up or sideways (see LAYERS): {wrong:#?}");
    let top: BTreeSet<&str> = graph.modules.iter().filter(|m| m.len() == 1).map(|m| m[0].as_str()).collect();
    let unranked: Vec<&&str> = top.iter().filter(|m| rank(m).is_none() && **m != "lib").collect();
    assert!(unranked.is_empty(), "top-level modules missing from LAYERS: {unranked:?}");
}

#[test]
fn no_circles_between_the_files_of_a_folder() {
    let graph = graph();
    let mut by_parent: BTreeMap<&ModPath, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for (parent, from, to) in &graph.edges {
        by_parent.entry(parent).or_default().entry(from.as_str()).or_default().insert(to.as_str());
    }
    let mut circles = Vec::new();
    for (parent, edges) in &by_parent {
        for &start in edges.keys() {
            // Depth-first from `start`: a path back to it is a circle.
            let mut stack = vec![(start, vec![start])];
            let mut seen = BTreeSet::new();
            while let Some((node, trail)) = stack.pop() {
                for &next in edges.get(node).into_iter().flatten() {
                    if next == start {
                        let mut circle = trail.clone();
                        circle.push(start);
                        circles.push(format!("{}: {}", parent.join("/"), circle.join(" -> ")));
                    } else if seen.insert(next) {
                        let mut t = trail.clone();
                        t.push(next);
                        stack.push((next, t));
                    }
                }
            }
        }
    }
    assert!(circles.is_empty(), "files that import each other: {circles:#?}");
}

#[test]
fn the_checker_sees_paths_and_groups() {
    let code = strip(
        "use crate::alloc::{FiveTuple, Millis};\nuse super::{tcp::Connection, stats};\n// use crate::io;\n\
         fn f() { crate::server::Server::new(); }\n#[cfg(test)]\nmod tests {\n    use crate::config;\n}\n",
    );
    let found = paths(&code);
    let joined: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "crate::alloc::FiveTuple",
            "crate::alloc::Millis",
            "super::tcp::Connection",
            "super::stats",
            "crate::server::Server::new"
        ]
    );
    let source = Source { module: vec!["io".into(), "tls".into()], code: String::new() };
    assert_eq!(resolve(&source, &["super".into(), "tcp".into()]), ["io", "tcp"]);
    let folder = Source { module: vec!["io".into()], code: String::new() };
    assert_eq!(resolve(&folder, &["self".into(), "tcp".into()]), ["io", "tcp"]);
}
