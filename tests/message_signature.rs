//! HTTP Message Signatures (RFC 9421) as a binding policy: the RFC's own vectors (the
//! signature bases byte for byte, the signatures verified with the Appendix B.1 keys, B.2.5 and
//! B.2.6 also signed byte for byte), then signed requests over loopback through the layer, each
//! alteration refused.

mod common;

use std::net::SocketAddr;

use aws_lc_rs::signature::Ed25519KeyPair;
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use tower_jwt_guard::binding::{MessageSignature, RequestHead, SignatureAlgorithm, SignatureKey};
use tower_jwt_guard::JwtAuth;

use common::message_signature::{data, npm_httpsig, send, vector_request, vectors, Client, Signed};
use common::now;

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap()
}

/// The policy with the RFC's keys, covering nothing in particular (the vectors choose).
fn rfc_policy() -> MessageSignature {
    MessageSignature::allowed()
        .cover(Vec::<String>::new())
        .key(
            "test-key-rsa-pss",
            SignatureKey::public_key_pem(SignatureAlgorithm::RsaPssSha512, &data("test-key-rsa-pss.pub.pem"))
                .unwrap(),
        )
        .key(
            "test-key-ecc-p256",
            SignatureKey::public_key_pem(
                SignatureAlgorithm::EcdsaP256Sha256,
                &data("test-key-ecc-p256.pub.pem"),
            )
            .unwrap(),
        )
        .key(
            "test-key-ed25519",
            SignatureKey::public_key_pem(SignatureAlgorithm::Ed25519, &data("test-key-ed25519.pub.pem"))
                .unwrap(),
        )
        .key("test-shared-secret", SignatureKey::hmac_sha256(b64(&data("test-shared-secret.b64"))).unwrap())
}

fn request_of(vector: &Value, signature: Option<&str>) -> http::Request<()> {
    let mut builder = vector_request(vector);
    builder = builder.header("signature-input", vector["signature_input"].as_str().unwrap());
    builder = builder
        .header("signature", signature.unwrap_or(&format!("{}=:AAAA:", vector["label"].as_str().unwrap())));
    builder.body(()).unwrap()
}

const CREATED: u64 = 1_618_884_473;

#[test]
fn rfc_9421_signature_bases_are_reproduced_byte_for_byte() {
    let policy = rfc_policy();
    let vectors = vectors();
    assert_eq!(vectors.len(), 7);
    for vector in &vectors {
        let request = request_of(vector, vector["signature"].as_str());
        let base =
            policy.signature_base(&RequestHead::of(&request), vector["label"].as_str().unwrap()).unwrap();
        assert_eq!(base, vector["signature_base"].as_str().unwrap(), "{}", vector["section"]);
    }
}

#[test]
fn rfc_9421_signatures_verify_with_the_appendix_b1_keys() {
    let mut verified = 0;
    for vector in vectors().iter().filter(|vector| vector["signature"].is_string()) {
        let policy = rfc_policy();
        let request = request_of(vector, vector["signature"].as_str());
        let head = RequestHead::of(&request);
        policy
            .check_at(&head, None, CREATED + 1)
            .unwrap_or_else(|err| panic!("{}: {err:?}", vector["section"]));
        verified += 1;
        // The same request a bit too late: refused.
        let err = policy.check_at(&head, None, CREATED + 120).unwrap_err();
        assert_eq!(err.code(), "INVALID_SIGNATURE");
        // One signature byte flipped: refused.
        let label = vector["label"].as_str().unwrap();
        let mut bytes = b64(vector["signature"]
            .as_str()
            .unwrap()
            .trim_start_matches(&format!("{label}=:"))
            .trim_end_matches(':'));
        bytes[5] ^= 1;
        let flipped = format!("{label}=:{}:", base64::engine::general_purpose::STANDARD.encode(bytes));
        let request = request_of(vector, Some(&flipped));
        let err = rfc_policy().check_at(&RequestHead::of(&request), None, CREATED + 1).unwrap_err();
        assert_eq!(err.code(), "INVALID_SIGNATURE", "{}", vector["section"]);
    }
    assert_eq!(verified, 6);
}

