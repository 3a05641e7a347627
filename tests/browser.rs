//! The full_flow example's web page in a real browser: the system's Chromium, driven by
//! `playwright-core` from npm (`tests/browser/flow.mjs`, which says what it checks).
//!
//! Needs `chromium` (`apt-get install chromium`; Playwright's own browser download is not used)
//! and `npm ci --prefix tests/browser`; `.ci/run` installs both. Without them the test is skipped
//! with a message, except in CI (`CI` set), where it must run.

mod example_process;

use std::path::{Path, PathBuf};
use std::process::Command;

use example_process::Example;

const SECRET: &str = "browser-test-secret-of-32-bytes!!!";

/// Why the browser test cannot run here, if it cannot.
fn missing_tools(dir: &Path, chromium: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        return Some("node is not installed".into());
    }
    if !chromium.exists() {
        return Some(format!("{} is missing: apt-get install chromium", chromium.display()));
    }
    if !dir.join("node_modules/playwright-core/package.json").exists() {
        return Some("playwright-core is not installed: run `npm ci --prefix tests/browser`".into());
    }
    None
}

/// Reads the banner up to the line that gives the page's address.
fn page_line(example: &mut Example) -> String {
    for _ in 0..40 {
        let line = example.next_line();
        if line.contains("in a browser:") {
            return line;
        }
    }
    panic!("the banner does not give the page's address")
}

#[test]
fn the_whole_flow_in_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if let Some(why) = missing_tools(&dir, &chromium) {
        assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
        println!("skipped: {why}");
        return;
    }

    // The whole flow: server nonces, and access tokens that expire after a second (plus the
    // layer's 30 s leeway), so that the page must refresh silently.
    let mut main = Example::start(
        "full_flow",
        &[("JWT_SECRET", SECRET), ("DPOP_NONCE", "1"), ("ACCESS_TOKEN_TTL", "1")],
    );
    let url = main.url();
    let line = page_line(&mut main);
    assert!(line.contains(&format!("{url}/")), "the banner's page address is not {url}/: {line}");
    // The defaults, for a fresh session and the rate limit (which would lock the first one out).
    let plain = Example::start("full_flow", &[("JWT_SECRET", SECRET)]);

    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser/full_flow.png");
    let output = Command::new("node")
        .current_dir(&dir)
        .env("CHROMIUM", &chromium)
        .arg("flow.mjs")
        .arg(&url)
        .arg(plain.url())
        .arg(&screenshot)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "the browser flow failed:\n{stdout}\n{stderr}");
    assert!(screenshot.exists(), "no screenshot at {}", screenshot.display());
}
