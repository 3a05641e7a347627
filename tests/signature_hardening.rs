//! Hardening of the RFC 9421 and RFC 9701 checks (found by a security review), each over loopback: a
//! request whose signature covers only one member of `Content-Digest` while the body is swapped
//! under another member, a signed introspection answer issued long ago, a signature's `expires`
//! far ahead deciding how long its nonce is kept, and a signed response body in `Debug`.

mod harness;

use std::net::SocketAddr;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::Router;
use base64::Engine as _;
use harness::{answer, client, now};
use serde_json::{json, Value};
use tower_jwt_guard::binding::{ContentDigest, MessageSignature, SignatureKey};
use tower_jwt_guard::{Claims, ContentDigestLayer, JwtAuth};

const SECRET: [u8; 32] = *b"a review test secret, 32 bytes!!";

async fn sub(Claims(claims): Claims<Value>) -> String {
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

/// An HS256 token for alice, signed by hand.
fn token() -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &SECRET);
    let header = harness::b64(json!({ "alg": "HS256", "typ": "JWT" }).to_string());
    let claims = harness::b64(json!({ "sub": "alice", "iat": now(), "exp": now() + 600 }).to_string());
    let input = format!("{header}.{claims}");
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", harness::b64(tag.as_ref()))
}

/// `Signature-Input` and `Signature` of an Ed25519 signature over `(identifier, value)` lines,
/// the base written out by hand (RFC 9421 §2.5). Identifiers are given serialized.
fn sign(pair: &Ed25519KeyPair, components: &[(&str, &str)], params: &str) -> (String, String) {
    let list = components.iter().map(|(id, _)| *id).collect::<Vec<_>>().join(" ");
    let params = format!("({list}){params}");
    let mut base = String::new();
    for (id, value) in components {
        base.push_str(&format!("{id}: {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    let signature = pair.sign(base.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.as_ref());
    (format!("sig={params}"), format!("sig=:{signature}:"))
}

/// The JWK `x` (base64url) of an Ed25519 key pair.
fn ed25519_x(pair: &Ed25519KeyPair) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())
}

/// A server with `GET /me` behind a [`MessageSignature`] policy, made by `policy` from the
/// server's origin (`http://127.0.0.1:port`).
async fn serve_me(policy: impl FnOnce(&str) -> MessageSignature) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let policy = policy(&format!("http://{addr}"));
    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(policy).build().unwrap();
    let app = Router::new().route("/me", axum::routing::get(sub)).route_layer(auth.layer::<Value>());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// `GET /me` on `addr` with alice's token, signed by `pair` over `@method` and `@target-uri`
/// with `params` after the inner list.
async fn get_me_signed(addr: SocketAddr, pair: &Ed25519KeyPair, params: &str) -> harness::Answer {
    let uri = format!("http://{addr}/me");
    let (input, signature) = sign(pair, &[("\"@method\"", "GET"), ("\"@target-uri\"", &uri)], params);
    let request = client()
        .get(&uri)
        .bearer_auth(token())
        .header("signature-input", input)
        .header("signature", signature);
    answer(request).await
}

/// A signature covering only the `sha-256` member of `Content-Digest` (`;key="sha-256"`) does
/// not cover `content-digest`: else a `sha-512` member added in transit, which the digest layer
/// checks first, lets the body be swapped under a valid signature.
#[tokio::test]
async fn a_signature_over_one_digest_member_does_not_cover_content_digest() {
    let pair = Ed25519KeyPair::generate().unwrap();
    let x = ed25519_x(&pair);
    let key = SignatureKey::from_jwk(&json!({ "kty": "OKP", "crv": "Ed25519", "x": x }).to_string()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let policy = MessageSignature::required()
        .key("client-1", key)
        .cover(["@method", "@target-uri", "authorization", "content-digest"])
        .public_url(&format!("http://{addr}"));
    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(policy).build().unwrap();
    let app = Router::new()
        .route("/echo", axum::routing::post(|_: Claims<Value>, body: String| async move { body }))
        .route("/me", axum::routing::get(sub))
        .route_layer(auth.layer::<Value>())
        .layer(ContentDigestLayer::new().required(true));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let token = token();
    let authorization = format!("Bearer {token}");
    let uri = format!("http://{addr}/echo");
    let (body, swapped) = ("{\"amount\": 10}", "{\"amount\": 99999}");
    let sha256 = ContentDigest::header_value_sha256(body.as_bytes());
    let member = sha256.strip_prefix("sha-256=").unwrap().to_owned();
    let send = |input: String, signature: String, digest: String, body: &'static str| {
        let request = client()
            .post(&uri)
            .header("authorization", &authorization)
            .header("signature-input", input)
            .header("signature", signature)
            .header("content-digest", digest)
            .body(body);
        answer(request)
    };

    // The whole field covered: passes (the policy and the signer agree).
    let params = |nonce: &str| format!(";created={};keyid=\"client-1\";nonce=\"{nonce}\"", now());
    let whole = [
        ("\"@method\"", "POST"),
        ("\"@target-uri\"", uri.as_str()),
        ("\"authorization\"", authorization.as_str()),
        ("\"content-digest\"", sha256.as_str()),
    ];
    let (input, signature) = sign(&pair, &whole, &params("whole"));
    let passed = send(input, signature, sha256.clone(), body).await;
    assert_eq!((passed.status, passed.body.clone()), (200, json!({ "amount": 10 })));

    // Only the sha-256 member covered; in transit a sha-512 member of another body is added
    // and the body swapped: refused, the handler never runs.
    let one_member = [
        ("\"@method\"", "POST"),
        ("\"@target-uri\"", uri.as_str()),
        ("\"authorization\"", authorization.as_str()),
        ("\"content-digest\";key=\"sha-256\"", member.as_str()),
    ];
    let (input, signature) = sign(&pair, &one_member, &params("member"));
    let injected = format!("{sha256}, {}", ContentDigest::header_value_sha512(swapped.as_bytes()));
    let refused = send(input, signature, injected, swapped).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_SIGNATURE"), "{:?}", refused.body);
}

/// RFC 9701: a signed introspection answer is fresh. One issued an hour ago (replayed by an
/// intermediary, or from a cache) is no answer (503).
#[cfg(feature = "introspection")]
#[tokio::test]
async fn a_signed_introspection_answer_issued_long_ago_is_refused() {
    use std::sync::{Arc, Mutex};
    use tower_jwt_guard::keys::Introspector;
    use tower_jwt_guard::Algorithm;

    const ISSUER: &str = "https://as.example.com";
    let reply: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let r = Arc::clone(&reply);
    let endpoint = Router::new().route(
        "/introspect",
        axum::routing::post(move || {
            let body = r.lock().unwrap().clone();
            async move { ([("content-type", "application/token-introspection+jwt")], body) }
        }),
    );
    let endpoint = harness::serve(endpoint).await;
    let as_key = harness::TestKey::generate(Algorithm::ES256);
    let introspector = Introspector::builder(format!("http://{endpoint}/introspect"))
        .client_secret_basic("api", "secret")
        .signed_responses(ISSUER, [as_key.verification_key()])
        .cache_ttl(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let auth = JwtAuth::builder().introspection(introspector).issuer(ISSUER).build().unwrap();
    let app = Router::new().route("/me", axum::routing::get(sub)).route_layer(auth.layer::<Value>());
    let base = format!("http://{}", harness::serve(app).await);

    let signed_at = |iat: u64| {
        let claims = json!({
            "iss": ISSUER, "aud": "api", "iat": iat,
            "token_introspection": { "active": true, "sub": "alice", "iss": ISSUER, "exp": now() + 7200 }
        });
        as_key.sign_with_header(json!({ "typ": "token-introspection+jwt" }), &claims)
    };
    for (i, (what, iat, status)) in
        [("fresh", now(), 200), ("an hour old", now() - 3600, 503), ("fresh again", now(), 200)]
            .into_iter()
            .enumerate()
    {
        *reply.lock().unwrap() = signed_at(iat);
        let got = answer(client().get(format!("{base}/me")).bearer_auth(format!("opaque-{i}"))).await;
        assert_eq!(got.status, status, "{what}: {:?}", got.body);
    }
}

/// Records how long each nonce is to be kept.
#[derive(Clone, Default)]
struct Recording(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

impl tower_jwt_guard::revocation::ReplayStore for Recording {
    fn check_and_record(
        &self,
        _key: &tower_jwt_guard::revocation::ReplayKey,
        expires_at: u64,
    ) -> tower_jwt_guard::revocation::ReplayCheck {
        self.0.lock().unwrap().push(expires_at);
        tower_jwt_guard::revocation::ReplayCheck::Fresh
    }
}

/// A signature is accepted only while its `created` is within the window, so its nonce needs
/// keeping no longer. A client's `expires` years ahead kept each nonce for years: a memory store
/// full for good (every signed request then refused with 503), a Redis growing without bound.
#[tokio::test]
async fn a_far_expires_does_not_keep_the_nonce_beyond_the_window() {
    let pair = Ed25519KeyPair::generate().unwrap();
    let x = ed25519_x(&pair);
    let key = SignatureKey::from_jwk(&json!({ "kty": "OKP", "crv": "Ed25519", "x": x }).to_string()).unwrap();
    let store = Recording::default();
    let addr = serve_me(|origin| {
        MessageSignature::required()
            .key("client-1", key)
            .cover(["@method", "@target-uri"])
            .replay_store(store.clone())
            .public_url(origin)
    })
    .await;

    let ten_years = now() + 10 * 365 * 86_400;
    let params = format!(";created={};expires={ten_years};keyid=\"client-1\";nonce=\"far\"", now());
    let got = get_me_signed(addr, &pair, &params).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    let kept = store.0.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    // The default window (60 s, 5 s of leeway), and a little slack for the test's own clock.
    assert!(kept[0] <= now() + 60 + 5 + 5, "kept until {} (now {})", kept[0], now());
}

/// `Debug` never prints tokens: a signed response's body (a token endpoint's answer, say) is not
/// printed, nor are its trailers.
#[tokio::test]
async fn a_signed_bodys_debug_prints_no_content() {
    use tower::{Layer as _, ServiceExt as _};
    use tower_jwt_guard::binding::MessageSigner;
    use tower_jwt_guard::SignResponseLayer;

    let secret = r#"{"access_token":"eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2ln"}"#;
    let signer = MessageSigner::hmac_sha256([7u8; 32]).unwrap().keyid("k");
    let service =
        SignResponseLayer::new(signer).layer(tower::service_fn(move |_: http::Request<()>| async move {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::from(secret),
            )))
        }));
    let request = http::Request::get("https://api.example.com/token").body(()).unwrap();
    let response = service.oneshot(request).await.unwrap();
    let printed = format!("{:?}", response.body());
    assert!(!printed.contains("access_token") && !printed.contains("eyJ"), "{printed}");
}

