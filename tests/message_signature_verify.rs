//! The verifying side of HTTP Message Signatures (RFC 9421) over loopback: where the keys come
//! from (a JWKS URL with rotation and a cold start that fails closed, each client's own keys by
//! the token's `client_id`), what must be covered depending on the request (`dpop`,
//! `content-digest`), the attacks of issue #27 not covered in `message_signature.rs`, and
//! requests signed by the Python `http-message-signatures` library (pyauth).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::routing::{any, get};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use tower_jwt_guard::binding::{
    ClientSignatureKeys, ContentDigest, MessageSignature, SignatureKey, SignatureKeySet,
};
use tower_jwt_guard::keys::JwksKeys;
use tower_jwt_guard::{ContentDigestLayer, JwtAuth};

use common::message_signature::{base, python_httpsig, send, Client, Signed};
use common::now;

async fn server(policy: MessageSignature) -> SocketAddr {
    let auth = JwtAuth::builder().hmac_secret(common::SECRET).binding(policy).build().unwrap();
    let app = Router::new()
        .route("/orders", any(|body: String| async move { body }))
        .route_layer(auth.layer::<common::User>())
        .route_service("/ready", auth.ready_service())
        .layer(ContentDigestLayer::new());
    common::serve(app).await
}

/// The server's `/ready`: its status and its JSON body.
async fn ready(addr: SocketAddr) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}/ready")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn token_of(client_id: Option<&str>) -> String {
    common::issuer()
        .mint_with("alice", &json!({}), |claims| {
            if let Some(client_id) = client_id {
                claims.insert("client_id".into(), client_id.into());
            }
        })
        .unwrap()
        .token
}

/// A JWKS endpoint on loopback serving whatever `keys` holds now.
async fn jwks_server(keys: Arc<Mutex<Vec<Value>>>) -> String {
    let app = Router::new().route(
        "/jwks.json",
        get(move || {
            let keys = keys.lock().unwrap().clone();
            async move { Json(json!({ "keys": keys })) }
        }),
    );
    format!("http://{}/jwks.json", common::serve(app).await)
}

#[tokio::test]
async fn keys_from_a_jwks_url_rotate_and_a_source_that_never_loaded_fails_closed() {
    let (first, second) = (Client::new("2026-11"), Client::new("2026-12"));
    // Nothing listens at the URL: the keys never load, every signed request gets 503.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let keys = JwksKeys::builder(&dead).timeout(Duration::from_millis(500)).build().unwrap();
    let addr =
        server(MessageSignature::required().public_url("https://api.example.com").key_source(keys)).await;
    let token = common::token("alice").token;
    let components = [("@method", "GET"), ("@target-uri", "https://api.example.com/orders")];
    let signed =
        |client: &Client| client.sign(&components, &format!(";created={};keyid=\"{}\"", now(), client.kid()));
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&signed(&first)), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (503, Some("AUTH_UNAVAILABLE")));
    // And `/ready` says so, naming the policy: a balancer sends it no traffic.
    let (status, body) = ready(addr).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("message_signature"), "{body}");

    // A JWKS that publishes the first key, then the second one (a rotation).
    let published = Arc::new(Mutex::new(vec![first.jwk()]));
    let url = jwks_server(Arc::clone(&published)).await;
    let keys = JwksKeys::builder(&url).unknown_kid_interval(Duration::from_millis(50)).build().unwrap();
    let addr =
        server(MessageSignature::required().public_url("https://api.example.com").key_source(keys)).await;
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&signed(&first)), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None), "the published key");
    let (status, body) = ready(addr).await;
    assert_eq!(status, 200, "the keys loaded: {body}");
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&signed(&second)), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")), "not published yet");
    published.lock().unwrap().push(second.jwk());
    // Past the unknown-kid interval, an unknown keyid triggers a refetch that it waits for.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&signed(&second)), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None), "the new key, after a refetch");
    // The signature of one key under the keyid of the other: refused.
    let forged = first.sign(&components, &format!(";created={};keyid=\"{}\"", now(), second.kid()));
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&forged), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
}

