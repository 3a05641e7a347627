//! The floors of the source tree (DESIGN.md, "Floors"): every `use` in `src/` points down a floor
//! or stays on its own, no import circle has more than three files, and no module imports a deep
//! item through the crate root's re-exports.
//!
//! The test reads the `use` lines and the `crate::`/`super::` paths of every file under `src/`
//! (test modules aside), resolves each path to the file that defines the item (following
//! `pub use` re-exports), and checks the graph of files. Run it alone with
//! `cargo test --test floors`; `.ci/run` runs it with the whole suite.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The floor of a file, from the ground up; `None` for the crate root and the fuzzing entry points,
/// which sit above everything.
fn floor(file: &str) -> Option<u8> {
    const FLOORS: &[(&str, u8)] = &[
        // 1: what every part shares.
        ("src/primitives/", 1),
        // 2: the subsystems and observability.
        ("src/guard/verify/", 2),
        ("src/guard/keys/", 2),
        ("src/guard/binding/", 2),
        ("src/guard/binding/message_signature/", 2),
        ("src/guard/revocation/", 2),
        ("src/guard/observe/", 2),
        ("src/guard/redis_connection.rs", 2),
        ("src/guard/redis_cluster.rs", 2),
        ("src/guard/redis_sentinel.rs", 2),
        // 3: the request path.
        ("src/guard/source.rs", 3),
        ("src/guard/pipeline.rs", 3),
        ("src/guard/rejection.rs", 3),
        ("src/guard/context.rs", 3),
        ("src/guard/mfa_policy.rs", 3),
        ("src/guard/resource_metadata.rs", 3),
        ("src/guard/settings.rs", 3),
        // 4: the layer and its configuration.
        ("src/guard/layer.rs", 4),
        ("src/guard/content_digest.rs", 4),
        ("src/guard/config.rs", 4),
        ("src/guard/profile.rs", 4),
        ("src/guard/mod.rs", 4),
        // 5: after the guard, and the issuing side.
        ("src/authorize/", 5),
        ("src/issue/", 5),
    ];
    if file == "src/lib.rs" || file == "src/fuzzing.rs" {
        return None;
    }
    match FLOORS.iter().find(|(prefix, _)| file.starts_with(prefix)) {
        Some((_, floor)) => Some(*floor),
        None => {
            panic!("{file} has no floor: add it to FLOORS in tests/floors.rs (see DESIGN.md, \"Floors\")")
        }
    }
}

#[test]
fn imports_point_down_and_circles_stay_small() {
    let tree = Tree::read(Path::new(env!("CARGO_MANIFEST_DIR")));
    let problems = problems(&tree);
    assert!(problems.is_empty(), "the floors are broken:\n  {}", problems.join("\n  "));
}

/// The check can fail: a small tree with each fault.
#[test]
fn the_check_finds_an_upward_import_a_long_circle_and_a_root_import() {
    let tree = Tree::of([
        ("src/lib.rs", "mod primitives; mod guard; pub use guard::config::JwtAuth;"),
        ("src/primitives/mod.rs", "pub(crate) mod clock;"),
        // Floor 1 imports floor 4.
        ("src/primitives/clock.rs", "use crate::guard::config::JwtAuth;"),
        ("src/guard/mod.rs", "pub(crate) mod config; pub(crate) mod verify;"),
        ("src/guard/config.rs", "pub struct JwtAuth;"),
        (
            "src/guard/verify/mod.rs",
            "mod a; mod b; mod c; mod d; #[cfg(test)] mod tests { use crate::JwtAuth; }",
        ),
        // a -> b -> c -> d -> a, and d names a crate-root re-export.
        ("src/guard/verify/a.rs", "use super::b::B; pub struct A;"),
        ("src/guard/verify/b.rs", "use super::c::C; pub struct B;"),
        ("src/guard/verify/c.rs", "pub struct C; fn f() { super::d::g() }"),
        ("src/guard/verify/d.rs", "use super::a::A; pub fn g() { let _ = crate::JwtAuth; }"),
    ]);
    let problems = problems(&tree);
    let expected = [
        "src/guard/verify/d.rs (floor 2) imports src/guard/config.rs (floor 4) through `crate::JwtAuth`",
        "src/primitives/clock.rs (floor 1) imports src/guard/config.rs (floor 4) through `crate::guard::config::JwtAuth`",
        "src/guard/verify/d.rs imports `JwtAuth` through the crate root's re-exports: import it from its module",
        "import circle of 4 files: src/guard/verify/a.rs -> src/guard/verify/b.rs -> src/guard/verify/c.rs \
         -> src/guard/verify/d.rs -> src/guard/verify/a.rs",
    ];
    assert_eq!(problems, expected);
}