#[test]
fn rfc_9421_b21_nonce_is_not_accepted_twice() {
    let vector = vectors().into_iter().find(|vector| vector["section"] == "B.2.1").unwrap();
    let policy = rfc_policy();
    let request = request_of(&vector, vector["signature"].as_str());
    policy.check_at(&RequestHead::of(&request), None, CREATED).unwrap();
    let err = policy.check_at(&RequestHead::of(&request), None, CREATED).unwrap_err();
    assert_eq!(err.code(), "INVALID_SIGNATURE");
    assert_eq!(err.detail(), "the signature's nonce was used before");
}

#[test]
fn rfc_9421_b25_and_b26_are_signed_byte_for_byte() {
    let vectors = vectors();
    let find = |section: &str| vectors.iter().find(|vector| vector["section"] == section).unwrap().clone();
    let expected = |vector: &Value| {
        let label = vector["label"].as_str().unwrap();
        vector["signature"]
            .as_str()
            .unwrap()
            .trim_start_matches(&format!("{label}=:"))
            .trim_end_matches(':')
            .to_owned()
    };
    let b25 = find("B.2.5");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &b64(&data("test-shared-secret.b64")));
    let tag = aws_lc_rs::hmac::sign(&key, b25["signature_base"].as_str().unwrap().as_bytes());
    assert_eq!(base64::engine::general_purpose::STANDARD.encode(tag.as_ref()), expected(&b25));

    let b26 = find("B.2.6");
    let pem = data("test-key-ed25519.pem");
    let der = b64(&pem.lines().filter(|line| !line.starts_with("-----")).collect::<String>());
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
    let signature = pair.sign(b26["signature_base"].as_str().unwrap().as_bytes());
    assert_eq!(base64::engine::general_purpose::STANDARD.encode(signature.as_ref()), expected(&b26));
}

#[test]
fn the_algorithm_comes_from_the_key_not_the_message() {
    // B.2.6 with `alg="hmac-sha256"` added: the key is Ed25519, refused before any check.
    let mut vector = vectors().into_iter().find(|vector| vector["section"] == "B.2.6").unwrap();
    let input = vector["signature_input"].as_str().unwrap().to_owned() + ";alg=\"hmac-sha256\"";
    vector["signature_input"] = Value::String(input);
    let request = request_of(&vector, vector["signature"].as_str());
    let err = rfc_policy().check_at(&RequestHead::of(&request), None, CREATED).unwrap_err();
    assert_eq!(err.detail(), "the alg parameter disagrees with the key");
}

