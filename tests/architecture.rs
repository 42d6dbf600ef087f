//! Checks on the shape of the code, run with the suite so the layering stays as ARCHITECTURE.md
//! describes it:
//! - no import cycles: at every level of the module tree, the sibling modules that use one
//!   another (through `crate::…`, `super::…` or `self::…` paths, re-exports followed to the
//!   module that defines the item) form no cycle;
//! - no function in `src/` longer than 100 lines, so every piece of logic has a name and a size
//!   a reader can hold.
//!
//! Both read the source as text: comments and string literals are blanked first, then paths are
//! picked out of `use` trees and code. That is exact enough for this crate's style and needs no
//! parser dependency; the synthetic trees at the bottom show what each check catches.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The longest a function may be, in lines from its `fn` line to its closing brace.
const MAX_FUNCTION_LINES: usize = 100;

#[test]
fn modules_import_no_module_that_imports_them_back() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let cycles = find_cycles(&ModuleTree::read(&source));
    assert!(
        cycles.is_empty(),
        "import cycles between sibling modules (break each by moving the shared item to a \
         module both can use):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn no_function_in_src_is_longer_than_100_lines() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let long = long_functions(&ModuleTree::read(&source));
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them along their steps):\n{}",
        long.join("\n")
    );
}

/// A module: the file that holds it and its path from the crate root (`detect::engine`).
struct ModuleFile {
    path: Vec<String>,
    /// The file as messages name it: relative to the crate's directory (`src/app.rs`).
    file: String,
    /// The file's text with comments and string literals blanked (lines kept in place).
    code: String,
}

struct ModuleTree {
    files: Vec<ModuleFile>,
    /// Every module path, inline ones (`mod tests { … }`) included.
    modules: BTreeSet<Vec<String>>,
    /// `pub use` re-exports: (module, exported name) → the path it stands for.
    reexports: BTreeMap<(Vec<String>, String), Vec<String>>,
}

impl ModuleTree {
    /// Reads the library crate rooted at `src/lib.rs` (the binary's `main.rs` only calls it).
    fn read(source: &Path) -> ModuleTree {
        let mut files = Vec::new();
        collect_files(source, source, &mut files);
        assert!(
            files.iter().any(|f| f.path.is_empty()),
            "no lib.rs under {}",
            source.display()
        );
        let mut tree = ModuleTree {
            files,
            modules: BTreeSet::new(),
            reexports: BTreeMap::new(),
        };
        for file in &tree.files {
            tree.modules.insert(file.path.clone());
            for (inline, _) in inline_modules(&file.code, &file.path) {
                tree.modules.insert(inline);
            }
        }
        let mut reexports = BTreeMap::new();
        for file in &tree.files {
            for (statement, line) in use_statements(&file.code) {
                let module = module_at(&file.code, &file.path, line);
                let Some(rest) = statement.strip_prefix("pub") else {
                    continue;
                };
                let rest = rest.trim_start();
                let rest = rest
                    .strip_prefix("(crate)")
                    .or_else(|| rest.strip_prefix("(super)"))
                    .unwrap_or(rest)
                    .trim_start();
                let Some(tree_text) = rest.strip_prefix("use") else {
                    continue;
                };
                for path in expand_use_tree(tree_text) {
                    let Some(name) = path.last().cloned() else {
                        continue;
                    };
                    if let Some(absolute) = tree.absolute(&module, &path) {
                        reexports.insert((module.clone(), name), absolute);
                    }
                }
            }
        }
        tree.reexports = reexports;
        tree
    }

    /// Turns a path written in `module` into one from the crate root, or `None` for a path into
    /// another crate (`std::…`, `anyhow::…`).
    fn absolute(&self, module: &[String], path: &[String]) -> Option<Vec<String>> {
        let mut base: Vec<String> = module.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            // A bare first segment is this crate's only when it names a child module
            // (2018 paths); anything else is another crate or a local item.
            Some(first) => {
                let mut child = module.to_vec();
                child.push(first.to_string());
                if !self.modules.contains(&child) {
                    return None;
                }
            }
            None => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module that defines what `path` (from the crate root) names: the longest module
    /// prefix, with `pub use` re-exports followed to where the item really lives.
    fn defining_module(&self, path: &[String]) -> Vec<String> {
        let mut path = path.to_vec();
        for _ in 0..16 {
            let mut module = path.clone();
            while !self.modules.contains(&module) {
                module.pop();
            }
            let Some(next) = path.get(module.len()) else {
                return module;
            };
            match self.reexports.get(&(module.clone(), next.clone())) {
                Some(target) if !target.starts_with(&path[..=module.len()]) => {
                    let mut followed = target.clone();
                    followed.extend(path[module.len() + 1..].iter().cloned());
                    path = followed;
                }
                _ => return module,
            }
        }
        path
    }
}

/// Reads every `.rs` file under `dir` as a module of the crate rooted at `source`.
fn collect_files(source: &Path, dir: &Path, files: &mut Vec<ModuleFile>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(source, &entry, files);
            continue;
        }
        if entry.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let relative = entry.strip_prefix(source).expect("under src");
        let mut path: Vec<String> = relative
            .iter()
            .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        match path.last().map(String::as_str) {
            Some("main") if path.len() == 1 => continue,
            Some("lib") if path.len() == 1 => path.clear(),
            Some("mod") => {
                path.pop();
            }
            _ => {}
        }
        let text = fs::read_to_string(&entry)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", entry.display()));
        let shown = entry
            .strip_prefix(source.parent().unwrap_or(source))
            .unwrap_or(&entry);
        files.push(ModuleFile {
            path,
            file: shown.display().to_string(),
            code: blank_comments_and_strings(&text),
        });
    }
}

