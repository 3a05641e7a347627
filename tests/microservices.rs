//! The `microservices` example, run as a user runs it (one process: gateway and orders
//! service), over loopback.

mod dpop_support;
mod example_process;
mod harness;
#[cfg(feature = "jwks")]
#[path = "common/jwks_server.rs"]
mod jwks_server;

use dpop_support::ProofKey;
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
    /// The banner's line about the orders service.
    orders_line: String,
}

fn start() -> Running {
    start_with(&[])
}

fn start_with(env: &[(&str, &str)]) -> Running {
    let mut all = vec![("JWT_SECRET", SECRET), ("BIND_DOWNSTREAM", "127.0.0.1:0")];
    all.extend_from_slice(env);
    let mut example = Example::start("microservices", &all);
    let gateway = example.url();
    let mut orders = None;
    let mut orders_line = String::new();
    let mut printed = Vec::new();
    while printed.len() < 3 {
        let line = example.next_line();
        for scheme in ["http", "https"] {
            if let Some(rest) = line.split(&format!("orders service on {scheme}://")).nth(1) {
                orders = rest.split_whitespace().next().map(|addr| format!("{scheme}://{addr}"));
                orders_line = line.clone();
            }
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
        orders_line,
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
    service_token_with(sub, scope, json!({}))
}

/// A service token with `extra` claims (`cnf`, say).
fn service_token_with(sub: &str, scope: &str, extra: Value) -> String {
    let t = now();
    let mut claims = json!({ "sub": sub, "iss": "gateway", "aud": "orders", "scope": scope, "jti": format!("t-{t}"), "iat": t, "exp": t + 300 });
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
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

/// Issue #15: with `DPOP=required` nothing but DPoP passes, at the gateway (user tokens) or at
/// the orders service (service tokens): the whole chain works, so the gateway's calls are
/// DPoP-bound service tokens with a proof each.
#[tokio::test]
async fn with_dpop_required_the_gateway_calls_orders_with_dpop_bound_service_tokens() {
    let running = start_with(&[("DPOP", "required")]);
    assert!(running.orders_line.contains("DPoP-bound to the gateway's key, jkt "), "{}", running.orders_line);
    let http = client();
    let user_key = ProofKey::generate(Algorithm::ES256);
    let token = user_token("bob", json!({ "role": "customer", "cnf": { "jkt": user_key.jkt() } }));
    let url = format!("{}/orders", running.gateway);
    let through = answer(
        http.get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", user_key.proof("GET", &url, Some(&token))),
    )
    .await;
    assert_eq!(through.status, 200, "{:?}", through.body);
    assert_eq!((&through.body["user"], &through.body["caller"]), (&json!("bob"), &json!("gateway")));
    // Twice: the gateway signs a fresh proof for each call (a replayed one would be refused).
    let again = answer(
        http.get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", user_key.proof("GET", &url, Some(&token))),
    )
    .await;
    assert_eq!(again.status, 200, "{:?}", again.body);

    // A bearer token is refused at both: the gateway got through with DPoP only.
    let bearer_user = user_token("bob", json!({}));
    assert_eq!(answer(http.get(&url).bearer_auth(&bearer_user)).await.status, 401);
    let bearer_service = service_token("gateway", "read:orders");
    let direct = answer(http.get(format!("{}/orders", running.orders)).bearer_auth(&bearer_service)).await;
    assert_eq!((direct.status, direct.code()), (401, "INVALID_TOKEN"));
}

/// By default (`allowed`) a DPoP-bound service token is useless without its key's proof.
#[tokio::test]
async fn a_stolen_dpop_bound_service_token_is_useless_without_the_key() {
    let running = start();
    assert!(running.orders_line.contains("DPoP-bound"), "{}", running.orders_line);
    let http = client();
    let key = ProofKey::generate(Algorithm::ES256);
    let token = service_token_with("gateway", "read:orders", json!({ "cnf": { "jkt": key.jkt() } }));
    let url = format!("{}/orders", running.orders);
    let as_bearer = answer(http.get(&url).bearer_auth(&token)).await;
    assert_eq!((as_bearer.status, as_bearer.code()), (401, "INVALID_TOKEN"));
    let no_proof = answer(http.get(&url).header("authorization", format!("DPoP {token}"))).await;
    assert_eq!((no_proof.status, no_proof.code()), (401, "INVALID_DPOP_PROOF"));
    let proof = key.proof("GET", &url, Some(&token));
    let with_proof =
        || http.get(&url).header("authorization", format!("DPoP {token}")).header("dpop", &proof);
    let accepted = answer(with_proof()).await;
    assert_eq!((accepted.status, &accepted.body["caller"]), (200, &json!("gateway")), "{:?}", accepted.body);
    let replayed = answer(with_proof()).await;
    assert_eq!((replayed.status, replayed.code()), (401, "INVALID_DPOP_PROOF"));

    // The gateway's own calls pass.
    let user = user_token("bob", json!({}));
    let through = answer(http.get(format!("{}/orders", running.gateway)).bearer_auth(&user)).await;
    assert_eq!((through.status, &through.body["caller"]), (200, &json!("gateway")), "{:?}", through.body);
}

/// `DPOP_NONCE=1`: the orders service demands its nonce; the gateway learns it and retries.
/// `DPOP=off`: plain bearer service tokens.
#[tokio::test]
async fn the_gateway_follows_dpop_nonces_and_dpop_off_means_bearer() {
    let user = user_token("bob", json!({}));
    for env in [[("DPOP", "allowed"), ("DPOP_NONCE", "1")], [("DPOP", "off"), ("DPOP_NONCE", "")]] {
        let running = start_with(&env);
        let through = answer(client().get(format!("{}/orders", running.gateway)).bearer_auth(&user)).await;
        assert_eq!(
            (through.status, &through.body["caller"]),
            (200, &json!("gateway")),
            "{env:?}: {:?}",
            through.body
        );
        if env[0].1 == "off" {
            assert!(running.orders_line.contains("bearer, DPOP=off"), "{}", running.orders_line);
        }
    }
}

/// The gateway with two OIDC providers (`JWT_OIDC_ISSUER=a,b`): each provider's user tokens
/// reach the orders service, each only with that provider's keys; the user-token rules (`typ`
/// `at+jwt`, a subject) hold for both.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn the_gateway_takes_user_tokens_of_two_oidc_providers() {
    let servers = [jwks_server::JwksServer::start().await, jwks_server::JwksServer::start().await];
    let keys = [TestKey::generate(Algorithm::ES256), TestKey::generate(Algorithm::ES256)];
    for (server, (key, kid)) in servers.iter().zip(keys.iter().zip(["a1", "b1"])) {
        let point = &key.public_raw;
        server.serve(vec![json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": harness::b64(&point[1..33]), "y": harness::b64(&point[33..65]),
        })]);
    }
    let issuers = format!("{},{}", servers[0].issuer(), servers[1].issuer());
    let mut example =
        Example::start("microservices", &[("JWT_OIDC_ISSUER", &issuers), ("BIND_DOWNSTREAM", "127.0.0.1:0")]);
    let gateway = example.url();
    while !example.next_line().contains("orders service on http://") {}
    let token = |iss: &str, key: &TestKey, kid: &str, typ: &str| {
        let t = now();
        let claims = json!({ "iss": iss, "sub": "carol", "iat": t, "exp": t + 300 });
        key.sign_with_header(json!({ "kid": kid, "typ": typ }), &claims)
    };
    let orders = |token: String| answer(client().get(format!("{gateway}/orders")).bearer_auth(token));
    for (i, kid) in [(0, "a1"), (1, "b1")] {
        let through = orders(token(&servers[i].issuer(), &keys[i], kid, "at+jwt")).await;
        assert_eq!((through.status, &through.body["user"]), (200, &json!("carol")), "{:?}", through.body);
        let not_a_user_token = orders(token(&servers[i].issuer(), &keys[i], kid, "JWT")).await;
        assert_eq!((not_a_user_token.status, not_a_user_token.code()), (401, "INVALID_TOKEN"));
    }
    let crossed = orders(token(&servers[0].issuer(), &keys[1], "b1", "at+jwt")).await;
    assert_eq!((crossed.status, crossed.code()), (401, "INVALID_TOKEN"), "A's iss with B's key");
}

