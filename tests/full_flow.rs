//! The full_flow example, run as a user runs it (behind `TRUSTED_PROXIES=127.0.0.1/32`, so the
//! test plays the proxy and chooses each client's address), driven over HTTP on loopback.
//! With the `redis` feature, two instances share one real `redis-server`.

mod dpop_support;
mod example_process;
mod harness;
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
#[allow(dead_code)] // the harness also serves tests that stop and restart Redis
mod redis_server;

use base64::Engine as _;
use dpop_support::{ProofKey, Spec};
use example_process::{expect_exit, Example};
use harness::{answer, client, Answer};
use serde_json::{json, Value};
use totp_rs::{Secret, Totp};

const SECRET: &str = "full-flow-test-secret-of-32-bytes!!";
/// Lines the example prints at start, after the `listening on` line.
const MORE_BANNER_LINES: usize = 12;
/// The refresh token's cookie.
const REFRESH_COOKIE: &str = "refresh_token";
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

    /// `POST /auth/refresh` with the refresh cookie (sent by hand: it is `Secure`, and the
    /// test speaks plain http, as the banner's curl lines do).
    async fn refresh(&self, refresh: &str, ip: &str) -> Answer {
        let request = self.request(reqwest::Method::POST, "/auth/refresh", LAPTOP, ip);
        answer(request.header("cookie", format!("{REFRESH_COOKIE}={refresh}"))).await
    }

    async fn logout(&self, token: &str, refresh: &str, ip: &str) -> Answer {
        let request = self.request(reqwest::Method::POST, "/auth/logout", LAPTOP, ip);
        answer(request.bearer_auth(token).header("cookie", format!("{REFRESH_COOKIE}={refresh}"))).await
    }
}

/// Sends `request` as is to the server at `base` (`http://host:port`) and reads the answer until
/// the server closes the connection.
async fn raw_request(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer));
    read.await.expect("the server closes the connection").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The `Set-Cookie` value of the refresh cookie in `answer`.
fn refresh_set_cookie(answer: &Answer) -> String {
    let prefix = format!("{REFRESH_COOKIE}=");
    let mut values = answer.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok());
    let found = values.find(|v| v.starts_with(&prefix));
    found.unwrap_or_else(|| panic!("no refresh cookie: {:?}", answer.headers)).to_string()
}

/// The refresh token handed out by `answer`, after checking the cookie's attributes.
fn refresh_token(answer: &Answer) -> String {
    let set_cookie = refresh_set_cookie(answer);
    for attribute in ["; HttpOnly", "; Secure", "; SameSite=Strict", "; Path=/auth"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing: {set_cookie}");
    }
    let pair = set_cookie.split(';').next().unwrap();
    let value = pair.split_once('=').unwrap().1.to_string();
    assert!(value.len() > 40, "not an opaque random value: {set_cookie}");
    value
}

/// The answer clears the refresh cookie.
fn clears_refresh_cookie(answer: &Answer) -> bool {
    let set_cookie = refresh_set_cookie(answer);
    set_cookie.starts_with(&format!("{REFRESH_COOKIE}=;")) && set_cookie.contains("Max-Age=0")
}

