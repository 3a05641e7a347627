//! The real `hyper_server` example (hyper 1 + hyper-util, HTTP/1.1 and HTTP/2 on one port),
//! spoken to over both protocols.

mod example_process;

use std::time::{SystemTime, UNIX_EPOCH};

use example_process::Example;
use reqwest::{Client, StatusCode, Version};
use serde_json::{json, Map, Value};
use tower_jwt_guard::issue::SigningKey;
use tower_jwt_guard::{Algorithm, TokenIssuer};

const SECRET: &str = "hyper-test-secret-of-at-least-32-bytes";

fn issuer() -> TokenIssuer {
    TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build()
}

fn token_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    issuer().mint_with("alice", &json!({ "name": "Alice" }), edit).unwrap().token
}

fn token() -> String {
    token_with(|_| {})
}

fn mfa_token() -> String {
    token_with(|claims| {
        claims.insert("amr".into(), json!(["pwd", "otp"]));
    })
}

fn expired_token() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    token_with(|claims| {
        claims.insert("iat".into(), json!(now - 7200));
        claims.insert("nbf".into(), json!(now - 7200));
        claims.insert("exp".into(), json!(now - 3600));
    })
}

fn server() -> Example {
    Example::start("hyper_server", &[("JWT_SECRET", SECRET)])
}

/// An HTTP/1.1 client and an HTTP/2 (prior knowledge, as gRPC does) client.
fn clients() -> [(Client, Version); 2] {
    [
        (Client::builder().http1_only().build().unwrap(), Version::HTTP_11),
        (Client::builder().http2_prior_knowledge().build().unwrap(), Version::HTTP_2),
    ]
}

async fn get(client: &Client, url: String, authorization: &[&str]) -> (StatusCode, Version, String, Value) {
    let mut request = client.get(url);
    for value in authorization {
        request = request.header("authorization", *value);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let version = response.version();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.bytes().await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    (status, version, challenge, json)
}

#[tokio::test]
async fn health_needs_no_token_on_both_protocols() {
    let server = server();
    for (client, expected) in clients() {
        let (status, version, _, body) = get(&client, format!("{}/health", server.url()), &[]).await;
        assert_eq!((status, version), (StatusCode::OK, expected));
        assert_eq!(body, "ok");
    }
}

#[tokio::test]
async fn me_returns_the_claims_with_a_valid_token_on_both_protocols() {
    let server = server();
    for (client, expected) in clients() {
        let (status, version, _, body) =
            get(&client, format!("{}/me", server.url()), &[&format!("Bearer {}", token())]).await;
        assert_eq!((status, version), (StatusCode::OK, expected), "{body}");
        assert_eq!(body["sub"], "alice");
        assert_eq!(body["name"], "Alice");
    }
}

#[tokio::test]
async fn refusals_are_rfc6750_answers_on_both_protocols() {
    let server = server();
    let url = format!("{}/me", server.url());
    let good = format!("Bearer {}", token());
    let expired = format!("Bearer {}", expired_token());
    for (client, expected) in clients() {
        let (status, version, challenge, body) = get(&client, url.clone(), &[]).await;
        assert_eq!((status, version), (StatusCode::UNAUTHORIZED, expected));
        assert_eq!(challenge, r#"Bearer realm="api""#);
        assert_eq!(body["code"], "MISSING_TOKEN");

        let (status, _, challenge, body) = get(&client, url.clone(), &[&expired]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
        assert_eq!(body["code"], "TOKEN_EXPIRED");

        let (status, _, challenge, body) = get(&client, url.clone(), &[&good, &good]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(challenge.contains(r#"error="invalid_request""#), "{challenge}");
        assert_eq!(body["code"], "INVALID_REQUEST");

        let (status, _, _, body) = get(&client, url.clone(), &["Bearer not.a.jwt"]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "INVALID_TOKEN");
    }
}

#[tokio::test]
async fn admin_needs_a_second_factor_on_both_protocols() {
    let server = server();
    let url = format!("{}/admin", server.url());
    for (client, _) in clients() {
        let (status, _, challenge, body) = get(&client, url.clone(), &[&format!("Bearer {}", token())]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenge.contains(r#"error="insufficient_user_authentication""#), "{challenge}");
        assert_eq!(body["code"], "MFA_REQUIRED");

        let (status, _, _, body) = get(&client, url.clone(), &[&format!("Bearer {}", mfa_token())]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["admin"], true);
        assert_eq!(body["amr"], json!(["pwd", "otp"]));
    }
}

#[tokio::test]
async fn the_banner_commands_work() {
    let mut server = Example::start("hyper_server", &[]); // a random secret: only its own tokens pass
    let health = server.next_line();
    assert!(health.contains(&format!("curl -i {}/health", server.url())), "{health}");
    let me = server.next_line();
    let token = me.split("Bearer ").nth(1).and_then(|t| t.strip_suffix('\'')).expect("a token").to_string();
    for (client, _) in clients() {
        let (status, _, _, body) =
            get(&client, format!("{}/me", server.url()), &[&format!("Bearer {token}")]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["sub"], "alice");
        // a token from another secret does not pass
        let (status, _, _, _) =
            get(&client, format!("{}/me", server.url()), &[&format!("Bearer {}", self::token())]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn unknown_routes_are_not_found() {
    let server = server();
    let (status, _, _, _) = get(&clients()[0].0, format!("{}/nope", server.url()), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn bad_configuration_ends_with_exit_code_2_naming_the_variable() {
    let output = example_process::expect_exit("hyper_server", &[("JWT_SECRET", "too short")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: JWT_SECRET:"), "{stderr}");
    assert!(!stderr.contains("too short"), "the secret is never printed: {stderr}");
}
