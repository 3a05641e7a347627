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

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        let path = std::env::temp_dir().join(format!("browser-test-{:016x}", u64::from_le_bytes(bytes)));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Writes a self-signed server certificate for 127.0.0.1 and its key: their paths.
    fn self_signed_certificate(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (self.0.join("server.pem"), self.0.join("server-key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path.display().to_string(), key_path.display().to_string())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
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
    // Over HTTPS (a self-signed certificate for 127.0.0.1, which the browser is told to accept).
    let tls = TempDir::new();
    let (cert, key) = tls.self_signed_certificate();
    let https =
        Example::start("full_flow", &[("JWT_SECRET", SECRET), ("TLS_CERT", &cert), ("TLS_KEY", &key)]);
    assert_eq!(https.scheme, "https");

    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser/full_flow.png");
    let output = Command::new("node")
        .current_dir(&dir)
        .env("CHROMIUM", &chromium)
        .arg("flow.mjs")
        .arg(&url)
        .arg(plain.url())
        .arg(&screenshot)
        .arg(https.url())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "the browser flow failed:\n{stdout}\n{stderr}");
    assert!(screenshot.exists(), "no screenshot at {}", screenshot.display());
}

/// The refresh cookie's `name=value` in a login's or refresh's answer.
fn refresh_cookie(response: &reqwest::Response) -> String {
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("refresh_token=") && !value.starts_with("refresh_token=;"))
        .unwrap_or_else(|| panic!("no refresh cookie: {:?}", response.headers()));
    set_cookie.split(';').next().unwrap_or_default().to_string()
}

/// Without a browser: the page and its headers, and the cross-origin check on `/auth` as the
/// browser's headers ask for it (`Sec-Fetch-Site`, or `Origin` against `Host`).
#[tokio::test]
async fn the_page_and_the_cross_origin_check_over_http() {
    let running = Example::start("full_flow", &[("JWT_SECRET", SECRET)]);
    let base = running.url();
    let http = reqwest::Client::new();

    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    for directive in
        ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/app.js"></script>"#));
    let script = http.get(format!("{base}/app.js")).send().await.unwrap();
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("extractable"));
    let css = http.get(format!("{base}/app.css")).send().await.unwrap();
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));

    let login = http
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({ "username": "alice", "password": "alice-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert_eq!(login.headers()["x-content-type-options"], "nosniff");
    assert_eq!(login.headers()["cache-control"], "no-store");
    assert!(login.headers().get("access-control-allow-origin").is_none());
    let mut cookie = refresh_cookie(&login);

    let refresh = |cookie: &str, browser: &[(&str, String)]| {
        let mut request = http.post(format!("{base}/auth/refresh")).header("cookie", cookie);
        for (name, value) in browser {
            request = request.header(*name, value);
        }
        request.send()
    };
    let host = running.addr.to_string();
    // Refused before the handler: the cookie is not spent.
    for browser in [
        vec![("sec-fetch-site", "same-site".to_string()), ("origin", "http://127.0.0.1:1".to_string())],
        vec![("sec-fetch-site", "cross-site".to_string()), ("origin", "http://127.0.0.2:1".to_string())],
        vec![("origin", "http://127.0.0.1:1".to_string())],
        vec![("origin", "null".to_string())],
    ] {
        let refused = refresh(&cookie, &browser).await.unwrap();
        assert_eq!(refused.status(), 403, "{browser:?}");
        assert!(refused.headers().get("set-cookie").is_none());
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "CROSS_ORIGIN_REQUEST");
        let mut logout = http.post(format!("{base}/auth/logout")).header("cookie", &cookie);
        for (name, value) in &browser {
            logout = logout.header(*name, value);
        }
        assert_eq!(logout.send().await.unwrap().status(), 403, "{browser:?}");
    }
    // The page's own requests, and clients that are not browsers.
    for browser in [
        vec![("sec-fetch-site", "same-origin".to_string()), ("origin", format!("http://{host}"))],
        vec![("origin", format!("http://{host}"))],
        vec![],
    ] {
        let refreshed = refresh(&cookie, &browser).await.unwrap();
        assert_eq!(refreshed.status(), 200, "{browser:?}");
        cookie = refresh_cookie(&refreshed);
    }
}
