//! Issue #25: the sender constraint holds through the whole session of the full_flow example,
//! run as a user runs it: a DPoP login, calls, refreshes and logout, on two instances sharing one
//! real `redis-server` (feature `redis`), and on one instance with the memory stores. The
//! client is the tests' own DPoP code, then panva's npm `dpop` package (`tests/interop`).
//!
//! Both instances answer for one external URL (`PUBLIC_URL`), as behind a load balancer: a
//! proof made for one is good on the other, once.

mod dpop_support;
mod example_process;
mod harness;
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
#[allow(dead_code)] // the harness also serves tests that stop and restart Redis
mod redis_server;

use std::process::Command;

use dpop_support::ProofKey;
use example_process::Example;
use harness::{answer, client, Answer};
use serde_json::{json, Value};
use tower_jwt_guard::Algorithm;

const SECRET: &str = "session-binding-test-secret-32-bytes!";
/// The one external URL of every instance (the proofs' `htu`).
const PUBLIC_URL: &str = "https://api.session.test";
const REFRESH_COOKIE: &str = "refresh_token";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
const HOME: &str = "198.51.100.60";

/// One instance, as the client reaches it (the test plays the trusted proxy).
struct Instance {
    base: String,
    http: reqwest::Client,
}

impl Instance {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("user-agent", BROWSER)
            .header("accept-language", "en-GB")
            .header("x-forwarded-for", HOME)
    }

    async fn login(&self, proof: &str) -> Answer {
        let body = json!({ "username": "alice", "password": "alice-password" });
        answer(self.request(reqwest::Method::POST, "/auth/login").header("dpop", proof).json(&body)).await
    }

    async fn protected(&self, token: &str, proof: &str) -> Answer {
        let request = self.request(reqwest::Method::GET, "/protected");
        answer(request.header("authorization", format!("DPoP {token}")).header("dpop", proof)).await
    }

    /// `POST /auth/refresh` with the refresh cookie and, when given, a proof.
    async fn refresh(&self, cookie: &str, proof: Option<&str>) -> Answer {
        let mut request = self
            .request(reqwest::Method::POST, "/auth/refresh")
            .header("cookie", format!("{REFRESH_COOKIE}={cookie}"));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        answer(request).await
    }

    async fn logout(&self, token: &str, proof: &str, cookie: &str) -> Answer {
        let request = self
            .request(reqwest::Method::POST, "/auth/logout")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .header("cookie", format!("{REFRESH_COOKIE}={cookie}"));
        answer(request).await
    }
}

fn url(path: &str) -> String {
    format!("{PUBLIC_URL}{path}")
}

fn payload(token: &str) -> Value {
    serde_json::from_slice(&harness::b64_decode(token.split('.').nth(1).unwrap())).unwrap()
}

/// The access token of a 200 answer, checked to be bound to `key`.
fn bound_token(answer: &Answer, key: &ProofKey) -> String {
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["token_type"], "DPoP", "{:?}", answer.body);
    let token = answer.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(payload(&token)["cnf"]["jkt"], key.jkt());
    token
}

/// The refresh token an answer sets, if any.
fn refresh_cookie(answer: &Answer) -> Option<String> {
    let prefix = format!("{REFRESH_COOKIE}=");
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&prefix) && !value.starts_with(&format!("{prefix};")))
        .map(|value| value[prefix.len()..].split(';').next().unwrap().to_string())
}

/// A refresh refused for the sender constraint: RFC 6749's `invalid_grant` (400), nothing
/// rotated (no new cookie).
fn assert_sender_mismatch(answer: &Answer, what: &str) {
    assert_eq!((answer.status, answer.code()), (400, "SENDER_MISMATCH"), "{what}: {:?}", answer.body);
    assert_eq!(answer.body["error"], "invalid_grant", "{what}");
    assert_eq!(refresh_cookie(answer), None, "{what}: a refused refresh rotates nothing");
}

/// The session, logging in on `a` and going on on `b` (the same instance with memory stores).
async fn whole_session(a: &Instance, b: &Instance) {
    let key = ProofKey::generate(Algorithm::ES256);
    let login_proof = key.proof("POST", &url("/auth/login"), None);
    let login = a.login(&login_proof).await;
    let token = bound_token(&login, &key);
    let cookie = refresh_cookie(&login).expect("the login sets the refresh cookie");

    // The token on the other instance, with a fresh proof; the proof once only, anywhere.
    let proof = key.proof("GET", &url("/protected"), Some(&token));
    let call = b.protected(&token, &proof).await;
    assert_eq!((call.status, &call.body["sub"]), (200, &json!("alice")), "{:?}", call.body);
    let replayed = a.protected(&token, &proof).await;
    assert_eq!((replayed.status, replayed.code()), (401, "INVALID_DPOP_PROOF"));
    // The login's proof replayed on the other instance: refused (RFC 9449 §11.1).
    let again = b.login(&login_proof).await;
    assert_eq!((again.status, &again.body["error"]), (400, &json!("invalid_dpop_proof")), "{:?}", again.body);

    // The refresh cookie with another key's proof, or without a proof: refused, not rotated.
    let thief = ProofKey::generate(Algorithm::ES256);
    let stolen = b.refresh(&cookie, Some(&thief.proof("POST", &url("/auth/refresh"), None))).await;
    assert_sender_mismatch(&stolen, "another key");
    assert_sender_mismatch(&b.refresh(&cookie, None).await, "no proof");

    // With the login's key: a token on that key, and a rotated cookie.
    let refresh_proof = key.proof("POST", &url("/auth/refresh"), None);
    let refreshed = b.refresh(&cookie, Some(&refresh_proof)).await;
    let renewed = bound_token(&refreshed, &key);
    let rotated = refresh_cookie(&refreshed).expect("a rotated cookie");
    assert_ne!(rotated, cookie);
    // Its proof replayed on the other instance, with the rotated cookie: refused, nothing spent.
    let replayed = a.refresh(&rotated, Some(&refresh_proof)).await;
    assert_eq!(
        (replayed.status, &replayed.body["error"]),
        (400, &json!("invalid_dpop_proof")),
        "{:?}",
        replayed.body
    );
    assert_eq!(refresh_cookie(&replayed), None);
    let call = a.protected(&renewed, &key.proof("GET", &url("/protected"), Some(&renewed))).await;
    assert_eq!(call.status, 200, "{:?}", call.body);
    // The rotated family is still bound to the key.
    let stolen = a.refresh(&rotated, Some(&thief.proof("POST", &url("/auth/refresh"), None))).await;
    assert_sender_mismatch(&stolen, "another key, after a rotation");

    // Logout on one instance ends the session everywhere.
    let logout = a.logout(&renewed, &key.proof("POST", &url("/auth/logout"), Some(&renewed)), &rotated).await;
    assert_eq!(logout.status, 204, "{:?}", logout.body);
    let after = b.refresh(&rotated, Some(&key.proof("POST", &url("/auth/refresh"), None))).await;
    assert_eq!((after.status, after.code()), (401, "INVALID_REFRESH_TOKEN"), "{:?}", after.body);
}