#[tokio::test]
async fn a_keyid_naming_another_clients_key_is_refused() {
    let (a, b) = (Client::new("a-1"), Client::new("b-1"));
    let clients = ClientSignatureKeys::new()
        .client("client-a", SignatureKeySet::new().insert("a-1", a.key()))
        .client("client-b", SignatureKeySet::new().insert("b-1", b.key()));
    let addr =
        server(MessageSignature::required().public_url("https://api.example.com").key_source(clients)).await;
    let components = [("@method", "GET"), ("@target-uri", "https://api.example.com/orders")];
    let signed =
        |client: &Client| client.sign(&components, &format!(";created={};keyid=\"{}\"", now(), client.kid()));

    let token_a = token_of(Some("client-a"));
    let reply = send(reqwest::Method::GET, addr, "/orders", &token_a, Some(&signed(&a)), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));
    // Client A's token, signed by client B with B's own (valid, known) key: refused.
    let reply = send(reqwest::Method::GET, addr, "/orders", &token_a, Some(&signed(&b)), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
    let token_b = token_of(Some("client-b"));
    let reply = send(reqwest::Method::GET, addr, "/orders", &token_b, Some(&signed(&b)), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));
    // A token that names no client, or an unknown one: no key.
    for token in [token_of(None), token_of(Some("client-c"))] {
        let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&signed(&a)), &[], None).await;
        assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
    }
}