/// Mutual TLS (`TLS_CERT`, `TLS_KEY`): the gateway calls the orders service with a client
/// certificate it made at start and service tokens bound to it; the orders service takes only
/// certificate-bound service tokens, over the connection with their certificate.
mod mutual_tls {
    use super::*;

    /// A certificate and its key (PEM), and the certificate's DER.
    struct Pem {
        cert: String,
        key: String,
        der: Vec<u8>,
    }

    /// A CA, a server certificate for 127.0.0.1 and two client certificates, all signed by it.
    fn pki() -> (String, Pem, Pem, Pem) {
        use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let ca = Issuer::new(ca_params, ca_key);
        let leaf = |name: &str, usage| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
            params.extended_key_usages.push(usage);
            let cert = params.signed_by(&key, &ca).unwrap();
            Pem { cert: cert.pem(), key: key.serialize_pem(), der: cert.der().to_vec() }
        };
        let server = leaf("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
        let alice = leaf("alice.client", ExtendedKeyUsagePurpose::ClientAuth);
        let bob = leaf("bob.client", ExtendedKeyUsagePurpose::ClientAuth);
        (ca_pem, server, alice, bob)
    }

    /// The example serving HTTPS with `server`'s certificate, `DPOP` as given; the directory of
    /// the PEM files, to remove after.
    fn start_over_tls(server: &Pem, dpop: &str) -> (Running, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("tjg-microservices-mtls-{dpop}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server-key.pem"));
        std::fs::write(&cert_path, &server.cert).unwrap();
        std::fs::write(&key_path, &server.key).unwrap();
        let running = start_with(&[
            ("TLS_CERT", cert_path.to_str().unwrap()),
            ("TLS_KEY", key_path.to_str().unwrap()),
            ("DPOP", dpop),
        ]);
        (running, dir)
    }

    fn https_client(ca: &str, identity: Option<&Pem>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()]);
        if let Some(identity) = identity {
            let pem = format!("{}{}", identity.key, identity.cert);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    #[tokio::test]
    async fn the_gateway_calls_orders_over_mutual_tls_with_certificate_bound_service_tokens() {
        let (ca, server, alice, bob) = pki();
        let (running, dir) = start_over_tls(&server, "off");
        assert!(running.gateway.starts_with("https://") && running.orders.starts_with("https://"));
        assert!(running.orders_line.contains("x5t#S256"), "{}", running.orders_line);

        // Through the gateway: the service token is bound to the gateway's own certificate.
        let http = https_client(&ca, None);
        let through = answer(
            http.get(format!("{}/orders", running.gateway)).bearer_auth(user_token("alice", json!({}))),
        )
        .await;
        assert_eq!(through.status, 200, "{:?}", through.body);
        assert_eq!(
            (through.body["user"].clone(), through.body["caller"].clone()),
            (json!("alice"), json!("gateway"))
        );

        // Straight to the orders service: an unbound service token is refused.
        let orders = format!("{}/orders", running.orders);
        let unbound = answer(
            https_client(&ca, Some(&alice)).get(&orders).bearer_auth(service_token("gateway", "read:orders")),
        )
        .await;
        assert_eq!((unbound.status, unbound.code()), (401, "BINDING_MISMATCH"), "{:?}", unbound.body);
        assert_eq!(unbound.body["binding"], "certificate");
        // A service token bound to alice's certificate: only over a connection with it.
        let thumbprint = harness::b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &alice.der));
        let bound =
            service_token_with("gateway", "read:orders", json!({ "cnf": { "x5t#S256": thumbprint } }));
        let ok = answer(https_client(&ca, Some(&alice)).get(&orders).bearer_auth(&bound)).await;
        assert_eq!(ok.status, 200, "{:?}", ok.body);
        let stolen = answer(https_client(&ca, Some(&bob)).get(&orders).bearer_auth(&bound)).await;
        assert_eq!((stolen.status, stolen.code()), (401, "BINDING_MISMATCH"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn with_dpop_required_the_service_tokens_are_bound_to_the_key_and_the_certificate() {
        let (ca, server, _, _) = pki();
        let (running, dir) = start_over_tls(&server, "required");
        assert!(running.orders_line.contains("jkt") && running.orders_line.contains("x5t#S256"));
        // The gateway's user side needs DPoP too: a proof for its /orders.
        let proof_key = ProofKey::generate(Algorithm::ES256);
        let url = format!("{}/orders", running.gateway);
        let token = user_token("alice", json!({ "cnf": { "jkt": proof_key.jkt() } }));
        let through = answer(
            https_client(&ca, None)
                .get(&url)
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof_key.proof("GET", &url, Some(&token))),
        )
        .await;
        assert_eq!(through.status, 200, "{:?}", through.body);
        assert_eq!(through.body["caller"], "gateway");
        let _ = std::fs::remove_dir_all(dir);
    }
}