/// Polls `probe` until it is true, for at most ten seconds (a guard, not a timing assertion).
#[cfg(feature = "redis")]
async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use std::time::{Duration, Instant};
    let start = Instant::now();
    while !probe().await {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
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
    for fact in [
        "alice",
        "alice-password",
        "JBSWY3DPEHPK3PXP",
        "127.0.0.1/32",
        "revocations and refresh tokens: memory",
        "/auth/refresh -b \"refresh_token=$REFRESH\"",
        "/auth/logout -b \"refresh_token=$REFRESH\"",
        "limits: 5 per 15m wrong passwords per account and per client network (LOGIN_ATTEMPTS), 5 per 15m wrong codes",
    ] {
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
    refresh_token(&login);
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
    assert_eq!((sixth.status, sixth.code()), (429, "TOO_MANY_ATTEMPTS"));
    assert_retry_after_about_15_minutes(&sixth);
    // Locked out: not even the right password is checked, from this address or any other
    // (the account's budget is spent too).
    assert_eq!(flow.login("alice", "alice-password", attacker).await.status, 429);
    assert_eq!(flow.login("alice", "alice-password", "198.51.100.8").await.status, 429);
    // The attacker's address is locked for every account; another address and account are not.
    assert_eq!(flow.login("mallory", "guess", attacker).await.status, 429);
    assert_eq!(flow.login("mallory", "guess", "198.51.100.8").await.code(), "INVALID_CREDENTIALS");
}

/// A 429 says when to come back: the oldest failure leaves the 15-minute window.
fn assert_retry_after_about_15_minutes(answer: &Answer) {
    let retry_after = answer.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let retry_after = retry_after.unwrap_or_else(|| panic!("no Retry-After: {:?}", answer.headers));
    assert!((800..=900).contains(&retry_after), "Retry-After: {retry_after}");
}

/// Waits for the next second of the clock: a logout revokes the subject's tokens issued up to
/// the second it happens in, so a test that logs in again right after one waits for the next.
async fn next_second() {
    let second = harness::now();
    while harness::now() == second {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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
    assert_eq!((malformed.status, malformed.code()), (400, "INVALID_REQUEST"));
    // The body is read after the attempt is reserved, bounded, and only as JSON.
    // (Over a raw connection: the server answers from the declared length without reading the
    // body, so the test sends none; a client still sending would see its connection reset.)
    let oversized = raw_request(
        &running.url(),
        &format!(
            "POST /auth/login HTTP/1.1\r\nhost: x\r\nx-forwarded-for: {ip}\r\ncontent-type: application/json\r\n\
             content-length: 65536\r\nconnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(oversized.starts_with("HTTP/1.1 413"), "{oversized}");
    assert!(oversized.contains("PAYLOAD_TOO_LARGE"), "{oversized}");
    let form = answer(
        flow.request(reqwest::Method::POST, "/auth/login", LAPTOP, ip)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=alice&password=alice-password"),
    )
    .await;
    assert_eq!((form.status, form.code()), (415, "UNSUPPORTED_MEDIA_TYPE"));
    // None of those was a password check: the address still has 3 of its 5 attempts.
    for _ in 0..3 {
        assert_eq!(flow.login("mallory", "guess", ip).await.code(), "INVALID_CREDENTIALS");
    }
    assert_eq!(flow.login("mallory", "guess", ip).await.status, 429);

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

/// Security review: the login read its body while holding a place in the hash's line, so a
/// few clients that send headers and then no body held every place and every login got 503.
/// The places are taken only after the body has been read: the slow senders hold none.
#[tokio::test]
async fn slow_login_bodies_do_not_take_the_hash_line_from_a_correct_login() {
    use tokio::io::AsyncWriteExt;
    // Far more slow senders than the line has places (the hashing slots plus 32 waiting, on any
    // machine), each from its own network, within a budget that does not stop them.
    const SLOW: usize = 300;
    let env = [("TRUSTED_PROXIES", "127.0.0.1/32"), ("LOGIN_ATTEMPTS", "1000/1m")];
    let running = Example::start("full_flow", &env);
    let flow = Flow { base: running.url(), http: client() };
    let mut slow = Vec::with_capacity(SLOW);
    for i in 0..SLOW {
        let address = running.url();
        let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://")).await.unwrap();
        let head = format!(
            "POST /auth/login HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 10.{}.{}.1\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"username\"",
            i / 256,
            i % 256
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        slow.push(stream);
    }
    // The server has read those heads (each answer on a later connection comes after them).
    for _ in 0..3 {
        assert_eq!(answer(flow.http.get(format!("{}/health", flow.base))).await.status, 200);
    }
    let login = flow.login("alice", "alice-password", "203.0.113.77").await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    drop(slow);
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

#[test]
fn bad_attempt_limits_exit_with_code_2_naming_the_variable() {
    for (variable, value) in [("LOGIN_ATTEMPTS", "many"), ("MFA_ATTEMPTS", "5/15x"), ("LOGIN_ATTEMPTS", "0")]
    {
        let output = expect_exit("full_flow", &[(variable, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}: {stderr}");
        assert!(stderr.contains(variable), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `LOGIN_ATTEMPTS=2/1m`: the third wrong password within the minute is refused, and told to
/// come back within the minute.
#[tokio::test]
async fn login_attempts_sets_the_budget_and_the_window() {
    let env = [("TRUSTED_PROXIES", "127.0.0.1/32"), ("LOGIN_ATTEMPTS", "2/1m"), ("MFA_ATTEMPTS", "3/90s")];
    let mut running = Example::start("full_flow", &env);
    let limits = (0..4).map(|_| running.next_line()).find(|line| line.contains("limits:")).unwrap();
    assert!(
        limits.contains("2 per 1m wrong passwords") && limits.contains("3 per 90s wrong codes"),
        "{limits}"
    );
    let flow = Flow { base: running.url(), http: client() };
    let ip = "203.0.113.50";
    for _ in 0..2 {
        assert_eq!(flow.login("alice", "guess", ip).await.code(), "INVALID_CREDENTIALS");
    }
    let refused = flow.login("alice", "alice-password", ip).await;
    assert_eq!(refused.status, 429);
    let retry_after: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn refresh_rotates_detects_reuse_and_logout_revokes() {
    let running = Example::start("full_flow", &[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32")]);
    let flow = Flow { base: running.url(), http: client() };
    let home = "198.51.100.30";
    let login = flow.login("alice", "alice-password", home).await;
    let first_token = access_token(&login);
    let first = refresh_token(&login);

    // Refreshed from another address: a new access token bound to that address, a new cookie.
    let cafe = "198.51.100.31";
    let refreshed = flow.refresh(&first, cafe).await;
    let renewed = access_token(&refreshed);
    let second = refresh_token(&refreshed);
    assert_ne!(second, first, "the refresh token is rotated");
    assert_eq!(refreshed.headers.get("cache-control").unwrap(), "no-store");
    let claims = payload(&renewed);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["cnf"]["cip"], cafe);
    assert_ne!(claims["jti"], payload(&first_token)["jti"]);
    assert_eq!(flow.get("/protected", &renewed, LAPTOP, cafe).await.status, 200);
    assert_eq!(flow.get("/protected", &renewed, LAPTOP, home).await.code(), "BINDING_MISMATCH");

    // No cookie, or a value that is not one of ours.
    let none = answer(flow.request(reqwest::Method::POST, "/auth/refresh", LAPTOP, home)).await;
    assert_eq!((none.status, none.code()), (401, "INVALID_REFRESH_TOKEN"));
    let forged = flow.refresh("forged.value", home).await;
    assert_eq!((forged.status, forged.code()), (401, "INVALID_REFRESH_TOKEN"));

    // The first token again while the second is unused: a retry (a lost response), answered
    // with the same cookie within the grace period.
    let retried = flow.refresh(&first, home).await;
    assert_eq!(refresh_token(&retried), second);
    // Once the second is used, the first again is a replay: 401, and the family dies.
    let third = refresh_token(&flow.refresh(&second, home).await);
    let replay = flow.refresh(&first, home).await;
    assert_eq!((replay.status, replay.code()), (401, "REFRESH_TOKEN_REUSED"));
    assert!(clears_refresh_cookie(&replay));
    let dead = flow.refresh(&third, cafe).await;
    assert_eq!((dead.status, dead.code()), (401, "INVALID_REFRESH_TOKEN"));
    // The family's access tokens die with it: the thief's copy is worth nothing.
    assert_eq!(flow.get("/protected", &renewed, LAPTOP, cafe).await.code(), "TOKEN_REVOKED");
    assert_eq!(flow.get("/protected", &first_token, LAPTOP, home).await.code(), "TOKEN_REVOKED");

    // Logout: the access token is refused from now on, the refresh family is revoked.
    next_second().await;
    let login = flow.login("alice", "alice-password", home).await;
    let token = access_token(&login);
    let refresh = refresh_token(&login);
    assert_eq!(flow.get("/protected", &token, LAPTOP, home).await.status, 200);
    let logout = flow.logout(&token, &refresh, home).await;
    assert_eq!(logout.status, 204, "{:?}", logout.body);
    assert!(clears_refresh_cookie(&logout));
    let revoked = flow.get("/protected", &token, LAPTOP, home).await;
    assert_eq!((revoked.status, revoked.code()), (401, "TOKEN_REVOKED"));
    let after = flow.refresh(&refresh, home).await;
    assert_eq!((after.status, after.code()), (401, "INVALID_REFRESH_TOKEN"));
    // Logging out again (a revoked access token, a dead cookie) still answers 204.
    let again = flow.logout(&token, &refresh, home).await;
    assert_eq!(again.status, 204, "{:?}", again.body);
    assert!(clears_refresh_cookie(&again));
}

/// Issue #31: the logout needs no valid access token. With an expired one (or none) and the
/// refresh cookie, it ends the family and the access tokens it minted; the next refresh is
/// refused. Alice's other session loses its access token too (by subject and time), and gets
/// a new one with its own refresh cookie.
#[tokio::test]
async fn logout_with_an_expired_access_token_ends_the_session() {
    let running = Example::start("full_flow", &[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32")]);
    let flow = Flow { base: running.url(), http: client() };
    let home = "198.51.100.60";
    let phone = "2001:db8:60::7";
    let login = flow.login("alice", "alice-password", home).await;
    let (token, refresh) = (access_token(&login), refresh_token(&login));
    let other = flow.login("alice", "alice-password", phone).await;
    let (other_token, other_refresh) = (access_token(&other), refresh_token(&other));

    // The same session's token, expired a minute ago (signed with the service's secret).
    let mut claims = payload(&token);
    let now = harness::now();
    claims["iat"] = json!(now - 960);
    claims["nbf"] = json!(now - 960);
    claims["exp"] = json!(now - 60);
    let key = harness::TestKey::hmac(tower_jwt_guard::Algorithm::HS256, SECRET.as_bytes());
    let expired = key.sign_parts(token.split('.').next().unwrap(), &harness::b64(claims.to_string()));
    assert_eq!(flow.get("/protected", &expired, LAPTOP, home).await.code(), "TOKEN_EXPIRED");
    assert_eq!(flow.get("/protected", &token, LAPTOP, home).await.status, 200);

    let logout = flow.logout(&expired, &refresh, home).await;
    assert_eq!(logout.status, 204, "{:?}", logout.body);
    assert!(clears_refresh_cookie(&logout));
    let refused = flow.refresh(&refresh, home).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_REFRESH_TOKEN"));
    assert_eq!(flow.get("/protected", &token, LAPTOP, home).await.code(), "TOKEN_REVOKED");
    assert_eq!(flow.get("/protected", &other_token, LAPTOP, phone).await.code(), "TOKEN_REVOKED");

    // The other session refreshes (in a later second than the logout) and carries on.
    next_second().await;
    let renewed = flow.refresh(&other_refresh, phone).await;
    let renewed_token = access_token(&renewed);
    assert_eq!(flow.get("/protected", &renewed_token, LAPTOP, phone).await.status, 200);

    // The cookie alone, no Authorization at all: the same.
    let cookie_only = answer(
        flow.request(reqwest::Method::POST, "/auth/logout", LAPTOP, phone)
            .header("cookie", format!("{REFRESH_COOKIE}={}", refresh_token(&renewed))),
    )
    .await;
    assert_eq!(cookie_only.status, 204, "{:?}", cookie_only.body);
    assert_eq!(flow.get("/protected", &renewed_token, LAPTOP, phone).await.code(), "TOKEN_REVOKED");
    assert_eq!(flow.refresh(&refresh_token(&renewed), phone).await.code(), "INVALID_REFRESH_TOKEN");
    // A client without the cookie: the access token it presents (valid) is revoked by its jti.
    next_second().await;
    let login = flow.login("alice", "alice-password", home).await;
    let token = access_token(&login);
    let bearer_only =
        answer(flow.request(reqwest::Method::POST, "/auth/logout", LAPTOP, home).bearer_auth(&token)).await;
    assert_eq!(bearer_only.status, 204, "{:?}", bearer_only.body);
    assert_eq!(flow.get("/protected", &token, LAPTOP, home).await.code(), "TOKEN_REVOKED");
    // POST only: a GET (a link, an image) logs nobody out.
    let get = answer(flow.request(reqwest::Method::GET, "/auth/logout", LAPTOP, home)).await;
    assert_eq!(get.status, 405);
}

/// Issue #31: 30 wrong passwords sent at once from one address get at most 5 password checks
/// (401); the others are refused before any work (429 with `Retry-After`), and then the right
/// password is refused too.
#[tokio::test]
async fn thirty_concurrent_wrong_passwords_get_five_checks() {
    let mut running =
        Example::start("full_flow", &[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32")]);
    let flow = Flow { base: running.url(), http: client() };
    burst_of_wrong_passwords(&[&flow]).await;
    assert_eq!(password_checks(&flow, &mut [&mut running]).await, 5);
}

/// How many passwords the instances checked for the burst's address, from their logs (each
/// check logs `password checked` with the client): a last login from a marker address ends
/// the count.
async fn password_checks(flow: &Flow, instances: &mut [&mut Example]) -> usize {
    let marker = "198.51.100.99";
    let mut checks = 0;
    for instance in instances.iter_mut() {
        let base = instance.url();
        let marked = Flow { base, http: flow.http.clone() };
        assert_eq!(marked.login("mallory", "marker", marker).await.code(), "INVALID_CREDENTIALS");
        loop {
            let line = instance.next_line();
            if line.contains("password checked") && line.contains(marker) {
                break;
            }
            checks += usize::from(line.contains("password checked") && line.contains(BURST_ADDRESS));
        }
    }
    checks
}

/// The address of the burst of wrong passwords.
const BURST_ADDRESS: &str = "192.0.2.77";

/// 30 concurrent wrong passwords from one address, spread over `instances`: exactly 5 are
/// checked, 25 refused with `Retry-After`; then the right password is refused on every one.
async fn burst_of_wrong_passwords(instances: &[&Flow]) {
    let attacker = BURST_ADDRESS;
    let guesses: Vec<String> = (0..30).map(|i| format!("guess-{i}")).collect();
    let attempts = guesses
        .iter()
        .enumerate()
        .map(|(i, guess)| instances[i % instances.len()].login("alice", guess, attacker));
    let answers = futures_util::future::join_all(attempts).await;
    let checked = answers.iter().filter(|a| a.status == 401 && a.code() == "INVALID_CREDENTIALS").count();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(
        (checked, refused.len()),
        (5, 25),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for answer in refused {
        assert_eq!(answer.code(), "TOO_MANY_ATTEMPTS");
        assert_retry_after_about_15_minutes(answer);
    }
    for instance in instances {
        let right = instance.login("alice", "alice-password", attacker).await;
        assert_eq!(right.status, 429, "{:?}", right.body);
        // From another address too: the account is locked.
        assert_eq!(instance.login("alice", "alice-password", "198.51.100.77").await.status, 429);
    }
}

/// Issue #31: an attacker who knows the password logs in from ever new addresses (IPv4, and
/// IPv6 from several /64s, all through the trusted proxy) and tries a code from each: the
/// account's step-up budget counts them all, and then even the right code is refused.
#[tokio::test]
async fn wrong_totp_codes_from_many_addresses_exhaust_the_accounts_budget() {
    let running = Example::start("full_flow", &[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32")]);
    let flow = Flow { base: running.url(), http: client() };
    wrong_codes_from_many_addresses(&[&flow], 5).await;
}

/// `left`: the wrong codes alice's budget still allows.
async fn wrong_codes_from_many_addresses(instances: &[&Flow], left: usize) {
    let addresses = ["192.0.2.10", "2001:db8:1:1::10", "192.0.2.11", "2001:db8:1:2::10", "2001:db8:1:3::10"];
    let addresses = &addresses[..left];
    let totp = authenticator();
    for (i, ip) in addresses.iter().enumerate() {
        let instance = instances[i % instances.len()];
        let token = access_token(&instance.login("alice", "alice-password", ip).await);
        let code = totp.generate_current().to_string();
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 500_000) % 1_000_000);
        let refused = instance.verify(&token, &wrong, ip).await;
        assert_eq!((refused.status, refused.code()), (401, "INVALID_OTP"), "from {ip}");
    }
    let ip = "2001:db8:1:4::10";
    for instance in instances {
        let token = access_token(&instance.login("alice", "alice-password", ip).await);
        let right = instance.verify(&token, &totp.generate_current().to_string(), ip).await;
        assert_eq!((right.status, right.code()), (429, "TOO_MANY_ATTEMPTS"), "{:?}", right.body);
        assert_retry_after_about_15_minutes(&right);
    }
}

/// Issue #4's "done when": two full_flow processes sharing one Redis.
#[cfg(feature = "redis")]
#[tokio::test]
async fn two_instances_share_revocations_and_refresh_families_through_redis() {
    let test = "two_instances_share_revocations_and_refresh_families_through_redis";
    let Some(redis) = redis_server::Redis::for_test(test) else { return };
    let url = redis.url();
    let env = [("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32"), ("REDIS_URL", url.as_str())];
    let mut instance_a = Example::start("full_flow", &env);
    let instance_b = Example::start("full_flow", &env);
    let stores_line = (0..3).map(|_| instance_a.next_line()).last().unwrap();
    assert!(stores_line.contains("Redis (REDIS_URL)"), "{stores_line}");
    assert!(!stores_line.contains(&url), "the banner must not print REDIS_URL: {stores_line}");
    let http = client();
    let a = Flow { base: instance_a.url(), http: http.clone() };
    let b = Flow { base: instance_b.url(), http };
    let home = "198.51.100.40";

    // A logout on A is refused on B.
    let login = a.login("alice", "alice-password", home).await;
    let token = access_token(&login);
    let refresh = refresh_token(&login);
    let before = b.get("/protected", &token, LAPTOP, home).await;
    assert_eq!(before.status, 200, "{:?}", before.body);
    assert_eq!(a.logout(&token, &refresh, home).await.status, 204);
    // B learns of it through Redis pub/sub, within milliseconds; the poll only bounds the wait.
    eventually("B to refuse the logged-out token", || async {
        let answer = b.get("/protected", &token, LAPTOP, home).await;
        assert!(answer.status == 200 || answer.code() == "TOKEN_REVOKED", "{:?}", answer.body);
        answer.code() == "TOKEN_REVOKED"
    })
    .await;
    assert_eq!(a.get("/protected", &token, LAPTOP, home).await.code(), "TOKEN_REVOKED");
    let dead = b.refresh(&refresh, home).await;
    assert_eq!((dead.status, dead.code()), (401, "INVALID_REFRESH_TOKEN"));

    // A refresh token used on A, then replayed on B: refused, and the one A handed out dies.
    next_second().await;
    let login = a.login("alice", "alice-password", home).await;
    let first = refresh_token(&login);
    let on_a = a.refresh(&first, home).await;
    let renewed = access_token(&on_a);
    let second = refresh_token(&on_a);
    assert_eq!(b.get("/protected", &renewed, LAPTOP, home).await.status, 200);
    // Retried on B while the second is unused: the same cookie; once it is used, a replay.
    assert_eq!(refresh_token(&b.refresh(&first, home).await), second);
    let third = refresh_token(&b.refresh(&second, home).await);
    let replay = b.refresh(&first, home).await;
    assert_eq!((replay.status, replay.code()), (401, "REFRESH_TOKEN_REUSED"));
    for (name, instance) in [("A", &a), ("B", &b)] {
        let dead = instance.refresh(&third, home).await;
        assert_eq!((dead.status, dead.code()), (401, "INVALID_REFRESH_TOKEN"), "on {name}");
    }
    // Reuse detected on B: the family's access token, minted on A, is refused on A too.
    eventually("A to refuse the reused family's access token", || async {
        a.get("/protected", &renewed, LAPTOP, home).await.code() == "TOKEN_REVOKED"
    })
    .await;
    drop(redis);
}

/// Issue #31, with two instances sharing one Redis: the attempt budgets are one for both, and
/// a TOTP code used on one instance is refused on the other.
#[cfg(feature = "redis")]
#[tokio::test]
async fn two_instances_share_the_attempt_budgets_and_totp_steps_through_redis() {
    let test = "two_instances_share_the_attempt_budgets_and_totp_steps_through_redis";
    let Some(redis) = redis_server::Redis::for_test(test) else { return };
    let url = redis.url();
    let env = [("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32"), ("REDIS_URL", url.as_str())];
    let (mut instance_a, mut instance_b) =
        (Example::start("full_flow", &env), Example::start("full_flow", &env));
    let http = client();
    let a = Flow { base: instance_a.url(), http: http.clone() };
    let b = Flow { base: instance_b.url(), http };
    let home = "198.51.100.70";

    // A code used on A is refused on B (the token passes B's layer: the refusal is the code's).
    let token = access_token(&a.login("alice", "alice-password", home).await);
    let code = authenticator().generate_current().to_string();
    let on_a = a.verify(&token, &code, home).await;
    assert_eq!(on_a.status, 200, "{:?}", on_a.body);
    let on_b = b.verify(&token, &code, home).await;
    assert_eq!((on_b.status, on_b.code()), (401, "INVALID_OTP"));

    // Wrong codes from addresses spread over both instances: one budget, of which the replay
    // on B took one.
    wrong_codes_from_many_addresses(&[&a, &b], 4).await;
    // 30 wrong passwords spread over both: 5 checks in all.
    burst_of_wrong_passwords(&[&a, &b]).await;
    assert_eq!(password_checks(&a, &mut [&mut instance_a, &mut instance_b]).await, 5);
    drop(redis);
}

#[test]
fn bad_redis_url_exits_with_code_2_naming_the_variable() {
    // With the `redis` feature a malformed URL is refused; without it, any REDIS_URL is.
    let url = if cfg!(feature = "redis") { "::not a url" } else { "redis://127.0.0.1:6379/" };
    let output = expect_exit("full_flow", &[("REDIS_URL", url)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if !cfg!(feature = "redis") {
        assert!(stderr.contains("--features redis"), "{stderr}");
    }
}

/// RFC 9449 §8 with `DPOP_NONCE=1`: the token endpoint answers a proof without the server's
/// nonce with 400 `use_dpop_nonce` and the nonce to use in `DPoP-Nonce`; the retry with it gets
/// the bound token, which the resource then also wants with a nonce in each proof.
#[tokio::test]
async fn with_nonces_the_token_endpoint_asks_for_one_with_use_dpop_nonce() {
    let running = Example::start(
        "full_flow",
        &[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32"), ("DPOP_NONCE", "1")],
    );
    let flow = Flow { base: running.url(), http: client() };
    let home = "198.51.100.51";
    let key = ProofKey::generate(tower_jwt_guard::Algorithm::ES256);
    let url = |path: &str| format!("{}{path}", flow.base);
    let body = json!({ "username": "alice", "password": "alice-password" });
    let login_with = |proof: String| {
        flow.request(reqwest::Method::POST, "/auth/login", LAPTOP, home).header("dpop", proof).json(&body)
    };
    let with_nonce = |htm: &str, path: &str, token: Option<&str>, nonce: &str| {
        let mut spec = Spec::new(&key, htm, &url(path), token);
        spec.nonce = Some(nonce.to_owned());
        key.sign(&spec)
    };
    let nonce_of = |answer: &Answer| {
        answer
            .headers
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("a DPoP-Nonce header: {:?} {:?}", answer.headers, answer.body))
    };

    let first = answer(login_with(key.proof("POST", &url("/auth/login"), None))).await;
    assert_eq!(first.status, 400, "{:?}", first.body);
    assert_eq!(first.body["error"], "use_dpop_nonce");
    let nonce = nonce_of(&first);
    let login = answer(login_with(with_nonce("POST", "/auth/login", None, &nonce))).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["token_type"], "DPoP");
    let token = access_token(&login);
    assert_eq!(payload(&token)["cnf"]["jkt"], key.jkt());

    // A made-up nonce is no nonce: the same answer.
    let forged = answer(login_with(with_nonce("POST", "/auth/login", None, "made-up"))).await;
    assert_eq!((forged.status, &forged.body["error"]), (400, &json!("use_dpop_nonce")));

    let protected = |proof: String| {
        flow.request(reqwest::Method::GET, "/protected", LAPTOP, home)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
    };
    let without = answer(protected(key.proof("GET", &url("/protected"), Some(&token)))).await;
    assert_eq!((without.status, without.code()), (401, "USE_DPOP_NONCE"));
    let nonce = nonce_of(&without);
    let with = answer(protected(with_nonce("GET", "/protected", Some(&token), &nonce))).await;
    assert_eq!(with.status, 200, "{:?}", with.body);
}

/// Issue #15: a login with a DPoP proof gets a token bound to the proof's key (`cnf.jkt`,
/// `token_type` `DPoP`), usable only with a fresh proof; without a proof, bearer as before.
#[tokio::test]
async fn a_login_with_a_dpop_proof_gets_a_dpop_bound_token() {
    let running = Example::start("full_flow", &[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32")]);
    let flow = Flow { base: running.url(), http: client() };
    let home = "198.51.100.50";
    let key = ProofKey::generate(tower_jwt_guard::Algorithm::ES256);
    let url = |path: &str| format!("{}{path}", flow.base);
    let body = json!({ "username": "alice", "password": "alice-password" });
    let login_with = |proof: String| {
        flow.request(reqwest::Method::POST, "/auth/login", LAPTOP, home).header("dpop", proof).json(&body)
    };

    let login = answer(login_with(key.proof("POST", &url("/auth/login"), None))).await;
    let token = access_token(&login);
    assert_eq!(login.body["token_type"], "DPoP");
    let claims = payload(&token);
    assert_eq!(claims["cnf"]["jkt"], key.jkt());
    assert_eq!(claims["cnf"]["cip"], home, "the other bindings still apply");
    refresh_token(&login);

    // With a fresh proof for each request: accepted; the proof once only.
    let with_proof = |proof: &str| {
        flow.request(reqwest::Method::GET, "/protected", LAPTOP, home)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof.to_owned())
    };
    let proof = key.proof("GET", &url("/protected"), Some(&token));
    let protected = answer(with_proof(&proof)).await;
    assert_eq!((protected.status, &protected.body["sub"]), (200, &json!("alice")), "{:?}", protected.body);
    let replayed = answer(with_proof(&proof)).await;
    assert_eq!((replayed.status, replayed.code()), (401, "INVALID_DPOP_PROOF"));
    // Without a proof, or as a bearer token: refused (RFC 9449 §7.2).
    let no_proof = answer(
        flow.request(reqwest::Method::GET, "/protected", LAPTOP, home)
            .header("authorization", format!("DPoP {token}")),
    )
    .await;
    assert_eq!((no_proof.status, no_proof.code()), (401, "INVALID_DPOP_PROOF"));
    let as_bearer = flow.get("/protected", &token, LAPTOP, home).await;
    assert_eq!((as_bearer.status, as_bearer.code()), (401, "INVALID_TOKEN"));
    let challenges: Vec<&str> =
        as_bearer.headers.get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("DPoP ") && c.contains("invalid_token")),
        "{challenges:?}"
    );
    // Another key's proof: refused.
    let thief = ProofKey::generate(tower_jwt_guard::Algorithm::ES256);
    let stolen = answer(with_proof(&thief.proof("GET", &url("/protected"), Some(&token)))).await;
    assert_eq!((stolen.status, stolen.code()), (401, "INVALID_TOKEN"), "the key is not the token's");

    // A proof that does not verify at the token endpoint (made for another method): 400.
    let invalid = answer(login_with(key.proof("GET", &url("/auth/login"), None))).await;
    assert_eq!(invalid.status, 400, "{:?}", invalid.body);
    assert_eq!(invalid.body["error"], "invalid_dpop_proof");
    // A refresh with a proof: a DPoP-bound token again.
    let refreshed = answer(
        flow.request(reqwest::Method::POST, "/auth/refresh", LAPTOP, home)
            .header("cookie", format!("{REFRESH_COOKIE}={}", refresh_token(&login)))
            .header("dpop", key.proof("POST", &url("/auth/refresh"), None)),
    )
    .await;
    let renewed = access_token(&refreshed);
    assert_eq!(refreshed.body["token_type"], "DPoP");
    assert_eq!(payload(&renewed)["cnf"]["jkt"], key.jkt());

    // Without a proof: a bearer token, as before.
    let plain = flow.login("alice", "alice-password", home).await;
    let bearer = access_token(&plain);
    assert_eq!(plain.body["token_type"], "Bearer");
    assert!(payload(&bearer)["cnf"].get("jkt").is_none());
    assert_eq!(flow.get("/protected", &bearer, LAPTOP, home).await.status, 200);

    // Step-up of the bound token: a new token bound to the same key, never a downgrade to a
    // bearer token (the layer has checked and recorded the request's proof; binding reuses it).
    let code = authenticator().generate_current().to_string();
    let step_up = answer(
        flow.request(reqwest::Method::POST, "/auth/mfa/verify", LAPTOP, home)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof("POST", &url("/auth/mfa/verify"), Some(&token)))
            .json(&json!({ "code": code })),
    )
    .await;
    assert_eq!(
        (step_up.status, step_up.body["token_type"].as_str()),
        (200, Some("DPoP")),
        "{:?}",
        step_up.body
    );
    let stepped_up = access_token(&step_up);
    assert_eq!(payload(&stepped_up)["cnf"]["jkt"], payload(&token)["cnf"]["jkt"]);
    assert_eq!(payload(&stepped_up)["amr"], json!(["pwd", "otp"]));
}

/// Security review: a logout with a DPoP login's cookie but without the key (a cookie thief),
/// or with an old, already-rotated cookie, ends that family and nothing more: the user's other
/// sessions keep their access tokens. With the current cookie and the key, the subject's access
/// tokens are revoked as before.
#[tokio::test]
async fn a_logout_without_the_key_or_with_an_old_cookie_ends_only_that_session() {
    let running = Example::start("full_flow", &[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32")]);
    let flow = Flow { base: running.url(), http: client() };
    let home = "198.51.100.60";
    let key = ProofKey::generate(tower_jwt_guard::Algorithm::ES256);
    let url = |path: &str| format!("{}{path}", flow.base);
    let body = json!({ "username": "alice", "password": "alice-password" });
    let dpop_login = || async {
        let request = flow.request(reqwest::Method::POST, "/auth/login", LAPTOP, home);
        let login =
            answer(request.header("dpop", key.proof("POST", &url("/auth/login"), None)).json(&body)).await;
        assert_eq!(login.body["token_type"], "DPoP", "{:?}", login.body);
        refresh_token(&login)
    };
    // Only the cookie, as a thief would send it (and an optional DPoP proof).
    let logout = |cookie: String, proof: Option<String>| {
        let request = flow.request(reqwest::Method::POST, "/auth/logout", LAPTOP, home);
        let request = request.header("cookie", format!("{REFRESH_COOKIE}={cookie}"));
        answer(match proof {
            Some(proof) => request.header("dpop", proof),
            None => request,
        })
    };
    let other = access_token(&flow.login("alice", "alice-password", home).await);
    assert_eq!(flow.get("/protected", &other, LAPTOP, home).await.status, 200);

    // The DPoP login's cookie without the key: its family ends ...
    let stolen = dpop_login().await;
    assert_eq!(logout(stolen.clone(), None).await.status, 204);
    let refresh = flow
        .request(reqwest::Method::POST, "/auth/refresh", LAPTOP, home)
        .header("cookie", format!("{REFRESH_COOKIE}={stolen}"))
        .header("dpop", key.proof("POST", &url("/auth/refresh"), None));
    assert_eq!(answer(refresh).await.status, 401, "the family is revoked");
    // ... and nothing more: the other session's access token still works.
    assert_eq!(flow.get("/protected", &other, LAPTOP, home).await.status, 200);

    // An old, already-rotated cookie of a bearer session: the same.
    let old = refresh_token(&flow.login("alice", "alice-password", home).await);
    let current = refresh_token(&flow.refresh(&old, home).await);
    assert_eq!(logout(old, None).await.status, 204);
    assert_eq!(flow.refresh(&current, home).await.status, 401, "the family is revoked");
    assert_eq!(flow.get("/protected", &other, LAPTOP, home).await.status, 200);

    // The current cookie with the key: every access token of the user ends.
    let mine = dpop_login().await;
    assert_eq!(logout(mine, Some(key.proof("POST", &url("/auth/logout"), None))).await.status, 204);
    let ended = flow.get("/protected", &other, LAPTOP, home).await;
    assert_eq!((ended.status, ended.code()), (401, "TOKEN_REVOKED"));
}

/// With `JWE_KEY` (a shared secret, `JWE_ALG=A256KW`), every access token is encrypted: the
/// login, the step-up and the refresh answer JWEs, which the layer decrypts, binds and revokes
/// like signed tokens.
#[cfg(feature = "jwe")]
#[tokio::test]
async fn encrypted_access_tokens_through_the_whole_flow() {
    let env = [
        ("JWT_SECRET", SECRET),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("JWE_KEY", "full-flow-encryption-secret-32b!"),
        ("JWE_ALG", "A256KW"),
    ];
    let running = Example::start("full_flow", &env);
    assert!(running.banner.contains("encrypted tokens A256KW/A256GCM"), "{}", running.banner);
    let flow = Flow { base: running.url(), http: client() };
    let home = "198.51.100.7";
    let login = flow.login("alice", "alice-password", home).await;
    let token = access_token(&login);
    assert_eq!(token.split('.').count(), 5, "an encrypted token");
    let protected = flow.get("/protected", &token, LAPTOP, home).await;
    assert_eq!((protected.status, &protected.body["sub"]), (200, &json!("alice")));
    // The bindings inside the encrypted claims hold.
    assert_eq!(flow.get("/protected", &token, "curl/8.5.0", home).await.code(), "BINDING_MISMATCH");
    // Step-up: the new token is encrypted too.
    let verified = flow.verify(&token, &authenticator().generate_current().to_string(), home).await;
    let stepped_up = access_token(&verified);
    assert_eq!(stepped_up.split('.').count(), 5);
    assert_eq!(flow.get("/admin", &stepped_up, LAPTOP, home).await.status, 200);
    // Refresh, then logout revokes the encrypted token.
    let refreshed = flow.refresh(&refresh_token(&login), home).await;
    let renewed = access_token(&refreshed);
    assert_eq!(renewed.split('.').count(), 5);
    let logout = flow.logout(&renewed, &refresh_token(&refreshed), home).await;
    assert_eq!(logout.status, 204, "{:?}", logout.body);
    assert_eq!(flow.get("/protected", &renewed, LAPTOP, home).await.code(), "TOKEN_REVOKED");
}