#[tokio::test]
async fn dpop_and_content_digest_must_be_covered_when_the_request_has_them() {
    let client = Client::new("k1");
    let policy = MessageSignature::required()
        .key("k1", client.key())
        .cover(["@method", "@target-uri"])
        .cover_dpop_when_present()
        .cover_content_digest_with_body()
        .public_url("https://api.example.com");
    let addr = server(policy).await;
    let token = common::token("alice").token;
    let target = "https://api.example.com/orders";
    let params = || format!(";created={};keyid=\"k1\"", now());

    // A GET without body nor DPoP: @method and @target-uri suffice.
    let plain = client.sign(&[("@method", "GET"), ("@target-uri", target)], &params());
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&plain), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));

    // A body: content-digest must be covered, and Accept-Signature says so.
    let body = "{\"amount\": 10}";
    let digest = ContentDigest::header_value_sha256(body.as_bytes());
    let uncovered = client.sign(&[("@method", "POST"), ("@target-uri", target)], &params());
    let with_digest = [("content-digest", digest.as_str())];
    let reply =
        send(reqwest::Method::POST, addr, "/orders", &token, Some(&uncovered), &with_digest, Some(body))
            .await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
    assert_eq!(reply.accept_signature.as_deref(), Some(r#"sig=("@method" "@target-uri" "content-digest")"#));
    let covered =
        client.sign(&[("@method", "POST"), ("@target-uri", target), ("content-digest", &digest)], &params());
    let reply =
        send(reqwest::Method::POST, addr, "/orders", &token, Some(&covered), &with_digest, Some(body)).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));
    // A digest sent without a body (as over HTTP/2, no Content-Length) must be covered too.
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&plain), &with_digest, None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
    // A POST without a body needs no digest.
    let empty = client.sign(&[("@method", "POST"), ("@target-uri", target)], &params());
    let reply =
        send(reqwest::Method::POST, addr, "/orders", &token, Some(&empty), &[("content-length", "0")], None)
            .await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));

    // A DPoP header: dpop must be covered.
    let proof = "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln";
    let uncovered = client.sign(&[("@method", "GET"), ("@target-uri", target)], &params());
    let reply =
        send(reqwest::Method::GET, addr, "/orders", &token, Some(&uncovered), &[("dpop", proof)], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
    assert_eq!(reply.accept_signature.as_deref(), Some(r#"sig=("@method" "@target-uri" "dpop")"#));
    let covered = client.sign(&[("@method", "GET"), ("@target-uri", target), ("dpop", proof)], &params());
    let reply =
        send(reqwest::Method::GET, addr, "/orders", &token, Some(&covered), &[("dpop", proof)], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));
}

#[tokio::test]
async fn the_attacks_of_the_issue_are_refused() {
    let client = Client::new("k1");
    let policy = MessageSignature::required()
        .key("k1", client.key())
        .cover(["@method", "@target-uri", "authorization"])
        .cover_content_digest_with_body()
        .public_url("https://api.example.com");
    let addr = server(policy).await;
    let token = common::token("alice").token;
    let authorization = format!("Bearer {token}");
    let target = "https://api.example.com/orders";
    let components = [("@method", "GET"), ("@target-uri", target), ("authorization", authorization.as_str())];
    let params = |extra: &str| format!(";created={};keyid=\"k1\"{extra}", now());
    let reply = send(
        reqwest::Method::GET,
        addr,
        "/orders",
        &token,
        Some(&client.sign(&components, &params(""))),
        &[],
        None,
    )
    .await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None), "the honest request");

    // `alg` chosen by the attacker: HMAC keyed with the client's public key (its raw bytes, or
    // its JWK), with or without an alg parameter naming hmac-sha256.
    for secret in [client.public(), client.jwk().to_string().into_bytes()] {
        for extra in ["", ";alg=\"hmac-sha256\""] {
            let (input, base) = base(&components, &params(extra));
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
            let tag = aws_lc_rs::hmac::sign(&key, base.as_bytes());
            let forged = Signed { input, signature: format!("sig=:{}:", STANDARD.encode(tag.as_ref())) };
            let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&forged), &[], None).await;
            assert_eq!(
                (reply.status, reply.code.as_deref()),
                (401, Some("INVALID_SIGNATURE")),
                "hmac {extra}"
            );
        }
    }

    // Two signatures under one label: the honest one and another, in one field or two lines.
    let honest = client.sign(&components, &params(""));
    let other = client.sign(&components[..2], &params(""));
    let doubled = Signed {
        input: format!("{}, {}", honest.input, other.input),
        signature: format!("{}, {}", honest.signature, other.signature),
    };
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&doubled), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")), "one field");
    let extra = [("signature-input", other.input.as_str()), ("signature", other.signature.as_str())];
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&honest), &extra, None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")), "two lines");

    // Malformed structured fields, each a clean 401.
    for (input, signature) in [
        ("sig=(\"@method\"", honest.signature.as_str()),
        ("sig=\"@method\"", honest.signature.as_str()),
        ("sig=(@method);created=1", honest.signature.as_str()),
        ("sig=(\"@method\");created=\"x\"", honest.signature.as_str()),
        (honest.input.as_str(), "sig=:not base64:"),
        (honest.input.as_str(), "sig=\"text\""),
        ("\u{7f}", "sig=:AAAA:"),
    ] {
        let broken = Signed { input: input.to_owned(), signature: signature.to_owned() };
        if reqwest::header::HeaderValue::from_str(input).is_err() {
            continue;
        }
        let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&broken), &[], None).await;
        assert_eq!(
            (reply.status, reply.code.as_deref()),
            (401, Some("INVALID_SIGNATURE")),
            "{input} / {signature}"
        );
    }

    // `created` in the future (beyond the 5 s leeway).
    let future = client.sign(&components, &format!(";created={};keyid=\"k1\"", now() + 120));
    let reply = send(reqwest::Method::GET, addr, "/orders", &token, Some(&future), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));

    // A body: the digest header covered by the signature, and checked against the body.
    let body = "{\"amount\": 10}";
    let digest = ContentDigest::header_value_sha256(body.as_bytes());
    let post = [
        ("@method", "POST"),
        ("@target-uri", target),
        ("authorization", authorization.as_str()),
        ("content-digest", digest.as_str()),
    ];
    let signed = client.sign(&post, &params(""));
    let with_digest = [("content-digest", digest.as_str())];
    let reply =
        send(reqwest::Method::POST, addr, "/orders", &token, Some(&signed), &with_digest, Some(body)).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None), "the honest POST");
    // The body changed under the valid (signed) digest header: the body check refuses it (400)
    // before the handler sees the end of the body.
    let reply = send(
        reqwest::Method::POST,
        addr,
        "/orders",
        &token,
        Some(&signed),
        &with_digest,
        Some("{\"amount\": 99}"),
    )
    .await;
    assert_eq!(reply.status, 400, "the body changed under its digest");
    // The digest header removed: the signature covered it.
    let reply = send(reqwest::Method::POST, addr, "/orders", &token, Some(&signed), &[], Some(body)).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")), "the digest removed");
    // The digest header removed and left out of the signature: a body needs it covered.
    let unsigned_digest = client.sign(&post[..3], &params(""));
    let reply =
        send(reqwest::Method::POST, addr, "/orders", &token, Some(&unsigned_digest), &[], Some(body)).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")), "no digest at all");
}