/// Replaces comments, string literals and character literals with spaces (newlines kept), so
/// that paths in docs and messages are not read as imports and braces in them do not count.
fn blank_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || c == 'b') && is_raw_string_start(&chars, i) {
            // r"…", r#"…"#, br#"…"#: ends at a quote followed by as many hashes.
            let mut j = i;
            while chars[j] != 'r' {
                out.push(chars[j]);
                j += 1;
            }
            out.push('r');
            j += 1;
            let mut hashes = 0;
            while chars[j] == '#' {
                hashes += 1;
                out.push('#');
                j += 1;
            }
            out.push('"');
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && chars[j + 1..].iter().take(hashes).all(|&h| h == '#') {
                    out.push('"');
                    out.extend(std::iter::repeat_n('#', hashes));
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(chars[j]));
                j += 1;
            }
            i = j;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && is_char_literal(&chars, i) {
            out.push('\'');
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                out.push(' ');
                i += 1;
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_raw_string_start(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return false;
    }
    j += 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// `'a'`, `'\n'`, `'\u{1F600}'` are character literals; `'a` in `&'a str` is a lifetime.
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// Inline modules (`mod tests { … }`) of a file: each one's path and its byte range.
fn inline_modules(code: &str, file_module: &[String]) -> Vec<(Vec<String>, (usize, usize))> {
    let declaration = regex::Regex::new(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{").unwrap();
    let mut found = Vec::new();
    for capture in declaration.captures_iter(code) {
        let open = capture.get(0).unwrap().end() - 1;
        let close = matching_brace(code, open).unwrap_or(code.len());
        found.push((capture[1].to_string(), (open, close)));
    }
    // Nested inline modules get their enclosing ones' names in front.
    let mut modules = Vec::new();
    for (index, (name, range)) in found.iter().enumerate() {
        let mut path = file_module.to_vec();
        for (outer_name, outer) in &found[..index] {
            if outer.0 < range.0 && range.1 <= outer.1 {
                path.push(outer_name.clone());
            }
        }
        path.push(name.clone());
        modules.push((path, *range));
    }
    modules
}

/// The byte offset of the `}` that closes the `{` at `open`.
fn matching_brace(code: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (offset, byte) in code.as_bytes()[open..].iter().enumerate() {
        match byte {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + offset);
                }
            }
            _ => {}
        }
    }
    None
}

/// The module whose scope holds byte `offset` of a file: the innermost inline module around
/// it, or the file's own module.
fn module_at(code: &str, file_module: &[String], offset: usize) -> Vec<String> {
    inline_modules(code, file_module)
        .into_iter()
        .filter(|(_, (open, close))| *open < offset && offset < *close)
        .max_by_key(|(path, _)| path.len())
        .map_or_else(|| file_module.to_vec(), |(path, _)| path)
}