/// Every broken rule of `tree`, one line each.
fn problems(tree: &Tree) -> Vec<String> {
    let graph = tree.graph();
    let mut problems = Vec::new();
    for (from, edges) in &graph.edges {
        for (to, via) in edges {
            if let (Some(low), Some(high)) = (floor(from), floor(to)) {
                if high > low {
                    problems
                        .push(format!("{from} (floor {low}) imports {to} (floor {high}) through `{via}`"));
                }
            }
        }
    }
    for (file, path) in &graph.through_root {
        problems.push(format!(
            "{file} imports `{path}` through the crate root's re-exports: import it from its module"
        ));
    }
    for circle in graph.long_circles(3) {
        problems.push(format!("import circle of {} files: {}", circle.len() - 1, circle.join(" -> ")));
    }
    problems
}

/// The source files, by module path.
struct Tree {
    /// module path ("guard::binding") → file ("src/guard/binding/mod.rs")
    modules: BTreeMap<String, String>,
    /// file → its code (comments and test modules removed), as tokens
    tokens: BTreeMap<String, Vec<String>>,
}

/// The files' imports, resolved to the files that define what they import.
struct Graph {
    /// file → file it imports → one path that makes the edge
    edges: BTreeMap<String, BTreeMap<String, String>>,
    /// (file, path): an import that goes through a re-export of `lib.rs`
    through_root: BTreeSet<(String, String)>,
}

impl Tree {
    fn read(root: &Path) -> Self {
        let mut files = Vec::new();
        walk(&root.join("src"), &mut files);
        let mut modules = BTreeMap::new();
        let mut tokens = BTreeMap::new();
        for path in files {
            let relative =
                path.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
            let source = fs::read_to_string(&path).expect("a source file");
            modules.insert(module_of(&relative), relative.clone());
            tokens.insert(relative, strip_tests(tokenize(&source)));
        }
        Tree { modules, tokens }
    }

    /// A tree of `(file, source)` pairs, for the check's own test.
    fn of<const N: usize>(files: [(&str, &str); N]) -> Self {
        let mut modules = BTreeMap::new();
        let mut tokens = BTreeMap::new();
        for (file, source) in files {
            modules.insert(module_of(file), file.to_owned());
            tokens.insert(file.to_owned(), strip_tests(tokenize(source)));
        }
        Tree { modules, tokens }
    }

    fn graph(&self) -> Graph {
        // Every file's imports as absolute module paths, and its re-exports: name → path.
        let mut imports: BTreeMap<&str, Vec<Vec<String>>> = BTreeMap::new();
        let mut reexports: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (module, file) in &self.modules {
            let here: Vec<String> = split(module);
            let found = paths(&self.tokens[file]);
            let list = imports.entry(file).or_default();
            for found in found {
                let Some(absolute) = self.absolute(&here, &found.path) else { continue };
                // A `use` (public or not) makes the name known in this module: `super::Name` in a
                // child, or `crate::module::Name`, reaches it through here.
                reexports.entry(file.clone()).or_default().insert(found.name.clone(), absolute.clone());
                // A re-export (`pub use`) is a declaration, not a dependency of this file's code:
                // whoever imports the name depends on the file that defines it.
                if !found.public {
                    list.push(absolute);
                }
            }
        }

        let mut graph = Graph { edges: BTreeMap::new(), through_root: BTreeSet::new() };
        for (file, list) in imports {
            let edges = graph.edges.entry(file.to_owned()).or_default();
            for path in list {
                let (target, via_root) = self.resolve(&path, &reexports);
                if via_root && file != "src/lib.rs" {
                    graph.through_root.insert((file.to_owned(), path.join("::")));
                }
                if target != file {
                    edges.entry(target).or_insert_with(|| format!("crate::{}", path.join("::")));
                }
            }
        }
        graph
    }

