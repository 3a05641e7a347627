//! The public API, deliberate: two checks over the crate's rustdoc JSON.
//!
//! 1. **External types.** No public item may name a type or trait from a crate outside [`ALLOWED`]: a type
//!    from a dependency in our signatures ties our users to that dependency's major version (what
//!    `cargo-check-external-types` checks for tower-http and axum; it needs a nightly toolchain, this test
//!    runs on stable).
//! 2. **Snapshot.** `tests/public-api.txt` lists every public item (path and kind, and the traits each type
//!    implements); a change to the API shows up as a diff in review. After a deliberate change, regenerate it:
//!
//!    ```text
//!    UPDATE_PUBLIC_API=1 cargo test --all-features --test public_api
//!    ```
//!
//! The JSON comes from `RUSTC_BOOTSTRAP=1 cargo rustdoc --lib --all-features -- -Z unstable-options
//! --output-format json`, built in its own target directory (`target/public-api`) so that it does not
//! invalidate the normal build. It is read with `serde_json` only (no `rustdoc-types`, whose version must
//! match the toolchain's `format_version`): the fields read here (`index`, `paths`, `external_crates`, and
//! each item's `inner`) have been stable across format versions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The crates whose types the public API may name, and why.
const ALLOWED: &[(&str, &str)] = &[
    ("std", "the standard library"),
    ("core", "the standard library"),
    ("alloc", "the standard library"),
    ("http", "requests, responses, headers: the vocabulary of every tower HTTP middleware"),
    ("http_body", "the body trait of the layer's requests and responses"),
    ("bytes", "the body's data"),
    ("tower_layer", "`Layer`: what a tower middleware is"),
    ("tower_service", "`Service`: what a tower middleware is"),
    ("serde", "typed claims are `Deserialize`; `Algorithm` and claim sets are (de)serialisable"),
    ("serde_core", "serde's traits live in serde_core and are re-exported by serde (the same items)"),
    ("serde_json", "claims as JSON: the extra claims of `TokenIssuer::mint_with` & co., `ServiceTokensBuilder::claim`"),
    (
        "futures_core",
        "`BoxFuture` in the store and key-source traits: an alias of `Pin<Box<dyn Future + Send>>`, so \
         implementors are not tied to futures-core's version (the type is std's)",
    ),
    (
        "http_body_util",
        "`Full<Bytes>`, the body of the small standalone services (readiness, RFC 9728 metadata); \
         http-body-util 0.1 is hyper 1's body companion",
    ),
    ("ipnet", "the networks of trusted proxies and of the client-IP binding: std has no CIDR type; ipnet 2 is stable"),
    (
        "pin_project_lite",
        "the `Unpin` impls `pin_project!` writes for the futures and the body name its private helper; \
         nothing a user names",
    ),
    ("axum_core", "feature `axum`: extractors (`FromRequestParts`) and rejections (`IntoResponse`)"),
    ("axum", "feature `axum`: the RFC 9728 metadata as an axum `Router` (`JwtAuth::resource_metadata_router`)"),
    ("tonic", "feature `tonic`: gRPC interceptors, `Status`, the client certificate of tonic's TLS"),
    ("rustls", "features `rustls`/`redis`: a connection's client certificate; Redis over TLS"),
    ("redis", "feature `redis`: the stores take a Redis client or connection"),
];