/// FAPI 2.0: keys sharing a `kid` are told apart, in every key source. A client JWKS (by URL)
/// with a P-256 key and an Ed25519 key under one `kid`: a signature by the Ed25519 key passes
/// (the first key of that `kid` was the only one tried), one by another key is refused.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn keys_sharing_a_keyid_in_a_jwks_source_are_told_apart() {
    use tower_jwt_guard::keys::JwksKeys;

    let pair = Ed25519KeyPair::generate().unwrap();
    let x = ed25519_x(&pair);
    let jwks = json!({ "keys": [
        { "kid": "shared", "kty": "EC", "crv": "P-256", "use": "sig",
          "x": "EskcAw25byxYQpzS7159rPvfuUAv1vXLSgfcNrdlWnI", "y": "xB-AQ3zd5Nx9kt3saZaQqfe5uIPbItobVeKlr7t7z58" },
        { "kid": "shared", "kty": "OKP", "crv": "Ed25519", "use": "sig", "x": x },
    ]});
    let jwks_server = harness::serve(
        Router::new().route("/jwks", axum::routing::get(move || async move { axum::Json(jwks) })),
    )
    .await;
    let keys = JwksKeys::builder(format!("http://{jwks_server}/jwks")).build().unwrap();
    let addr = serve_me(|origin| {
        MessageSignature::required().key_source(keys).cover(["@method", "@target-uri"]).public_url(origin)
    })
    .await;

    let params = || format!(";created={};keyid=\"shared\"", now());
    let passed = get_me_signed(addr, &pair, &params()).await;
    assert_eq!(passed.status, 200, "{:?}", passed.body);
    let stranger = Ed25519KeyPair::generate().unwrap();
    let refused = get_me_signed(addr, &stranger, &params()).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_SIGNATURE"));
}