fn environment<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env =
        vec![("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "127.0.0.1/32"), ("PUBLIC_URL", PUBLIC_URL)];
    env.extend_from_slice(extra);
    env
}

#[tokio::test]
async fn a_dpop_session_on_the_memory_stores() {
    let running = Example::start("full_flow", &environment(&[]));
    let instance = Instance { base: running.url(), http: client() };
    whole_session(&instance, &instance).await;
}

/// Fails on the code before issue #25: with Redis as the replay store, every DPoP login was
/// refused (400 `invalid_dpop_proof`), and refreshes took any key.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_dpop_session_across_two_instances_on_redis() {
    let Some(redis) = redis_server::Redis::for_test("a_dpop_session_across_two_instances_on_redis") else {
        return;
    };
    let redis_url = redis.url();
    let env = environment(&[("REDIS_URL", redis_url.as_str())]);
    let (first, second) = (Example::start("full_flow", &env), Example::start("full_flow", &env));
    let http = client();
    let a = Instance { base: first.url(), http: http.clone() };
    let b = Instance { base: second.url(), http };
    whole_session(&a, &b).await;
    drop(redis);
}

/// With Redis down, a DPoP login cannot be checked for replay: 503 `AUTH_UNAVAILABLE` (fail
/// closed, the client may retry), not an invalid proof (what the token endpoint answered before).
#[cfg(feature = "redis")]
#[tokio::test]
async fn with_redis_down_a_dpop_login_is_unavailable_not_invalid() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redis_url = format!("redis://127.0.0.1:{port}/");
    let running = Example::start("full_flow", &environment(&[("REDIS_URL", redis_url.as_str())]));
    let instance = Instance { base: running.url(), http: client() };
    let key = ProofKey::generate(Algorithm::ES256);
    let login = instance.login(&key.proof("POST", &url("/auth/login"), None)).await;
    assert_eq!((login.status, login.code()), (503, "AUTH_UNAVAILABLE"), "{:?}", login.body);
}

/// The session again, with panva's npm `dpop` package making the keys and proofs
/// (`tests/interop/session.mjs`): its steps' answers are checked here.
async fn session_by_the_npm_client(a: &str, b: &str) {
    let Some(interop) = dpop_support::npm_dpop() else { return };
    let (a, b) = (a.to_owned(), b.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").current_dir(&interop).args(["session.mjs", PUBLIC_URL, &a, &b, HOME]).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let steps: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{stdout}"));
    let step = |name: &str| (steps[name]["status"].as_u64().unwrap_or(0), steps[name]["code"].clone());
    assert_eq!(steps["login"]["token_type"], "DPoP", "{steps}");
    assert_eq!(steps["login"]["jkt_is_the_keys"], true, "{steps}");
    assert_eq!(step("login").0, 200, "{steps}");
    assert_eq!(step("call_on_the_other_instance").0, 200, "{steps}");
    assert_eq!(step("login_proof_replayed_on_the_other_instance").0, 400, "{steps}");
    assert_eq!(step("refresh_with_another_key"), (400, json!("SENDER_MISMATCH")), "{steps}");
    assert_eq!(step("refresh_without_a_proof"), (400, json!("SENDER_MISMATCH")), "{steps}");
    assert_eq!(step("refresh_with_the_key").0, 200, "{steps}");
    assert_eq!(steps["refresh_with_the_key"]["jkt_is_the_keys"], true, "{steps}");
    assert_eq!(step("call_with_the_refreshed_token").0, 200, "{steps}");
    assert_eq!(step("logout").0, 204, "{steps}");
    assert_eq!(step("refresh_after_logout"), (401, json!("INVALID_REFRESH_TOKEN")), "{steps}");
}

#[tokio::test]
async fn the_npm_dpop_client_through_a_session_on_the_memory_stores() {
    let running = Example::start("full_flow", &environment(&[]));
    session_by_the_npm_client(&running.url(), &running.url()).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn the_npm_dpop_client_through_a_session_across_two_instances_on_redis() {
    let test = "the_npm_dpop_client_through_a_session_across_two_instances_on_redis";
    let Some(redis) = redis_server::Redis::for_test(test) else { return };
    let redis_url = redis.url();
    let env = environment(&[("REDIS_URL", redis_url.as_str())]);
    let (first, second) = (Example::start("full_flow", &env), Example::start("full_flow", &env));
    session_by_the_npm_client(&first.url(), &second.url()).await;
    drop(redis);
}