/// The rustdoc JSON of the crate, all features on.
fn rustdoc_json() -> Value {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = manifest_dir.join("target").join("public-api");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(manifest_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTDOCFLAGS")
        // Only metadata is built there: no debug info for its build scripts and proc macros (disk).
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .env("CARGO_INCREMENTAL", "0")
        .args(["rustdoc", "--lib", "--all-features", "--target-dir"])
        .arg(&target_dir)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"])
        .status()
        .expect("cargo rustdoc runs");
    assert!(status.success(), "cargo rustdoc --output-format json failed");
    let path: PathBuf = target_dir.join("doc").join("tower_jwt_guard.json");
    let text = std::fs::read_to_string(&path).expect("rustdoc wrote its JSON");
    serde_json::from_str(&text).expect("rustdoc JSON parses")
}

/// The crate's public items, walked from the root module.
struct Api<'a> {
    index: &'a serde_json::Map<String, Value>,
    paths: &'a serde_json::Map<String, Value>,
    crates: HashMap<u64, String>,
    /// Each local item's public path (the shortest one when it is re-exported).
    public_path: HashMap<u64, String>,
    /// Snapshot lines: `kind path`.
    lines: BTreeSet<String>,
    /// External-type findings: `item path: names crate::Type`.
    findings: BTreeSet<String>,
    /// Every foreign crate a signature names, allowed or not (a sanity check of the walk).
    seen: BTreeSet<String>,
    checked: BTreeSet<u64>,
}

