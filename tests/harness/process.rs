//! Runs the example programs as child processes, the way a user runs them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The path of an example binary, built (with every feature) when `cargo test` did not build it.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--all-features", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building example {name} failed");
    }
    path
}

/// A running example; killed when dropped.
pub struct Running {
    child: Child,
    /// The lines the example printed at start, up to and including the last banner line.
    pub banner: Vec<String>,
    /// The address it listens on (from its first line: `... listening on http://ADDR ...`).
    pub addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts example `name` with `env` (BIND defaults to an ephemeral port) and reads its banner:
/// `banner_lines` lines of standard output.
pub fn start_example(name: &str, env: &[(&str, &str)], banner_lines: usize) -> Running {
    let mut command = Command::new(example_binary(name));
    command.env("BIND", "127.0.0.1:0").stdout(Stdio::piped()).stderr(Stdio::inherit());
    for var in [
        "JWT_SECRET",
        "JWT_PUBLIC_KEY",
        "JWT_JWKS_URL",
        "JWT_OIDC_ISSUER",
        "JWT_ALG",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "REDIS_URL",
    ] {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    while banner.len() < banner_lines {
        match lines.next() {
            Some(Ok(line)) => banner.push(line),
            _ => break,
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let addr = banner
        .first()
        .and_then(|line| line.split("http://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{name} printed no address: {banner:?}"))
        .to_string();
    Running { child, banner, addr }
}

/// Runs example `name` with `env` to completion and returns its exit code and standard error.
pub fn run_to_exit(name: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(example_binary(name));
    command.env("BIND", "127.0.0.1:0");
    for var in ["JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_JWKS_URL", "JWT_OIDC_ISSUER", "JWT_ALG"] {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}