#[test]
fn a_required_component_must_be_covered() {
    let vector = vectors().into_iter().find(|vector| vector["section"] == "B.2.5").unwrap();
    let request = request_of(&vector, vector["signature"].as_str());
    let err =
        rfc_policy().cover(["@method"]).check_at(&RequestHead::of(&request), None, CREATED).unwrap_err();
    assert_eq!(err.code(), "INVALID_SIGNATURE");
    assert_eq!(err.accept_signature(), Some(r#"sig=("@method")"#));
}

// ---- loopback, through the layer ----

async fn server(policy: impl FnOnce(SocketAddr) -> MessageSignature) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = JwtAuth::builder().hmac_secret(common::SECRET).binding(policy(addr)).build().unwrap();
    let app = Router::new().route("/orders", any(common::me)).route_layer(auth.layer::<common::User>());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_signed_request_passes_and_each_alteration_is_refused() {
    let client = Client::without_kid();
    let key = client.key();
    let addr = server(|addr| {
        MessageSignature::required()
            .key("client-1", key)
            .cover(["@method", "@target-uri", "authorization", "content-digest"])
            .public_url(&format!("http://{addr}"))
    })
    .await;
    let token = common::token("alice").token;
    let authorization = format!("Bearer {token}");
    let uri = format!("http://{addr}/orders?id=7");
    let digest = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
    let params = format!(";created={};keyid=\"client-1\";nonce=\"n-{}\"", now(), now());
    let components = [
        ("@method", "POST"),
        ("@target-uri", uri.as_str()),
        ("authorization", &authorization),
        ("content-digest", digest),
    ];
    let signed = client.sign(&components, &params);
    let digest_header = [("content-digest", digest)];

    // Accepted.
    let reply =
        send(reqwest::Method::POST, addr, "/orders?id=7", &token, Some(&signed), &digest_header, None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));

    // Replayed (same nonce): refused.
    let reply =
        send(reqwest::Method::POST, addr, "/orders?id=7", &token, Some(&signed), &digest_header, None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));

    let fresh = |n: &str| {
        let params = format!(";created={};keyid=\"client-1\";nonce=\"{n}\"", now());
        client.sign(&components, &params)
    };
    // Another method, another path or query, another digest header: refused.
    let reply =
        send(reqwest::Method::PUT, addr, "/orders?id=7", &token, Some(&fresh("m")), &digest_header, None)
            .await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
    assert_eq!(
        reply.accept_signature.as_deref(),
        Some(r#"sig=("@method" "@target-uri" "authorization" "content-digest")"#)
    );
    let reply =
        send(reqwest::Method::POST, addr, "/orders?id=8", &token, Some(&fresh("q")), &digest_header, None)
            .await;
    assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"));
    let other = [("content-digest", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:")];
    let reply =
        send(reqwest::Method::POST, addr, "/orders?id=7", &token, Some(&fresh("d")), &other, None).await;
    assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"));
    let reply = send(reqwest::Method::POST, addr, "/orders?id=7", &token, Some(&fresh("x")), &[], None).await;
    assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"), "the covered digest header removed");
    // Another token under the same signature: refused.
    let bob = common::token("bob").token;
    let reply =
        send(reqwest::Method::POST, addr, "/orders?id=7", &bob, Some(&fresh("t")), &digest_header, None)
            .await;
    assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"));

    // No signature: SIGNATURE_REQUIRED, with what to cover.
    let reply = send(reqwest::Method::POST, addr, "/orders?id=7", &token, None, &digest_header, None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("SIGNATURE_REQUIRED")));
    assert!(reply.accept_signature.is_some());

    // Too old, expired, from the future, an unknown key, a required component left out.
    for params in [
        format!(";created={};keyid=\"client-1\"", now() - 600),
        format!(";created={};expires={};keyid=\"client-1\"", now(), now() - 1),
        format!(";created={};keyid=\"client-1\"", now() + 600),
        format!(";created={};keyid=\"client-2\"", now()),
        format!(";created={};keyid=\"client-1\";alg=\"hmac-sha256\"", now()),
    ] {
        let signed = client.sign(&components, &params);
        let reply =
            send(reqwest::Method::POST, addr, "/orders?id=7", &token, Some(&signed), &digest_header, None)
                .await;
        assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"), "{params}");
    }
    let partial = client.sign(&components[..3], &format!(";created={};keyid=\"client-1\"", now()));
    let reply =
        send(reqwest::Method::POST, addr, "/orders?id=7", &token, Some(&partial), &digest_header, None).await;
    assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"));
    // Malformed structured fields.
    let broken = Signed { input: "sig=(\"@method\"".into(), signature: signed.signature.clone() };
    let reply =
        send(reqwest::Method::POST, addr, "/orders?id=7", &token, Some(&broken), &digest_header, None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
}

#[tokio::test]
async fn a_token_bound_to_a_key_needs_a_signature_by_that_key() {
    let client = Client::without_kid();
    let thief = Client::without_kid();
    let thief_key = thief.key();
    // Allowed mode: unbound tokens pass unsigned; the thief's key is even configured.
    let addr = server(|addr| {
        MessageSignature::allowed().key("thief", thief_key).public_url(&format!("http://{addr}"))
    })
    .await;
    let bound = common::issuer()
        .mint_with("alice", &json!({}), |claims| {
            claims.insert("cnf".into(), json!({"jwk": client.jwk()}));
        })
        .unwrap()
        .token;
    let plain = common::token("bob").token;
    let uri = format!("http://{addr}/orders");

    let reply = send(reqwest::Method::GET, addr, "/orders", &plain, None, &[], None).await;
    assert_eq!(reply.status, 200, "an unbound token passes unsigned in allowed mode");
    let reply = send(reqwest::Method::GET, addr, "/orders", &bound, None, &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("SIGNATURE_REQUIRED")));

    let components = [("@method", "GET"), ("@target-uri", uri.as_str())];
    let by_client = client.sign(&components, &format!(";created={}", now()));
    let reply = send(reqwest::Method::GET, addr, "/orders", &bound, Some(&by_client), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));

    // The thief signs with its own (configured) key and names it: the token's key decides.
    let by_thief = thief.sign(&components, &format!(";created={};keyid=\"thief\"", now()));
    let reply = send(reqwest::Method::GET, addr, "/orders", &bound, Some(&by_thief), &[], None).await;
    assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"));
}

#[tokio::test]
async fn requests_signed_by_the_npm_library_pass_once_and_unaltered() {
    let Some(interop) = npm_httpsig() else { return };
    let addr = server(|addr| {
        MessageSignature::allowed()
            .cover(["@method", "@target-uri", "authorization"])
            .public_url(&format!("http://{addr}"))
    })
    .await;
    let url = format!("http://{addr}/orders");
    let output = std::process::Command::new("node")
        .current_dir(&interop)
        .arg("httpsig.mjs")
        .arg(&url)
        .arg(std::str::from_utf8(common::SECRET).unwrap())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let mut algorithms = Vec::new();
    for line in stdout.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let signed = Signed {
            input: case["signatureInput"].as_str().unwrap().to_owned(),
            signature: case["signature"].as_str().unwrap().to_owned(),
        };
        let token = case["token"].as_str().unwrap();
        let alg = case["alg"].as_str().unwrap();
        let reply = send(reqwest::Method::POST, addr, "/orders", token, Some(&signed), &[], None).await;
        assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"), "{alg}: another method");
        let reply = send(reqwest::Method::GET, addr, "/orders?x=1", token, Some(&signed), &[], None).await;
        assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"), "{alg}: another target");
        let reply = send(reqwest::Method::GET, addr, "/orders", token, Some(&signed), &[], None).await;
        assert_eq!((reply.status, reply.code.as_deref()), (200, None), "{alg}: {}", signed.input);
        let reply = send(reqwest::Method::GET, addr, "/orders", token, Some(&signed), &[], None).await;
        assert_eq!(reply.code.as_deref(), Some("INVALID_SIGNATURE"), "{alg}: the nonce replayed");
        algorithms.push(alg.to_owned());
    }
    assert_eq!(algorithms, ["ecdsa-p256-sha256", "ecdsa-p384-sha384", "ed25519", "rsa-pss-sha512"]);
}