fn id_of(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

impl<'a> Api<'a> {
    fn new(doc: &'a Value) -> Self {
        let crates = doc["external_crates"]
            .as_object()
            .expect("external_crates")
            .iter()
            .map(|(id, krate)| {
                (id.parse().expect("crate id"), krate["name"].as_str().unwrap_or("?").to_owned())
            })
            .collect();
        Api {
            index: doc["index"].as_object().expect("index"),
            paths: doc["paths"].as_object().expect("paths"),
            crates,
            public_path: HashMap::new(),
            lines: BTreeSet::new(),
            findings: BTreeSet::new(),
            seen: BTreeSet::new(),
            checked: BTreeSet::new(),
        }
    }

    fn item(&self, id: u64) -> Option<&'a Value> {
        self.index.get(&id.to_string())
    }

    /// The crate an item comes from; `None` for this crate.
    fn crate_of(&self, id: u64) -> Option<String> {
        let krate = self
            .item(id)
            .and_then(|item| item["crate_id"].as_u64())
            .or_else(|| self.paths.get(&id.to_string()).and_then(|p| p["crate_id"].as_u64()))?;
        (krate != 0).then(|| self.crates.get(&krate).cloned().unwrap_or_else(|| format!("crate #{krate}")))
    }

    /// A printable path for an item: its public path if it is ours, its canonical path otherwise.
    fn name_of(&self, id: u64, fallback: &str) -> String {
        if let Some(path) = self.public_path.get(&id) {
            return path.clone();
        }
        match self.paths.get(&id.to_string()).and_then(|p| p["path"].as_array()) {
            Some(segments) => segments.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("::"),
            None => fallback.to_owned(),
        }
    }

    /// First pass: the public path of every reachable local item.
    fn collect_paths(&mut self, id: u64, path: &str, seen: &mut BTreeSet<u64>) {
        let Some(item) = self.item(id) else { return };
        let better = match self.public_path.get(&id) {
            Some(old) => (path.len(), path) < (old.len(), old.as_str()),
            None => true,
        };
        if better {
            self.public_path.insert(id, path.to_owned());
        }
        if !seen.insert(id) {
            return;
        }
        if let Some(module) = item["inner"].get("module") {
            for child in module["items"].as_array().into_iter().flatten().filter_map(id_of) {
                let Some(child_item) = self.item(child) else { continue };
                if let Some(import) = child_item["inner"].get("use") {
                    if import["is_glob"].as_bool() == Some(true) {
                        continue;
                    }
                    if let Some(target) = import["id"].as_u64() {
                        let name = import["name"].as_str().unwrap_or("?");
                        self.collect_paths(target, &format!("{path}::{name}"), seen);
                    }
                } else if let Some(name) = child_item["name"].as_str() {
                    self.collect_paths(child, &format!("{path}::{name}"), seen);
                }
            }
        }
        seen.remove(&id);
    }

    /// Second pass: snapshot lines and external types, for `id` published at `path`.
    fn walk(&mut self, id: u64, path: &str, stack: &mut Vec<u64>) {
        if stack.contains(&id) {
            return;
        }
        let Some(item) = self.item(id) else { return };
        stack.push(id);
        let inner = item["inner"].as_object().expect("inner");
        let (kind, body) = inner.iter().next().expect("one kind");
        let first_visit = self.checked.insert(id);
        match kind.as_str() {
            "module" => {
                self.lines.insert(format!("mod {path}"));
                for child in body["items"].as_array().into_iter().flatten().filter_map(id_of) {
                    let Some(child_item) = self.item(child) else { continue };
                    if let Some(import) = child_item["inner"].get("use") {
                        self.walk_use(import, path, stack);
                    } else if let Some(name) = child_item["name"].as_str() {
                        self.walk(child, &format!("{path}::{name}"), stack);
                    }
                }
            }
            "struct" | "enum" | "union" | "trait" => {
                let label = if kind == "trait" { "trait" } else { kind.as_str() };
                self.lines.insert(format!("{label} {path}"));
                if first_visit {
                    self.types_in_generics(&body["generics"], path);
                    if kind == "trait" {
                        self.types_in_bounds(&body["bounds"], path);
                    }
                }
                let mut members: Vec<u64> = Vec::new();
                match kind.as_str() {
                    "struct" => match &body["kind"] {
                        Value::Object(k) if k.contains_key("plain") => members
                            .extend(k["plain"]["fields"].as_array().into_iter().flatten().filter_map(id_of)),
                        Value::Object(k) if k.contains_key("tuple") => {
                            members.extend(k["tuple"].as_array().into_iter().flatten().filter_map(id_of))
                        }
                        _ => {}
                    },
                    "union" => {
                        members.extend(body["fields"].as_array().into_iter().flatten().filter_map(id_of))
                    }
                    "enum" => {
                        members.extend(body["variants"].as_array().into_iter().flatten().filter_map(id_of))
                    }
                    _ => members.extend(body["items"].as_array().into_iter().flatten().filter_map(id_of)),
                }
                for member in members {
                    if let Some(name) = self.item(member).and_then(|m| m["name"].as_str()) {
                        self.walk(member, &format!("{path}::{name}"), stack);
                    }
                }
                for imp in body["impls"].as_array().into_iter().flatten().filter_map(id_of) {
                    self.walk_impl(imp, path, stack);
                }
            }
            "variant" => {
                self.lines.insert(format!("variant {path}"));
                let fields: Vec<u64> = match &body["kind"] {
                    Value::Object(k) if k.contains_key("tuple") => {
                        k["tuple"].as_array().into_iter().flatten().filter_map(id_of).collect()
                    }
                    Value::Object(k) if k.contains_key("struct") => {
                        k["struct"]["fields"].as_array().into_iter().flatten().filter_map(id_of).collect()
                    }
                    _ => Vec::new(),
                };
                for field in fields {
                    if let Some(name) = self.item(field).and_then(|m| m["name"].as_str()) {
                        self.walk(field, &format!("{path}::{name}"), stack);
                    }
                }
            }
            "struct_field" => {
                self.lines.insert(format!("field {path}"));
                if first_visit {
                    self.types_in(body, path);
                }
            }
            "function" => {
                self.lines.insert(format!("fn {path}"));
                if first_visit {
                    self.types_in_generics(&body["generics"], path);
                    for input in body["sig"]["inputs"].as_array().into_iter().flatten() {
                        self.types_in(&input[1], path);
                    }
                    self.types_in(&body["sig"]["output"], path);
                }
            }
            "type_alias" => {
                self.lines.insert(format!("type {path}"));
                if first_visit {
                    self.types_in_generics(&body["generics"], path);
                    self.types_in(&body["type"], path);
                }
            }
            "assoc_type" => {
                self.lines.insert(format!("type {path}"));
                if first_visit {
                    self.types_in_generics(&body["generics"], path);
                    self.types_in_bounds(&body["bounds"], path);
                    self.types_in(&body["type"], path);
                }
            }
            "constant" | "assoc_const" | "static" => {
                self.lines.insert(format!("const {path}"));
                if first_visit {
                    self.types_in(&body["type"], path);
                }
            }
            "macro" | "proc_macro" => {
                self.lines.insert(format!("macro {path}"));
            }
            other => {
                self.lines.insert(format!("{other} {path}"));
            }
        }
        stack.pop();
    }

    /// A `pub use`: ours is walked under its new name; a re-exported foreign item is a finding.
    fn walk_use(&mut self, import: &Value, module_path: &str, stack: &mut Vec<u64>) {
        let name = import["name"].as_str().unwrap_or("?");
        let source = import["source"].as_str().unwrap_or("?");
        let Some(target) = import["id"].as_u64() else {
            self.lines.insert(format!("use {module_path}::{name} = {source}"));
            return;
        };
        match self.crate_of(target) {
            Some(krate) => {
                let path = format!("{module_path}::{name}");
                self.lines.insert(format!("use {path} = {}", self.name_of(target, source)));
                self.finding(&path, &krate, &self.name_of(target, source));
            }
            None if import["is_glob"].as_bool() == Some(true) => {
                if let Some(module) = self.item(target).and_then(|m| m["inner"].get("module")) {
                    for child in module["items"].as_array().into_iter().flatten().filter_map(id_of) {
                        if let Some(child_name) = self.item(child).and_then(|m| m["name"].as_str()) {
                            self.walk(child, &format!("{module_path}::{child_name}"), stack);
                        }
                    }
                }
            }
            None => self.walk(target, &format!("{module_path}::{name}"), stack),
        }
    }

    /// An `impl` block of a type at `path`: inherent methods, and the traits it implements.
    fn walk_impl(&mut self, id: u64, path: &str, stack: &mut Vec<u64>) {
        let Some(item) = self.item(id) else { return };
        let imp = &item["inner"]["impl"];
        // Auto traits (Send, Sync, ...) and blanket impls (`impl<T> From<T> for T`, other crates'
        // extension traits) come with every type: not part of what this crate declares.
        if imp["is_synthetic"].as_bool() == Some(true) || !imp["blanket_impl"].is_null() {
            return;
        }
        let first_visit = self.checked.insert(id);
        let trait_path = &imp["trait"];
        let items: Vec<u64> = imp["items"].as_array().into_iter().flatten().filter_map(id_of).collect();
        if trait_path.is_null() {
            for member in items {
                let Some(member_item) = self.item(member) else { continue };
                if member_item["visibility"].as_str() != Some("public") {
                    continue;
                }
                if let Some(name) = member_item["name"].as_str() {
                    self.walk(member, &format!("{path}::{name}"), stack);
                }
            }
            return;
        }
        let negative = if imp["is_negative"].as_bool() == Some(true) { "!" } else { "" };
        let at =
            format!("impl {negative}{} for {}", self.render_path(trait_path), self.render_type(&imp["for"]));
        self.lines.insert(at.clone());
        if first_visit {
            self.types_in_path(trait_path, &at);
            self.types_in_generics(&imp["generics"], &at);
            self.types_in(&imp["for"], &at);
            for member in items {
                let Some(member_item) = self.item(member) else { continue };
                let Some(name) = member_item["name"].as_str() else { continue };
                if let Some(assoc) = member_item["inner"].get("assoc_type") {
                    self.types_in(&assoc["type"], &format!("{at}, type {name}"));
                } else if let Some(function) = member_item["inner"].get("function") {
                    let member_path = format!("{at}, fn {name}");
                    self.types_in_generics(&function["generics"], &member_path);
                    for input in function["sig"]["inputs"].as_array().into_iter().flatten() {
                        self.types_in(&input[1], &member_path);
                    }
                    self.types_in(&function["sig"]["output"], &member_path);
                }
            }
        }
    }

    fn finding(&mut self, at: &str, krate: &str, name: &str) {
        self.seen.insert(krate.to_owned());
        if !ALLOWED.iter().any(|(allowed, _)| *allowed == krate) {
            self.findings.insert(format!("{at}: names `{name}` from crate `{krate}`"));
        }
    }

    fn types_in_path(&mut self, path: &Value, at: &str) {
        if let Some(id) = path["id"].as_u64() {
            if let Some(krate) = self.crate_of(id) {
                let name = self.name_of(id, path["path"].as_str().unwrap_or("?"));
                self.finding(at, &krate, &name);
            }
        }
        self.types_in_args(&path["args"], at);
    }

    fn types_in_args(&mut self, args: &Value, at: &str) {
        if let Some(angle) = args.get("angle_bracketed") {
            for arg in angle["args"].as_array().into_iter().flatten() {
                self.types_in(&arg["type"], at);
            }
            for constraint in angle["constraints"].as_array().into_iter().flatten() {
                self.types_in_args(&constraint["args"], at);
                let binding = &constraint["binding"];
                self.types_in(&binding["equality"]["type"], at);
                self.types_in_bounds(&binding["constraint"], at);
            }
        } else if let Some(parenthesized) = args.get("parenthesized") {
            for input in parenthesized["inputs"].as_array().into_iter().flatten() {
                self.types_in(input, at);
            }
            self.types_in(&parenthesized["output"], at);
        }
    }

    fn types_in_bounds(&mut self, bounds: &Value, at: &str) {
        for bound in bounds.as_array().into_iter().flatten() {
            if let Some(trait_bound) = bound.get("trait_bound") {
                self.types_in_path(&trait_bound["trait"], at);
            }
        }
    }

    fn types_in_generics(&mut self, generics: &Value, at: &str) {
        for param in generics["params"].as_array().into_iter().flatten() {
            if let Some(ty) = param["kind"].get("type") {
                self.types_in_bounds(&ty["bounds"], at);
                self.types_in(&ty["default"], at);
            } else if let Some(constant) = param["kind"].get("const") {
                self.types_in(&constant["type"], at);
            }
        }
        for predicate in generics["where_predicates"].as_array().into_iter().flatten() {
            if let Some(bound) = predicate.get("bound_predicate") {
                self.types_in(&bound["type"], at);
                self.types_in_bounds(&bound["bounds"], at);
            } else if let Some(eq) = predicate.get("eq_predicate") {
                self.types_in(&eq["lhs"], at);
                self.types_in(&eq["rhs"]["type"], at);
            }
        }
    }

    /// Every foreign type or trait named in a type.
    fn types_in(&mut self, ty: &Value, at: &str) {
        let Some(object) = ty.as_object() else { return };
        let Some((kind, body)) = object.iter().next() else { return };
        match kind.as_str() {
            "resolved_path" => self.types_in_path(body, at),
            "dyn_trait" => {
                for poly in body["traits"].as_array().into_iter().flatten() {
                    self.types_in_path(&poly["trait"], at);
                }
            }
            "impl_trait" => self.types_in_bounds(body, at),
            "borrowed_ref" | "raw_pointer" | "slice" | "pat" => {
                self.types_in(body.get("type").unwrap_or(body), at);
            }
            "array" => self.types_in(&body["type"], at),
            "tuple" => {
                for element in body.as_array().into_iter().flatten() {
                    self.types_in(element, at);
                }
            }
            "qualified_path" => {
                self.types_in(&body["self_type"], at);
                if !body["trait"].is_null() {
                    self.types_in_path(&body["trait"], at);
                }
                self.types_in_args(&body["args"], at);
            }
            "function_pointer" => {
                for input in body["sig"]["inputs"].as_array().into_iter().flatten() {
                    self.types_in(&input[1], at);
                }
                self.types_in(&body["sig"]["output"], at);
            }
            _ => {}
        }
    }

    /// `Trait<Arg, ..>` with paths as a reader would write them.
    fn render_path(&self, path: &Value) -> String {
        let name = match path["id"].as_u64() {
            Some(id) => self.name_of(id, path["path"].as_str().unwrap_or("?")),
            None => path["path"].as_str().unwrap_or("?").to_owned(),
        };
        let Some(angle) = path["args"].get("angle_bracketed") else { return name };
        let mut args: Vec<String> = angle["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|arg| match arg.as_object().and_then(|o| o.iter().next()) {
                Some((k, v)) if k == "type" => self.render_type(v),
                Some((k, v)) if k == "lifetime" => v.as_str().unwrap_or("'_").to_owned(),
                _ => "_".to_owned(),
            })
            .collect();
        for constraint in angle["constraints"].as_array().into_iter().flatten() {
            let ty = &constraint["binding"]["equality"]["type"];
            args.push(format!("{} = {}", constraint["name"].as_str().unwrap_or("?"), self.render_type(ty)));
        }
        if args.is_empty() {
            name
        } else {
            format!("{name}<{}>", args.join(", "))
        }
    }

    fn render_type(&self, ty: &Value) -> String {
        let Some((kind, body)) = ty.as_object().and_then(|o| o.iter().next()) else { return "_".to_owned() };
        match kind.as_str() {
            "resolved_path" => self.render_path(body),
            "generic" | "primitive" => body.as_str().unwrap_or("_").to_owned(),
            "borrowed_ref" => {
                let lifetime = body["lifetime"].as_str().map(|l| format!("{l} ")).unwrap_or_default();
                let mutable = if body["is_mutable"].as_bool() == Some(true) { "mut " } else { "" };
                format!("&{lifetime}{mutable}{}", self.render_type(&body["type"]))
            }
            "slice" => format!("[{}]", self.render_type(body)),
            "array" => {
                format!("[{}; {}]", self.render_type(&body["type"]), body["len"].as_str().unwrap_or("_"))
            }
            "tuple" => {
                let parts: Vec<String> =
                    body.as_array().into_iter().flatten().map(|t| self.render_type(t)).collect();
                format!("({})", parts.join(", "))
            }
            "dyn_trait" => {
                let parts: Vec<String> = body["traits"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| self.render_path(&p["trait"]))
                    .collect();
                format!("dyn {}", parts.join(" + "))
            }
            "qualified_path" => format!(
                "<{} as {}>::{}",
                self.render_type(&body["self_type"]),
                self.render_path(&body["trait"]),
                body["name"].as_str().unwrap_or("?")
            ),
            _ => "_".to_owned(),
        }
    }
}

