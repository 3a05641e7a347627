//! The full_flow example, run as a user runs it (behind `TRUSTED_PROXIES=127.0.0.1/32`, so the
//! test plays the proxy and chooses each client's address), driven over HTTP on loopback.

mod example_process;
mod harness;

use base64::Engine as _;
use example_process::{expect_exit, Example};
use harness::{answer, client, Answer};
use serde_json::{json, Value};
use totp_rs::{Secret, Totp};

const SECRET: &str = "full-flow-test-secret-of-32-bytes!!";
/// Lines the example prints at start, after the `listening on` line.
const MORE_BANNER_LINES: usize = 7;
const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";

struct Flow {
    base: String,
    http: reqwest::Client,
}

impl Flow {
    /// A request from `user_agent` at `ip` (as the trusted proxy reports it).
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        user_agent: &str,
        ip: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("user-agent", user_agent)
            .header("accept-language", "en-GB")
            .header("x-forwarded-for", ip)
    }

    async fn login(&self, username: &str, password: &str, ip: &str) -> Answer {
        let body = json!({ "username": username, "password": password });
        answer(self.request(reqwest::Method::POST, "/auth/login", LAPTOP, ip).json(&body)).await
    }

    async fn get(&self, path: &str, token: &str, user_agent: &str, ip: &str) -> Answer {
        answer(self.request(reqwest::Method::GET, path, user_agent, ip).bearer_auth(token)).await
    }

    async fn verify(&self, token: &str, code: &str, ip: &str) -> Answer {
        let request = self.request(reqwest::Method::POST, "/auth/mfa/verify", LAPTOP, ip);
        answer(request.bearer_auth(token).json(&json!({ "code": code }))).await
    }
}

fn payload(token: &str) -> Value {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap());
    serde_json::from_slice(&bytes.unwrap()).unwrap()
}

/// The demo user's authenticator.
fn authenticator() -> Totp {
    let secret = Secret::try_from_base32("JBSWY3DPEHPK3PXP").unwrap();
    totp_rs::Builder::new().with_secret(secret).build_noncompliant()
}

fn access_token(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_whole_lifecycle() {
    let mut running =
        Example::start("full_flow", &[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32")]);
    let mut banner = running.banner.clone();
    for _ in 0..MORE_BANNER_LINES {
        banner = format!("{banner}\n{}", running.next_line());
    }
    for fact in ["alice", "alice-password", "JBSWY3DPEHPK3PXP", "127.0.0.1/32"] {
        assert!(banner.contains(fact), "the banner does not state {fact}: {banner}");
    }
    assert!(!banner.contains(SECRET));
    let flow = Flow { base: running.url(), http: client() };
    let home = "198.51.100.7";

    // Login.
    let login = flow.login("alice", "alice-password", home).await;
    let token = access_token(&login);
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 900);
    assert_eq!(login.headers.get("cache-control").unwrap(), "no-store");
    let claims = payload(&token);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["jti"].is_string());
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 900);
    assert_eq!(claims["cnf"]["cip"], home);
    assert!(claims["cnf"]["dfp"].is_string());

    // Protected.
    let protected = flow.get("/protected", &token, LAPTOP, home).await;
    assert_eq!((protected.status, &protected.body["sub"]), (200, &json!("alice")));

    // The same token from another browser, then from another address.
    let other_device = flow.get("/protected", &token, "curl/8.5.0", home).await;
    assert_eq!((other_device.status, other_device.code()), (401, "BINDING_MISMATCH"));
    assert_eq!(other_device.body["binding"], "device_fingerprint");
    let other_ip = flow.get("/protected", &token, LAPTOP, "203.0.113.99").await;
    assert_eq!((other_ip.status, other_ip.code()), (401, "BINDING_MISMATCH"));
    assert_eq!(other_ip.body["binding"], "client_ip");

    // Admin needs the second factor: RFC 9470 step-up challenge.
    let admin = flow.get("/admin", &token, LAPTOP, home).await;
    assert_eq!((admin.status, admin.code()), (401, "MFA_REQUIRED"));
    assert!(admin.challenge.unwrap().contains("error=\"insufficient_user_authentication\""));

    // A wrong code, then the right one.
    let totp = authenticator();
    let code = totp.generate_current().to_string();
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 500_000) % 1_000_000);
    let refused = flow.verify(&token, &wrong, home).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_OTP"));
    let verified = flow.verify(&token, &code, home).await;
    let stepped_up = access_token(&verified);
    let claims = payload(&stepped_up);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert!(claims["auth_time"].as_u64().is_some());
    assert_eq!(claims["cnf"]["cip"], home);
    // A TOTP code is good once.
    let replay = flow.verify(&token, &code, home).await;
    assert_eq!((replay.status, replay.code()), (401, "INVALID_OTP"));

    // Admin allowed with the new token, still bound to the device and the address.
    let admin = flow.get("/admin", &stepped_up, LAPTOP, home).await;
    assert_eq!(admin.status, 200, "{:?}", admin.body);
    assert_eq!(admin.body["amr"], json!(["pwd", "otp"]));
    let elsewhere = flow.get("/admin", &stepped_up, LAPTOP, "203.0.113.99").await;
    assert_eq!(elsewhere.code(), "BINDING_MISMATCH");

    // 6 bad logins from one address: the 6th is refused with 429.
    let attacker = "192.0.2.66";
    for attempt in 1..=5 {
        let bad = flow.login("alice", &format!("guess-{attempt}"), attacker).await;
        assert_eq!((bad.status, bad.code()), (401, "INVALID_CREDENTIALS"), "attempt {attempt}");
    }
    let sixth = flow.login("alice", "guess-6", attacker).await;
    assert_eq!(sixth.status, 429);
    assert!(sixth.headers.get("retry-after").is_some());
    // Locked out: not even the right password is checked.
    assert_eq!(flow.login("alice", "alice-password", attacker).await.status, 429);
    // Another address is not affected.
    assert_eq!(flow.login("alice", "alice-password", "198.51.100.8").await.status, 200);
}