#[tokio::test]
async fn requests_signed_by_the_python_library_pass_and_altered_ones_are_refused() {
    let Some(python) = python_httpsig() else { return };
    let ecdsa_document =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &aws_lc_rs::rand::SystemRandom::new())
            .unwrap();
    let ecdsa = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ecdsa_document.as_ref()).unwrap();
    let ed_document = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(ed_document.as_ref()).unwrap();
    let point = ecdsa.public_key().as_ref();
    let ec_jwk = json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
    let ed_jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(ed.public_key().as_ref())});
    let policy = MessageSignature::required()
        .key("py-p256", SignatureKey::from_jwk(&ec_jwk.to_string()).unwrap())
        .key("py-ed25519", SignatureKey::from_jwk(&ed_jwk.to_string()).unwrap())
        .cover(["@method", "@target-uri", "authorization"])
        .cover_content_digest_with_body()
        .require_nonce();
    let auth = JwtAuth::builder().hmac_secret(common::SECRET).binding(policy).build().unwrap();
    let app = Router::new()
        .route("/orders", any(|body: String| async move { body }))
        .route_layer(auth.layer::<common::User>())
        .layer(ContentDigestLayer::new());
    let addr = common::serve(app).await;
    let token = common::token("alice").token;
    let pem = |der: &[u8]| {
        let lines: Vec<String> = STANDARD
            .encode(der)
            .as_bytes()
            .chunks(64)
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/httpsig_sign.py");
    // The script calls the server, which runs on this test's runtime: run it off the runtime.
    let mut command = std::process::Command::new(&python);
    command
        .arg(&script)
        .arg(format!("http://{addr}/orders"))
        .arg(&token)
        .arg(common::token("bob").token)
        .env("PY_P256_KEY", pem(ecdsa_document.as_ref()))
        .env("PY_ED25519_KEY", pem(ed_document.as_ref()));
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "python failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let mut seen = Vec::new();
    for line in stdout.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let name = case["case"].as_str().unwrap().to_owned();
        let expected = case["expect"].as_u64().unwrap() as u16;
        let status = case["status"].as_u64().unwrap() as u16;
        assert_eq!(status, expected, "{name}: {}", case["body"]);
        seen.push(name);
    }
    for alg in ["ecdsa-p256-sha256", "ed25519"] {
        for case in [
            "signed GET",
            "signed POST",
            "replayed",
            "another method",
            "another path",
            "another token",
            "another body",
            "digest removed",
            "query parameters",
            "another query parameter",
        ] {
            let name = format!("{alg}: {case}");
            assert!(seen.contains(&name), "{name} not run: {seen:?}");
        }
    }
}

/// `rsa-v1_5-sha256` only when the policy allows it (issue #27: "only when configured"): a key of
/// that algorithm is refused by default, whatever the signature says, and accepted once allowed.
#[tokio::test]
async fn rsa_v1_5_sha256_is_accepted_only_where_the_policy_allows_it() {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    use tower_jwt_guard::binding::SignatureAlgorithm;

    let generated = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let pair = RsaKeyPair::from_pkcs8(&generated.serialize_der()).unwrap();
    let public = generated.public_key_pem();
    let key = SignatureKey::public_key_pem(SignatureAlgorithm::RsaV15Sha256, &public).unwrap();

    let components = [("@method", "GET"), ("@target-uri", "https://api.example.com/orders")];
    let sign = || {
        let (input, base) =
            base(&components, &format!(";created={};keyid=\"legacy\";alg=\"rsa-v1_5-sha256\"", now()));
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), base.as_bytes(), &mut signature).unwrap();
        Signed { input, signature: format!("sig=:{}:", STANDARD.encode(&signature)) }
    };
    let token = common::token("alice").token;
    let policy =
        || MessageSignature::required().public_url("https://api.example.com").key("legacy", key.clone());

    let by_default = server(policy()).await;
    let reply = send(reqwest::Method::GET, by_default, "/orders", &token, Some(&sign()), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")), "not allowed");

    let allowed = server(policy().allow_rsa_v1_5_sha256()).await;
    let reply = send(reqwest::Method::GET, allowed, "/orders", &token, Some(&sign()), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None), "allowed: the same signature verifies");
}