struct Report {
    snapshot: String,
    findings: Vec<String>,
    seen: BTreeSet<String>,
}

fn inspect(doc: &Value) -> Report {
    let format_version = doc["format_version"].as_u64().expect("format_version");
    assert!(format_version >= 30, "rustdoc JSON format {format_version} is older than this test reads");
    let mut api = Api::new(doc);
    let root = id_of(&doc["root"]).expect("root");
    let root_name = api.item(root).and_then(|r| r["name"].as_str()).unwrap_or("tower_jwt_guard").to_owned();
    api.collect_paths(root, &root_name, &mut BTreeSet::new());
    api.walk(root, &root_name, &mut Vec::new());
    let mut snapshot = String::from(
        "# The public API of tower-jwt-guard (all features), from tests/public_api.rs.\n\
         # Regenerate after a deliberate change: UPDATE_PUBLIC_API=1 cargo test --all-features --test public_api\n",
    );
    for line in &api.lines {
        snapshot.push_str(line);
        snapshot.push('\n');
    }
    Report { snapshot, findings: api.findings.into_iter().collect(), seen: api.seen }
}

#[test]
fn public_api() {
    let doc = rustdoc_json();
    let report = inspect(&doc);
    // The layer's signatures name `http` and `tower_service` types: a walk that sees none of them has
    // lost its way in a new rustdoc JSON format, and would let anything through.
    for expected in ["http", "tower_service", "tower_layer"] {
        assert!(
            report.seen.contains(expected),
            "no type of `{expected}` found in the public API: has the rustdoc JSON format changed? (seen: {:?})",
            report.seen
        );
    }

    let allowed: BTreeMap<&str, &str> = ALLOWED.iter().copied().collect();
    assert!(
        report.findings.is_empty(),
        "the public API names types from crates outside the allow-list (tests/public_api.rs, ALLOWED: {:?}):\n{}",
        allowed.keys().collect::<Vec<_>>(),
        report.findings.join("\n")
    );

    let snapshot_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("public-api.txt");
    if std::env::var_os("UPDATE_PUBLIC_API").is_some() {
        std::fs::write(&snapshot_path, &report.snapshot).expect("write the snapshot");
        return;
    }
    let old = std::fs::read_to_string(&snapshot_path).unwrap_or_default();
    if old != report.snapshot {
        let old_lines: BTreeSet<&str> = old.lines().collect();
        let new_lines: BTreeSet<&str> = report.snapshot.lines().collect();
        let mut diff = String::new();
        for line in old_lines.difference(&new_lines) {
            diff.push_str(&format!("- {line}\n"));
        }
        for line in new_lines.difference(&old_lines) {
            diff.push_str(&format!("+ {line}\n"));
        }
        panic!(
            "the public API differs from tests/public-api.txt:\n{diff}\nIf the change is deliberate, regenerate \
             the snapshot and commit it:\n    UPDATE_PUBLIC_API=1 cargo test --all-features --test public_api"
        );
    }
}

