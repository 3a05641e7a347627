//! Runs the crate's real example programs from integration tests.
//!
//! `cargo test --test NAME` does not build the examples, and a binary left in `target/` may be
//! stale, so [`build`] asks Cargo to build them first (same features, same profile, same
//! target directory: nothing is rebuilt when they are fresh). [`Example::start`] runs one on
//! an ephemeral port and reads the address from its `listening on http(s)://..` banner line.

#![allow(dead_code)] // each test file uses the part it needs

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The configuration the examples read: cleared, so the caller's environment does not leak in.
const CONFIGURATION: [&str; 28] = [
    "PROFILE",
    "JWT_SECRET",
    "JWE_KEY",
    "JWE_ALG",
    "JWE_ENC",
    "JWT_PUBLIC_KEY",
    "JWT_ALG",
    "JWT_JWKS_URL",
    "JWT_OIDC_ISSUER",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "REDIS_URL",
    "TRUSTED_PROXIES",
    "PUBLIC_URL",
    "DPOP",
    "DPOP_NONCE",
    "MCP_AUTHORIZATION_SERVER",
    "SERVER",
    "TOKEN",
    "TLS_CERT",
    "TLS_KEY",
    "TLS_CLIENT_CA",
    "DEMO_CLIENT_CERT",
    "TLS_CA",
    "TLS_CLIENT_CERT",
    "TLS_CLIENT_KEY",
    "ACCESS_TOKEN_TTL",
    "HTTP_SIGNATURE_RESPONSE_KEY",
];

/// How long to wait for a line the program is expected to print (a guard against a hang,
/// not a timing assertion).
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// The features this test binary was compiled with: the examples are built with the same ones.
fn features() -> String {
    let mut on = Vec::new();
    for (name, enabled) in [
        ("axum", cfg!(feature = "axum")),
        ("jwks", cfg!(feature = "jwks")),
        ("introspection", cfg!(feature = "introspection")),
        ("redis", cfg!(feature = "redis")),
        ("tonic", cfg!(feature = "tonic")),
        ("metrics", cfg!(feature = "metrics")),
        ("rustls", cfg!(feature = "rustls")),
        ("jwe", cfg!(feature = "jwe")),
    ] {
        if enabled {
            on.push(name);
        }
    }
    on.join(",")
}

/// `target/<profile>` of this test binary (`target/<profile>/deps/<test>-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf()
}

/// Builds the examples `names` (once per test binary) and returns the directory holding them.
pub fn build(names: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let profile_dir = profile_dir();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = names.iter().copied().filter(|n| !built.iter().any(|b| b == n)).collect();
    if !missing.is_empty() {
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => "dev".to_string(),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .arg("--profile")
            .arg(&profile)
            .arg("--no-default-features")
            .arg("--features")
            .arg(features());
        for name in &missing {
            command.arg("--example").arg(name);
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the examples {missing:?} failed");
        built.extend(missing.iter().map(|n| n.to_string()));
    }
    profile_dir.join("examples")
}

/// A running example program; killed when dropped.
pub struct Example {
    child: Child,
    lines: Receiver<String>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The banner's first line.
    pub banner: String,
    /// `http` or `https`, from the banner.
    pub scheme: &'static str,
}

/// The command that runs example `name` (built first) with the caller's configuration cleared,
/// then `env` (a server listens on an ephemeral port unless `env` says otherwise).
fn command(name: &str, env: &[(&str, &str)]) -> (Command, PathBuf) {
    let program = build(&[name]).join(name);
    let mut command = Command::new(&program);
    for name in CONFIGURATION {
        command.env_remove(name);
    }
    command.env("BIND", "127.0.0.1:0");
    for (key, value) in env {
        command.env(key, value);
    }
    (command, program)
}

impl Example {
    /// Builds and starts `name` with `env` (plus `BIND=127.0.0.1:0`) and waits for its banner.
    pub fn start(name: &str, env: &[(&str, &str)]) -> Example {
        let (mut command, program) = command(name, env);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", program.display()));
        // A thread drains the output, so the program never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut example =
            Example { child, lines, addr: ([0, 0, 0, 0], 0).into(), banner: String::new(), scheme: "http" };
        loop {
            let line = example.next_line();
            let https = line.split("listening on https://").nth(1);
            if https.is_some() {
                example.scheme = "https";
            }
            if let Some(rest) = https.or_else(|| line.split("listening on http://").nth(1)) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                example.addr = addr.parse().unwrap_or_else(|_| panic!("no address in {line:?}"));
                example.banner = line;
                return example;
            }
        }
    }

    /// The next line of the program's standard output.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                panic!("the program ended ({status:?}) before printing the expected line")
            }
            Err(RecvTimeoutError::Timeout) => panic!("no output from the program for {LINE_TIMEOUT:?}"),
        }
    }

    /// `http://<addr>` (`https://` when the program serves HTTPS)
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the example program `name` to completion with `args` and `env`.
pub fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let (mut command, program) = command(name, env);
    command.args(args);
    command.output().unwrap_or_else(|err| panic!("cannot run {}: {err}", program.display()))
}

/// Starts the example server `name` with `env` and waits (bounded) for it to exit on its own,
/// as it must on bad configuration; a server still running after the wait is killed and reported.
pub fn expect_exit(name: &str, env: &[(&str, &str)]) -> Output {
    let (mut command, program) = command(name, env);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", program.display()));
    for _ in 0..600 {
        if child.try_wait().expect("the child's status").is_some() {
            return child.wait_with_output().expect("the child's output");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("the child's output");
    panic!("{name} kept running with {env:?}: {output:?}");
}