/// The same in a static JWKS (`MessageSignature::jwks`): two keys under one `kid` are both
/// kept (the last one replaced the first), and the signature's own key is found.
#[tokio::test]
async fn keys_sharing_a_keyid_in_a_static_jwks_are_both_kept() {
    let pair = Ed25519KeyPair::generate().unwrap();
    let x = ed25519_x(&pair);
    let jwks = json!({ "keys": [
        { "kid": "shared", "kty": "OKP", "crv": "Ed25519", "x": x },
        { "kid": "shared", "kty": "EC", "crv": "P-256",
          "x": "EskcAw25byxYQpzS7159rPvfuUAv1vXLSgfcNrdlWnI", "y": "xB-AQ3zd5Nx9kt3saZaQqfe5uIPbItobVeKlr7t7z58" },
    ]});
    let addr = serve_me(|origin| {
        MessageSignature::required()
            .jwks(&jwks.to_string())
            .unwrap()
            .cover(["@method", "@target-uri"])
            .public_url(origin)
    })
    .await;

    let params = || format!(";created={};keyid=\"shared\"", now());
    let passed = get_me_signed(addr, &pair, &params()).await;
    assert_eq!(passed.status, 200, "{:?}", passed.body);
    let refused = get_me_signed(addr, &Ed25519KeyPair::generate().unwrap(), &params()).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_SIGNATURE"));
}

/// A key a JWKS marks for encryption (`"use": "enc"`) never verifies a signature (RFC 7517
/// §4.2; the token JWKS already skipped them, the signature keys' JWKS did not).
#[tokio::test]
async fn an_encryption_key_of_a_jwks_verifies_no_signature() {
    let pair = Ed25519KeyPair::generate().unwrap();
    let x = ed25519_x(&pair);
    let jwks = |usage: &str| json!({ "keys": [{ "kid": "k", "kty": "OKP", "crv": "Ed25519", "use": usage, "x": x }] });
    let addr = serve_me(|origin| {
        MessageSignature::required()
            .jwks(&jwks("enc").to_string())
            .unwrap()
            .cover(["@method", "@target-uri"])
            .public_url(origin)
    })
    .await;

    let refused = get_me_signed(addr, &pair, &format!(";created={};keyid=\"k\"", now())).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_SIGNATURE"), "{:?}", refused.body);
    // The same key marked for signatures is taken.
    assert_eq!(
        tower_jwt_guard::binding::SignatureKeySet::from_jwks(&jwks("sig").to_string()).unwrap().len(),
        1
    );
}