#[tokio::test]
async fn the_body_must_match_its_content_digest() {
    use tower_jwt_guard::binding::ContentDigest;
    use tower_jwt_guard::ContentDigestLayer;
    let app = Router::new()
        .route("/echo", axum::routing::post(|body: String| async move { body }))
        .layer(ContentDigestLayer::new().required(true).limit(64));
    let addr = common::serve(app).await;
    let post = |body: &'static str, digest: Option<String>| {
        let mut request = reqwest::Client::new().post(format!("http://{addr}/echo")).body(body);
        if let Some(digest) = digest {
            request = request.header("content-digest", digest);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let body = "{\"hello\": \"world\"}";
    assert_eq!(
        post(body, Some(ContentDigest::header_value_sha512(body.as_bytes()))).await,
        (200, body.to_owned())
    );
    assert_eq!(post(body, Some(ContentDigest::header_value_sha256(body.as_bytes()))).await.0, 200);
    // The body changed under a valid digest, the digest removed, a body over the limit: the
    // handler never gets the body.
    let changed =
        post("{\"hello\": \"World\"}", Some(ContentDigest::header_value_sha512(body.as_bytes()))).await;
    assert_eq!(changed.0, 400);
    assert_eq!(post(body, None).await.0, 400);
    let long = "x".repeat(65).leak();
    assert_eq!(post(long, Some(ContentDigest::header_value_sha256(long.as_bytes()))).await.0, 400);
}

mod arbitrary_fields {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the structured fields hold, the answer is a clean refusal, never a panic.
        #[test]
        fn malformed_signature_fields_are_refused_cleanly(
            input in "[a-z0-9@\"();=:*/+ ,.-]{0,80}",
            signature in "[a-z0-9\"();=:*/+ ,.-]{0,80}",
        ) {
            let request = http::Request::post("https://example.com/foo?a=1")
                .header("signature-input", format!("sig=({input}"))
                .header("signature", format!("sig=:{signature}"))
                .body(())
                .unwrap();
            let policy = MessageSignature::allowed()
                .cover(Vec::<String>::new())
                .key("k", SignatureKey::hmac_sha256([7u8; 32]).unwrap());
            let head = RequestHead::of(&request);
            let _ = policy.signature_base(&head, "sig");
            let err = policy.check_at(&head, None, CREATED).unwrap_err();
            prop_assert!(matches!(err.code(), "INVALID_SIGNATURE" | "SIGNATURE_REQUIRED"), "{err:?}");
        }
    }
}