/// The check can fail: a function returning a jsonwebtoken type, and a re-export of one, are both
/// found; a type from an allowed crate is not (a hand-written rustdoc JSON document).
#[test]
fn a_foreign_type_in_the_api_is_found() {
    let doc = serde_json::json!({
        "format_version": 57,
        "root": 0,
        "index": {
            "0": { "id": 0, "crate_id": 0, "name": "tower_jwt_guard", "visibility": "public",
                   "inner": { "module": { "is_crate": true, "items": [1, 2, 3], "is_stripped": false } } },
            "1": { "id": 1, "crate_id": 0, "name": "leak", "visibility": "public",
                   "inner": { "function": {
                       "sig": { "inputs": [["status", { "resolved_path": { "path": "StatusCode", "id": 11, "args": null } }]],
                                "output": { "resolved_path": { "path": "jsonwebtoken::Header", "id": 10, "args": null } },
                                "is_c_variadic": false },
                       "generics": { "params": [], "where_predicates": [] } } } },
            "2": { "id": 2, "crate_id": 0, "name": null, "visibility": "public",
                   "inner": { "use": { "source": "jsonwebtoken::Algorithm", "name": "Algorithm", "id": 12, "is_glob": false } } },
            "3": { "id": 3, "crate_id": 0, "name": "fine", "visibility": "public",
                   "inner": { "function": {
                       "sig": { "inputs": [], "output": { "resolved_path": { "path": "StatusCode", "id": 11, "args": null } },
                                "is_c_variadic": false },
                       "generics": { "params": [], "where_predicates": [] } } } }
        },
        "paths": {
            "10": { "crate_id": 23, "path": ["jsonwebtoken", "header", "Header"], "kind": "struct" },
            "11": { "crate_id": 5, "path": ["http", "status", "StatusCode"], "kind": "struct" },
            "12": { "crate_id": 23, "path": ["jsonwebtoken", "algorithms", "Algorithm"], "kind": "enum" }
        },
        "external_crates": { "5": { "name": "http" }, "23": { "name": "jsonwebtoken" } }
    });
    let report = inspect(&doc);
    assert_eq!(
        report.findings,
        [
            "tower_jwt_guard::Algorithm: names `jsonwebtoken::algorithms::Algorithm` from crate `jsonwebtoken`",
            "tower_jwt_guard::leak: names `jsonwebtoken::header::Header` from crate `jsonwebtoken`",
        ]
    );
    assert!(report.snapshot.contains("\nfn tower_jwt_guard::fine\n"), "{}", report.snapshot);
    assert!(report
        .snapshot
        .contains("\nuse tower_jwt_guard::Algorithm = jsonwebtoken::algorithms::Algorithm\n"));
}