    /// The absolute module path of `path` written in module `here`, or `None` for another crate.
    fn absolute(&self, here: &[String], path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "self" => here.to_vec(),
            "super" => {
                let mut base = here.to_vec();
                base.pop();
                let mut rest = rest;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                return Some(base);
            }
            // A child module of this one (`pub use child::Item` in a `mod.rs`).
            name => {
                let mut child = here.to_vec();
                child.push(name.to_owned());
                if self.modules.contains_key(&child.join("::")) {
                    child.extend(rest.iter().cloned());
                    return Some(child);
                }
                return None;
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what `path` names, following re-exports; and whether a re-export of
    /// the crate root was on the way.
    fn resolve(
        &self,
        path: &[String],
        reexports: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    ) -> (String, bool) {
        let mut path = path.to_vec();
        let mut via_root = false;
        for _ in 0..16 {
            // The longest prefix that is a module.
            let mut depth = path.len();
            while depth > 0 && !self.modules.contains_key(&path[..depth].join("::")) {
                depth -= 1;
            }
            let file = self.modules[&path[..depth].join("::")].clone();
            let Some(item) = path.get(depth) else { return (file, via_root) };
            match reexports.get(&file).and_then(|names| names.get(item)) {
                Some(target) if *target != path[..=depth] => {
                    via_root |= depth == 0;
                    let mut next = target.clone();
                    next.extend(path[depth + 1..].iter().cloned());
                    path = next;
                }
                _ => return (file, via_root),
            }
        }
        panic!("re-exports loop at {}", path.join("::"));
    }
}

impl Graph {
    /// The import circles of more than `limit` files (one per group of files that import each other).
    fn long_circles(&self, limit: usize) -> Vec<Vec<String>> {
        let nodes: Vec<&String> = self.edges.keys().collect();
        let index: BTreeMap<&String, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let next: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| self.edges[*n].keys().filter_map(|to| index.get(to).copied()).collect())
            .collect();
        let mut circles = Vec::new();
        for group in strongly_connected(&next) {
            if group.len() <= limit {
                continue;
            }
            let members: BTreeSet<usize> = group.iter().copied().collect();
            if let Some(circle) = circle_longer_than(&next, &members, limit) {
                circles.push(circle.into_iter().map(|i| nodes[i].clone()).collect());
            }
        }
        circles
    }
}

/// Tarjan's strongly connected components.
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        next: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        groups: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.counter);
        s.low[v] = s.counter;
        s.counter += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.next[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(i) if s.on_stack[w] => s.low[v] = s.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                group.push(w);
                if w == v {
                    break;
                }
            }
            s.groups.push(group);
        }
    }
    let n = next.len();
    let mut s = State {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        counter: 0,
        groups: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.groups
}