#[tokio::test]
async fn bad_logins_and_unauthenticated_step_up() {
    let running = Example::start("full_flow", &[("TRUSTED_PROXIES", "127.0.0.1")]);
    let flow = Flow { base: running.url(), http: client() };
    let ip = "198.51.100.20";

    let bad = flow.login("alice", "wrong", ip).await;
    assert_eq!((bad.status, bad.code()), (401, "INVALID_CREDENTIALS"));
    let unknown = flow.login("mallory", "alice-password", ip).await;
    assert_eq!((unknown.status, unknown.code()), (401, "INVALID_CREDENTIALS"));
    assert_eq!(unknown.body, bad.body, "an unknown user is answered like a wrong password");
    let malformed = answer(
        flow.request(reqwest::Method::POST, "/auth/login", LAPTOP, ip)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(malformed.status, 400);

    let no_token = answer(
        flow.request(reqwest::Method::POST, "/auth/mfa/verify", LAPTOP, ip)
            .json(&json!({ "code": "123456" })),
    )
    .await;
    assert_eq!((no_token.status, no_token.code()), (401, "MISSING_TOKEN"));
    assert_eq!(answer(flow.http.get(format!("{}/health", flow.base))).await.status, 200);
    let anonymous = answer(flow.http.get(format!("{}/protected", flow.base))).await;
    assert_eq!(anonymous.code(), "MISSING_TOKEN");
}

#[test]
fn bad_trusted_proxies_exit_with_code_2_naming_the_variable() {
    let output = expect_exit("full_flow", &[("TRUSTED_PROXIES", "10.0.0.0/33")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("TRUSTED_PROXIES"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // full_flow mints tokens: a public key alone cannot sign them.
    let key = harness::TestKey::generate(tower_jwt_guard::Algorithm::ES256);
    let path = std::env::temp_dir().join(format!("tjg-full-flow-{}.pem", std::process::id()));
    std::fs::write(&path, &key.public_pem).unwrap();
    let output = expect_exit("full_flow", &[("JWT_PUBLIC_KEY", path.to_str().unwrap())]);
    std::fs::remove_file(&path).ok();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("JWT_PUBLIC_KEY"), "{stderr}");
}