/// Every `use` declaration: its text from its visibility to the `;` (whitespace folded) and
/// the byte offset where it starts.
fn use_statements(code: &str) -> Vec<(String, usize)> {
    let start = regex::Regex::new(r"(?:^|[;{}\]])\s*((?:pub(?:\s*\([a-z]+\))?\s+)?use\s)").unwrap();
    let mut statements = Vec::new();
    for capture in start.captures_iter(code) {
        let begin = capture.get(1).unwrap().start();
        let end = code[begin..].find(';').map_or(code.len(), |e| begin + e);
        let text: String = code[begin..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        statements.push((text, begin));
    }
    statements
}

/// `a::{b, c::{d, e as f}, self}` → `a::b`, `a::c::d`, `a::c::e`, `a` (as segment lists). Globs
/// keep the path up to the glob.
fn expand_use_tree(text: &str) -> Vec<Vec<String>> {
    fn expand(text: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let text = text.trim();
        if let Some(open) = text.find('{') {
            let head: Vec<String> = segments(&text[..open]);
            let mut base = prefix.to_vec();
            base.extend(head);
            let inner = &text[open + 1..text.rfind('}').unwrap_or(text.len())];
            for part in split_top_level(inner) {
                expand(part, &base, out);
            }
            return;
        }
        let without_alias = text.split(" as ").next().unwrap_or(text);
        let mut path = prefix.to_vec();
        for segment in segments(without_alias) {
            if segment != "self" || path.is_empty() {
                path.push(segment);
            }
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    let mut out = Vec::new();
    expand(text, &[], &mut out);
    out
}

fn segments(text: &str) -> Vec<String> {
    text.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
        .map(str::to_string)
        .collect()
}

/// Splits `a, b::{c, d}, e` at the commas outside braces.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (index, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// One use of a module by another, with where it was seen.
struct Edge {
    from: Vec<String>,
    to: Vec<String>,
    seen_at: String,
}

/// Every use of one of this crate's modules: `use` trees and paths in code that start with
/// `crate`, `super` or `self`.
fn edges(tree: &ModuleTree) -> Vec<Edge> {
    let in_code =
        regex::Regex::new(r"\b(?:crate|super|self)(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+").unwrap();
    let mut edges = Vec::new();
    for file in &tree.files {
        let line_of = |offset: usize| file.code[..offset].matches('\n').count() + 1;
        let mut paths: Vec<(Vec<String>, usize)> = Vec::new();
        for (statement, offset) in use_statements(&file.code) {
            let tree_text = &statement[statement.find("use ").unwrap() + 4..];
            for path in expand_use_tree(tree_text) {
                paths.push((path, offset));
            }
        }
        for found in in_code.find_iter(&file.code) {
            paths.push((segments(found.as_str()), found.start()));
        }
        for (path, offset) in paths {
            let scope = module_at(&file.code, &file.path, offset);
            let Some(absolute) = tree.absolute(&scope, &path) else {
                continue;
            };
            edges.push(Edge {
                from: file.path.clone(),
                to: tree.defining_module(&absolute),
                seen_at: format!("{}:{} `{}`", file.file, line_of(offset), path.join("::")),
            });
        }
    }
    edges
}

/// The cycles among sibling modules, one line each, with a use that makes each step.
fn find_cycles(tree: &ModuleTree) -> Vec<String> {
    // parent → (child a → child b → an example use)
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeMap<String, String>>> =
        BTreeMap::new();
    for edge in edges(tree) {
        let common = edge
            .from
            .iter()
            .zip(&edge.to)
            .take_while(|(a, b)| a == b)
            .count();
        // A module using its own ancestor or descendant is parent/child, not a sibling cycle.
        if common == edge.from.len() || common == edge.to.len() {
            continue;
        }
        graphs
            .entry(edge.from[..common].to_vec())
            .or_default()
            .entry(edge.from[common].clone())
            .or_default()
            .entry(edge.to[common].clone())
            .or_insert(edge.seen_at);
    }
    let mut cycles = Vec::new();
    for (parent, graph) in &graphs {
        let mut reported: BTreeSet<BTreeSet<String>> = BTreeSet::new();
        for start in graph.keys() {
            let Some(cycle) = shortest_cycle_through(graph, start) else {
                continue;
            };
            if !reported.insert(cycle.iter().cloned().collect()) {
                continue;
            }
            let place = if parent.is_empty() {
                "crate".to_string()
            } else {
                format!("crate::{}", parent.join("::"))
            };
            let mut line = format!("  in {place}: {}", cycle.join(" -> "));
            line.push_str(&format!(" -> {}", cycle[0]));
            for (step, from) in cycle.iter().enumerate() {
                let to = &cycle[(step + 1) % cycle.len()];
                let _ = write!(line, "\n      {from} -> {to}: {}", graph[from][to]);
            }
            cycles.push(line);
        }
    }
    cycles
}

/// The shortest path from `start` back to itself (breadth-first), as the modules on it.
fn shortest_cycle_through(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
    start: &str,
) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for node in frontier {
            for target in graph.get(node).into_iter().flat_map(|t| t.keys()) {
                if target == start {
                    let mut cycle = vec![node.to_string()];
                    let mut at = node;
                    while at != start {
                        at = came_from[at];
                        cycle.push(at.to_string());
                    }
                    cycle.reverse();
                    return Some(cycle);
                }
                if !came_from.contains_key(target.as_str()) {
                    came_from.insert(target, node);
                    next.push(target.as_str());
                }
            }
        }
        frontier = next;
    }
    None
}

/// Functions longer than [`MAX_FUNCTION_LINES`], one line each: `file:line name (N lines)`.
fn long_functions(tree: &ModuleTree) -> Vec<String> {
    let declaration = regex::Regex::new(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    let mut long = Vec::new();
    for file in &tree.files {
        for capture in declaration.captures_iter(&file.code) {
            let start = capture.get(0).unwrap().start();
            // The body opens at the first `{` before any `;` (a `;` first is a declaration
            // without a body, as in a trait).
            let rest = &file.code[start..];
            let Some(open) = rest
                .find(['{', ';'])
                .filter(|&i| rest.as_bytes()[i] == b'{')
            else {
                continue;
            };
            let Some(close) = matching_brace(&file.code, start + open) else {
                continue;
            };
            let first = file.code[..start].matches('\n').count() + 1;
            let lines = file.code[start..close].matches('\n').count() + 1;
            if lines > MAX_FUNCTION_LINES {
                long.push(format!(
                    "  {}:{first} {} ({lines} lines)",
                    file.file, &capture[1]
                ));
            }
        }
    }
    long
}

/// The checks themselves, on small trees made for the purpose.
mod checks {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, ModuleTree) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let tree = ModuleTree::read(dir.path());
        (dir, tree)
    }

    #[test]
    fn two_modules_that_use_each_other_are_a_cycle() {
        let (_dir, tree) = tree(&[
            ("lib.rs", "pub mod app;\npub mod serve;\n"),
            ("app.rs", "use crate::serve::run;\npub fn select() {}\n"),
            ("serve.rs", "pub fn run() { crate::app::select(); }\n"),
        ]);
        let cycles = find_cycles(&tree);
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(
            cycles[0].contains("in crate: app -> serve -> app"),
            "{}",
            cycles[0]
        );
        assert!(
            cycles[0].contains("app.rs:1 `crate::serve::run`"),
            "{}",
            cycles[0]
        );
        assert!(
            cycles[0].contains("serve.rs:1 `crate::app::select`"),
            "{}",
            cycles[0]
        );
    }

    #[test]
    fn a_cycle_of_three_through_a_re_export_and_super_is_found() {
        let (_dir, tree) = tree(&[
            ("lib.rs", "pub mod detect;\n"),
            (
                "detect/mod.rs",
                "pub mod engine;\npub mod decode;\npub mod rules;\npub use engine::Detector;\n",
            ),
            (
                "detect/rules.rs",
                "use super::decode::Decoder;\npub struct Rule;\n",
            ),
            (
                "detect/decode.rs",
                "use crate::detect::Detector;\npub enum Decoder {}\n",
            ),
            (
                "detect/engine.rs",
                "use super::{rules::{self, Rule}};\npub struct Detector(Vec<Rule>);\n",
            ),
        ]);
        let cycles = find_cycles(&tree);
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(cycles[0].contains("in crate::detect:"), "{}", cycles[0]);
        for module in ["decode", "engine", "rules"] {
            assert!(cycles[0].contains(module), "{}", cycles[0]);
        }
    }

    #[test]
    fn parents_children_tests_and_text_are_not_cycles() {
        let (_dir, tree) = tree(&[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            (
                "a/mod.rs",
                "mod inner;\npub use inner::Thing;\n/// Unlike [`crate::b::B`], see \"crate::b\".\n\
                 pub fn f() { inner::g(); let s = \"crate::b::B\"; }\n",
            ),
            (
                "a/inner.rs",
                "use super::f;\npub struct Thing;\npub fn g() {}\n",
            ),
            (
                "b.rs",
                "use crate::a::Thing;\npub struct B;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
            ),
        ]);
        assert_eq!(find_cycles(&tree), Vec::<String>::new());
    }

    #[test]
    fn long_functions_are_named_with_their_length() {
        let body = "    let x = 1;\n".repeat(MAX_FUNCTION_LINES);
        let (_dir, tree) = tree(&[(
            "lib.rs",
            &format!(
                "pub fn short() {{\n    let s = \"{{\";\n}}\n\npub fn long() {{\n{body}}}\n\
                 pub trait T {{\n    fn declared(&self);\n}}\n"
            ),
        )]);
        let long = long_functions(&tree);
        assert_eq!(long.len(), 1, "{long:?}");
        assert!(
            long[0].ends_with(&format!("lib.rs:5 long ({} lines)", MAX_FUNCTION_LINES + 2)),
            "{}",
            long[0]
        );
    }
}