/// A simple circle of more than `limit` files inside `members`, if there is one (depth-first, with a
/// budget: a group too tangled to search counts as a circle).
fn circle_longer_than(next: &[Vec<usize>], members: &BTreeSet<usize>, limit: usize) -> Option<Vec<usize>> {
    fn search(
        next: &[Vec<usize>],
        members: &BTreeSet<usize>,
        limit: usize,
        start: usize,
        path: &mut Vec<usize>,
        budget: &mut usize,
    ) -> bool {
        if *budget == 0 {
            return true;
        }
        *budget -= 1;
        let last = *path.last().expect("a start");
        for &w in &next[last] {
            if w == start && path.len() > limit {
                return true;
            }
            if w > start && members.contains(&w) && !path.contains(&w) {
                path.push(w);
                if search(next, members, limit, start, path, budget) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut budget = 1_000_000;
    for &start in members {
        let mut path = vec![start];
        if search(next, members, limit, start, &mut path, &mut budget) {
            path.push(start);
            return Some(path);
        }
    }
    None
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
}

/// "src/guard/binding/mod.rs" → "guard::binding"; "src/lib.rs" → "".
fn module_of(file: &str) -> String {
    let inner = file.trim_start_matches("src/").trim_end_matches(".rs");
    let inner = inner.strip_suffix("/mod").unwrap_or(inner);
    if inner == "lib" {
        String::new()
    } else {
        inner.replace('/', "::")
    }
}

fn split(module: &str) -> Vec<String> {
    module.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Identifiers, `::` and single punctuation; comments, strings and characters left out.
fn tokenize(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (chars.get(i + 1) == Some(&'"') || chars.get(i + 1) == Some(&'#'))
            && raw_string_start(&chars, i)
        {
            // r"..." or r#"..."#
            let mut hashes = 0;
            i += 1;
            while chars[i] == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' && (0..hashes).all(|h| chars.get(i + 1 + h) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character ('x', '\n') or a lifetime ('a).
            if chars.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_owned());
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    tokens
}

fn raw_string_start(chars: &[char], i: usize) -> bool {
    // `r` must start a token (not the end of an identifier) and be followed by #*".
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// Removes `#[cfg(test)] mod name { .. }`: tests may import whatever they test.
fn strip_tests(tokens: Vec<String>) -> Vec<String> {
    const ATTRIBUTE: [&str; 7] = ["#", "[", "cfg", "(", "test", ")", "]"];
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let is_test_mod = tokens.len() > i + 9
            && ATTRIBUTE.iter().enumerate().all(|(k, t)| tokens[i + k] == *t)
            && tokens[i + 7] == "mod"
            && tokens[i + 9] == "{";
        if is_test_mod {
            let mut depth = 0;
            i += 9;
            while i < tokens.len() {
                match tokens[i].as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    out
}

/// One path a file names.
struct Found {
    path: Vec<String>,
    /// the name it is known by in the file (its last segment, or its alias)
    name: String,
    /// a `pub use` / `pub(crate) use`: a re-export, followed but not an edge of its own
    public: bool,
}

/// The paths of the `use` items, and the `crate::..`/`super::..` paths in the code.
fn paths(tokens: &[String]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" {
            let public = i > 0
                && (tokens[i - 1] == "pub" || (tokens[i - 1] == ")" && i >= 4 && tokens[i - 4] == "pub"));
            i += 1;
            use_tree(tokens, &mut i, &mut Vec::new(), public, &mut found);
        } else if (tokens[i] == "crate" || tokens[i] == "super")
            && tokens.get(i + 1).map(String::as_str) == Some("::")
        {
            let mut path = vec![tokens[i].clone()];
            i += 1;
            while tokens.get(i).map(String::as_str) == Some("::")
                && tokens.get(i + 1).is_some_and(|t| is_ident(t))
            {
                path.push(tokens[i + 1].clone());
                i += 2;
            }
            let name = path.last().cloned().unwrap_or_default();
            found.push(Found { path, name, public: false });
        } else {
            i += 1;
        }
    }
    found
}

fn use_tree(
    tokens: &[String],
    i: &mut usize,
    prefix: &mut Vec<String>,
    public: bool,
    found: &mut Vec<Found>,
) {
    let depth = prefix.len();
    while let Some(token) = tokens.get(*i) {
        match token.as_str() {
            "::" => *i += 1,
            "{" => {
                *i += 1;
                loop {
                    use_tree(tokens, i, prefix, public, found);
                    match tokens.get(*i).map(String::as_str) {
                        Some(",") => *i += 1,
                        Some("}") => {
                            *i += 1;
                            break;
                        }
                        _ => break,
                    }
                    if tokens.get(*i).map(String::as_str) == Some("}") {
                        *i += 1;
                        break;
                    }
                }
                break;
            }
            "*" => {
                *i += 1;
                break;
            }
            t if is_ident(t) => {
                prefix.push(t.to_owned());
                *i += 1;
                if tokens.get(*i).map(String::as_str) == Some("as") {
                    let alias = tokens.get(*i + 1).cloned().unwrap_or_default();
                    *i += 2;
                    push_use(prefix, alias, public, found);
                    break;
                }
                if tokens.get(*i).map(String::as_str) != Some("::") {
                    let name = prefix.last().cloned().unwrap_or_default();
                    push_use(prefix, name, public, found);
                    break;
                }
            }
            _ => break,
        }
    }
    prefix.truncate(depth);
    if depth == 0 && tokens.get(*i).map(String::as_str) == Some(";") {
        *i += 1;
    }
}

fn push_use(path: &[String], name: String, public: bool, found: &mut Vec<Found>) {
    // `use foo::{self}` names the module itself.
    let mut path = path.to_vec();
    if path.last().map(String::as_str) == Some("self") {
        path.pop();
    }
    if path.is_empty() {
        return;
    }
    found.push(Found { path, name, public });
}

fn is_ident(token: &str) -> bool {
    token.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}
