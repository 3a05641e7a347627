//! The `microservices` example, run as a user runs it (one process: gateway and orders
//! service), over loopback.

mod example_process;
mod harness;

use example_process::{expect_exit, Example};
use harness::{answer, client, now, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::Algorithm;

const SECRET: &str = "microservices-test-secret-of-32-bytes!";

/// The running example: the gateway's and the orders service's base URLs, and the tokens of
/// its printed `curl` lines.
struct Running {
    _example: Example,
    gateway: String,
    orders: String,
    printed: Vec<String>,
}

fn start() -> Running {
    let mut example =
        Example::start("microservices", &[("JWT_SECRET", SECRET), ("BIND_DOWNSTREAM", "127.0.0.1:0")]);
    let gateway = example.url();
    let mut orders = None;
    let mut printed = Vec::new();
    while printed.len() < 3 {
        let line = example.next_line();
        if let Some(rest) = line.split("orders service on http://").nth(1) {
            orders = rest.split_whitespace().next().map(|addr| format!("http://{addr}"));
        }
        if let Some(rest) = line.split("Bearer ").nth(1) {
            printed.push(rest.split('\'').next().unwrap().to_string());
        }
    }
    Running {
        _example: example,
        gateway,
        orders: orders.expect("the banner names the orders service"),
        printed,
    }
}

fn key() -> TestKey {
    TestKey::hmac(Algorithm::HS256, SECRET.as_bytes())
}

/// A user access token as an identity provider would mint it (signed by the test, not the crate).
fn user_token(sub: &str, extra: Value) -> String {
    let t = now();
    let mut claims = json!({ "sub": sub, "iat": t, "exp": t + 300 });
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    key().sign_with_header(json!({ "typ": "at+jwt" }), &claims)
}

/// A service token for the orders service, as the gateway mints them.
fn service_token(sub: &str, scope: &str) -> String {
    let t = now();
    let claims = json!({ "sub": sub, "iss": "gateway", "aud": "orders", "scope": scope, "jti": format!("t-{t}"), "iat": t, "exp": t + 300 });
    key().sign_with_header(json!({ "typ": "service+jwt" }), &claims)
}

#[tokio::test]
async fn through_the_gateway_a_user_token_reaches_orders_as_the_user_called_by_the_gateway() {
    let running = start();
    let token = user_token("bob", json!({ "role": "customer" }));
    let through = answer(client().get(format!("{}/orders", running.gateway)).bearer_auth(&token)).await;
    assert_eq!(through.status, 200, "{:?}", through.body);
    assert_eq!(through.body["user"], "bob");
    assert_eq!(through.body["caller"], "gateway");
    assert_eq!(through.body["role"], "customer");
    assert!(through.body["orders"].as_array().is_some_and(|orders| !orders.is_empty()));

    // The same user token straight to the orders service: a user token is not a service token.
    let straight = answer(client().get(format!("{}/orders", running.orders)).bearer_auth(&token)).await;
    assert_eq!((straight.status, straight.code()), (401, "INVALID_TOKEN"));
    let without = answer(client().get(format!("{}/orders", running.orders))).await;
    assert_eq!((without.status, without.code()), (401, "MISSING_TOKEN"));
}

#[tokio::test]
async fn user_headers_sent_by_the_client_never_pass_the_gateway() {
    let running = start();
    // No role claim: the spoofed role must not be replaced by anything.
    let token = user_token("bob", json!({}));
    let spoofed = answer(
        client()
            .get(format!("{}/orders", running.gateway))
            .bearer_auth(&token)
            .header("x-user-id", "admin")
            .header("X-User-Role", "admin")
            .header("x-user-id", "root"),
    )
    .await;
    assert_eq!(spoofed.status, 200, "{:?}", spoofed.body);
    assert_eq!(spoofed.body["user"], "bob");
    assert_eq!(spoofed.body["role"], Value::Null);
    assert_eq!(spoofed.body["caller"], "gateway");

    // Without a valid token the spoofed headers get nowhere at all.
    let anonymous =
        answer(client().get(format!("{}/orders", running.gateway)).header("x-user-id", "admin")).await;
    assert_eq!((anonymous.status, anonymous.code()), (401, "MISSING_TOKEN"));
}

#[tokio::test]
async fn token_kinds_are_never_confused_in_either_direction() {
    let running = start();
    let http = client();
    // A service token works at the orders service ...
    let service = service_token("billing", "read:orders");
    let direct = answer(http.get(format!("{}/orders", running.orders)).bearer_auth(&service)).await;
    assert_eq!(direct.status, 200, "{:?}", direct.body);
    assert_eq!(direct.body["caller"], "billing");
    // ... and is refused by the gateway, which wants user tokens.
    let at_gateway = answer(http.get(format!("{}/orders", running.gateway)).bearer_auth(&service)).await;
    assert_eq!((at_gateway.status, at_gateway.code()), (401, "INVALID_TOKEN"));

    // A service token without the scope: 403 with the RFC 6750 scope attribute.
    let unscoped = service_token("billing", "write:orders");
    let refused = answer(http.get(format!("{}/orders", running.orders)).bearer_auth(&unscoped)).await;
    assert_eq!((refused.status, refused.code()), (403, "INSUFFICIENT_SCOPE"));
    let challenge = refused.challenge.unwrap();
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    assert!(challenge.contains(r#"scope="read:orders""#), "{challenge}");

    // An untyped (generic `JWT`) token is neither kind.
    let t = now();
    let generic = key().sign(&json!({ "sub": "bob", "iat": t, "exp": t + 300 }));
    let at_gateway = answer(http.get(format!("{}/orders", running.gateway)).bearer_auth(&generic)).await;
    assert_eq!((at_gateway.status, at_gateway.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn the_printed_commands_work_as_their_comments_say() {
    let running = start();
    let http = client();
    let first =
        answer(http.get(format!("{}/orders", running.gateway)).bearer_auth(&running.printed[0])).await;
    assert_eq!((first.status, first.body["user"].clone()), (200, json!("alice")));
    let spoofed = answer(
        http.get(format!("{}/orders", running.gateway))
            .bearer_auth(&running.printed[1])
            .header("x-user-id", "admin"),
    )
    .await;
    assert_eq!(spoofed.body["user"], "alice");
    let straight =
        answer(http.get(format!("{}/orders", running.orders)).bearer_auth(&running.printed[2])).await;
    assert_eq!(straight.status, 401);
}

#[test]
fn a_bad_downstream_address_ends_with_exit_code_2_naming_the_variable() {
    let output = expect_exit("microservices", &[("BIND_DOWNSTREAM", "not-an-address")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("BIND_DOWNSTREAM"));
}