/// Two instances share one Redis: a nonce used on one is refused on the other; Redis down → 503.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_nonce_replayed_on_another_instance_is_refused_over_redis() {
    use tower_jwt_guard::revocation::RedisReplayStore;
    let Some(mut redis) = common::redis_server::Redis::local_for_test(
        "a_nonce_replayed_on_another_instance_is_refused_over_redis",
    ) else {
        return;
    };
    let url = redis.url();
    let prefix = common::redis_server::unique_prefix("httpsig");
    let client = Client::without_kid();
    let public = "https://api.example.com";
    let instance = |key: SignatureKey| {
        let store =
            RedisReplayStore::with_options(&url, &prefix, std::time::Duration::from_millis(300)).unwrap();
        server(move |_| {
            MessageSignature::required().key("client-1", key).public_url(public).replay_store(store)
        })
    };
    let a = instance(client.key()).await;
    let b = instance(client.key()).await;
    let token = common::token("alice").token;
    let target = format!("{public}/orders");
    let signed = |nonce: &str| {
        client.sign(
            &[("@method", "GET"), ("@target-uri", target.as_str())],
            &format!(";created={};keyid=\"client-1\";nonce=\"{nonce}\"", now()),
        )
    };
    let first = signed("once");
    let reply = send(reqwest::Method::GET, a, "/orders", &token, Some(&first), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (200, None));
    let reply = send(reqwest::Method::GET, b, "/orders", &token, Some(&first), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (401, Some("INVALID_SIGNATURE")));
    let reply = send(reqwest::Method::GET, b, "/orders", &token, Some(&signed("twice")), &[], None).await;
    assert_eq!(reply.status, 200);
    // The store down: fail closed.
    redis.stop();
    let reply = send(reqwest::Method::GET, a, "/orders", &token, Some(&signed("thrice")), &[], None).await;
    assert_eq!((reply.status, reply.code.as_deref()), (503, Some("AUTH_UNAVAILABLE")));
}
