//! JWKS key source against a real JWKS server on loopback, through the whole layer over HTTP:
//! rotation, unknown-kid floods, outages, cold start, hung and slowloris endpoints, tokens that
//! expire during a fetch, OIDC discovery, malformed documents and HMAC keys in a JWKS.
#![cfg(feature = "jwks")]

#[path = "common/jwks_server.rs"]
mod jwks_server;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_jwt_guard::keys::{JwksError, JwksKeys, MAX_KID_LESS_CANDIDATES};
use tower_jwt_guard::{Algorithm, Claims, JwtAuth};

use jwks_server::{JwksServer, RawJwksServer};

// ---------------------------------------------------------------- test keys

/// A private key made for the test, its public half as a JWK, and a signer.
enum Signer {
    Ec(EcdsaKeyPair, &'static str),
    Ed(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

struct TestKey {
    kid: Option<String>,
    alg: Algorithm,
    signer: Signer,
    /// Whether the JWK names its `alg` (otherwise it follows from the key type).
    jwk_alg: bool,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    fn es256(kid: &str) -> TestKey {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        TestKey {
            kid: Some(kid.into()),
            alg: Algorithm::ES256,
            signer: Signer::Ec(pair, "P-256"),
            jwk_alg: true,
        }
    }

    fn es384(kid: &str) -> TestKey {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        TestKey {
            kid: Some(kid.into()),
            alg: Algorithm::ES384,
            signer: Signer::Ec(pair, "P-384"),
            jwk_alg: false,
        }
    }

    fn ed25519(kid: Option<&str>) -> TestKey {
        let pair = Ed25519KeyPair::generate().unwrap();
        TestKey { kid: kid.map(Into::into), alg: Algorithm::EdDSA, signer: Signer::Ed(pair), jwk_alg: false }
    }

    fn rs256(kid: &str) -> TestKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        TestKey { kid: Some(kid.into()), alg: Algorithm::RS256, signer: Signer::Rsa(pair), jwk_alg: true }
    }

    /// The same key, published and used without `kid`.
    fn without_kid(mut self) -> TestKey {
        self.kid = None;
        self
    }

    /// The public key as a JWK.
    fn jwk(&self) -> Value {
        let mut jwk = match &self.signer {
            Signer::Ec(pair, crv) => {
                let point = pair.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                json!({ "kty": "EC", "crv": crv, "x": b64(&point[1..=half]), "y": b64(&point[half + 1..]) })
            }
            Signer::Ed(pair) => {
                json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) })
            }
            Signer::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
        };
        jwk["use"] = json!("sig");
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        if self.jwk_alg {
            jwk["alg"] = json!(format!("{:?}", self.alg));
        }
        jwk
    }

    /// A token for `sub` signed with this key (header `kid` = the key's).
    fn token(&self, sub: &str) -> String {
        self.token_with_kid(sub, self.kid.as_deref())
    }

    fn token_with_kid(&self, sub: &str, kid: Option<&str>) -> String {
        self.sign(signing_input(&format!("{:?}", self.alg), kid, sub, None))
    }

    /// A token for `sub` that expires at `exp` (seconds since the epoch).
    fn token_expiring_at(&self, sub: &str, exp: u64) -> String {
        let header = json!({ "alg": format!("{:?}", self.alg), "typ": "JWT", "kid": self.kid });
        let claims = json!({ "sub": sub, "iat": now(), "exp": exp });
        self.sign(format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes())))
    }

    /// A token for `sub` with this `iss` (or none).
    fn token_with_issuer(&self, sub: &str, iss: Option<&str>) -> String {
        self.sign(signing_input(&format!("{:?}", self.alg), self.kid.as_deref(), sub, iss))
    }

    fn sign(&self, signing_input: String) -> String {
        let rng = SystemRandom::new();
        let signature = match &self.signer {
            Signer::Ec(pair, _) => pair.sign(&rng, signing_input.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Ed(pair) => pair.sign(signing_input.as_bytes()).as_ref().to_vec(),
            Signer::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut signature)
                    .unwrap();
                signature
            }
        };
        format!("{signing_input}.{}", b64(&signature))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// `header.payload` of a token with a fresh `jti` (so no two tokens are equal).
fn signing_input(alg: &str, kid: Option<&str>, sub: &str, iss: Option<&str>) -> String {
    let mut header = json!({ "alg": alg, "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let mut jti = [0u8; 12];
    aws_lc_rs::rand::fill(&mut jti).unwrap();
    let mut claims = json!({ "sub": sub, "iat": now(), "exp": now() + 300, "jti": b64(&jti) });
    if let Some(iss) = iss {
        claims["iss"] = json!(iss);
    }
    format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

/// An HS256 token signed with `secret`.
fn hs256_token(secret: &[u8], kid: Option<&str>, sub: &str) -> String {
    let signing_input = signing_input("HS256", kid, sub, None);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64(tag.as_ref()))
}

// ---------------------------------------------------------------- the protected service

#[derive(Debug, Deserialize)]
struct User {
    sub: String,
}

/// The layer with `auth` in front of `GET /me` on loopback.
async fn start_app(auth: JwtAuth) -> SocketAddr {
    let app = Router::new()
        .route("/me", get(|Claims(user): Claims<User>| async move { user.sub.clone() }))
        .route_layer(auth.layer::<User>());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The answer of `GET /me`: status and the rejection code (empty on success).
async fn call(client: &reqwest::Client, addr: SocketAddr, token: &str) -> (u16, String) {
    let response = client.get(format!("http://{addr}/me")).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

/// The `WWW-Authenticate` challenge of `GET /me` (empty without one): it says why a token is refused.
async fn challenge(client: &reqwest::Client, addr: SocketAddr, token: &str) -> String {
    let response = client.get(format!("http://{addr}/me")).bearer_auth(token).send().await.unwrap();
    let header = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    header.unwrap_or_default()
}

/// Polls `condition` every 20 ms for up to 20 s; panics with `what` if it never holds.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..1000 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

fn layer_auth(jwks: &JwksKeys, algorithms: impl IntoIterator<Item = Algorithm>) -> JwtAuth {
    JwtAuth::builder().key_source(jwks.clone()).algorithms(algorithms).build().unwrap()
}

/// [`layer_auth`] telling clients the precise reason of a refusal, for tests that check it.
fn exposing_auth(jwks: &JwksKeys, algorithms: impl IntoIterator<Item = Algorithm>) -> JwtAuth {
    JwtAuth::builder()
        .key_source(jwks.clone())
        .algorithms(algorithms)
        .expose_error_details(true)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_accepts_a_new_key_without_restart_and_refuses_the_retired_one() {
    let server = JwksServer::start().await;
    let old = TestKey::es256("2026-10");
    let new = TestKey::es256("2026-11");
    server.serve(vec![old.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();

    let old_token = old.token("alice");
    assert_eq!(call(&client, addr, &old_token).await, (200, String::new()));
    // Cached now: served from the verified-token cache.
    assert_eq!(call(&client, addr, &old_token).await, (200, String::new()));

    // The provider publishes the next key: a token with its kid is accepted at once.
    server.serve(vec![old.jwk(), new.jwk()]);
    assert_eq!(call(&client, addr, &new.token("bob")).await, (200, String::new()));

    // The provider retires the old key; after the next refresh it is refused, cached tokens too.
    server.serve(vec![new.jwk()]);
    assert_eq!(jwks.refresh().await, Ok(1));
    assert_eq!(call(&client, addr, &old_token).await, (401, "INVALID_TOKEN".into()));
    assert_eq!(call(&client, addr, &old.token("alice")).await, (401, "INVALID_TOKEN".into()));
    assert_eq!(call(&client, addr, &new.token("bob")).await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_refresh_follows_max_age() {
    let server = JwksServer::start().await;
    let old = TestKey::ed25519(Some("ed-1"));
    let new = TestKey::ed25519(Some("ed-2"));
    server.serve_with_cache_control(vec![old.jwk()], "public, max-age=1");
    let jwks = JwksKeys::builder(server.jwks_url())
        .min_refresh_interval(Duration::from_secs(1))
        .unknown_kid_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let addr = start_app(layer_auth(&jwks, [Algorithm::EdDSA])).await;
    let client = reqwest::Client::new();
    let token = old.token("alice");
    eventually("the first keys arrive", || async { call(&client, addr, &token).await.0 == 200 }).await;

    // No request asks for it: the background task refetches because max-age says so.
    server.serve_with_cache_control(vec![new.jwk()], "public, max-age=1");
    let seen = server.jwks_requests();
    eventually("two background refetches", || async { server.jwks_requests() >= seen + 2 }).await;
    assert_eq!(call(&client, addr, &token).await, (401, "INVALID_TOKEN".into()));
    assert_eq!(call(&client, addr, &new.token("bob")).await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_costs_at_most_two_fetches() {
    let server = JwksServer::start().await;
    let key = TestKey::es256("real");
    server.serve(vec![key.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();
    let token = key.token("alice");
    eventually("the first keys arrive", || async { call(&client, addr, &token).await.0 == 200 }).await;

    let before = server.jwks_requests();
    // 100 at once (single flight) ...
    let concurrent = (0..100).map(|i| {
        let client = client.clone();
        let token = key.token_with_kid("mallory", Some(&format!("random-{i}")));
        async move { call(&client, addr, &token).await }
    });
    for answer in futures_util::future::join_all(concurrent).await {
        assert_eq!(answer, (401, "INVALID_TOKEN".into()));
    }
    // ... and 100 one after the other (rate limit).
    for i in 100..200 {
        let token = key.token_with_kid("mallory", Some(&format!("random-{i}")));
        assert_eq!(call(&client, addr, &token).await, (401, "INVALID_TOKEN".into()));
    }
    let fetches = server.jwks_requests() - before;
    assert!(fetches <= 2, "200 unknown kids caused {fetches} JWKS fetches");
    // The real key still works.
    assert_eq!(call(&client, addr, &key.token("alice")).await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_last_good_keys_until_the_maximum_staleness() {
    let server = JwksServer::start().await;
    let key = TestKey::rs256("rsa-1");
    server.serve(vec![key.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url())
        .max_staleness(Duration::from_secs(2))
        .unknown_kid_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let addr = start_app(layer_auth(&jwks, [Algorithm::RS256])).await;
    let client = reqwest::Client::new();
    eventually("the first keys arrive", || async { call(&client, addr, &key.token("alice")).await.0 == 200 })
        .await;

    // The endpoint goes down: the refresh fails, the keys stay.
    server.fail(500);
    assert_eq!(jwks.refresh().await, Err(JwksError::Status(500)));
    let status = jwks.status();
    assert!(status.usable);
    assert_eq!(status.keys, 1);
    assert_eq!(status.last_error, Some(JwksError::Status(500)));
    assert_eq!(call(&client, addr, &key.token("alice")).await, (200, String::new()));

    // Past the maximum staleness the keys are no longer trusted: fail closed.
    eventually("stale keys are refused", || async {
        call(&client, addr, &key.token("alice")).await == (503, "AUTH_UNAVAILABLE".into())
    })
    .await;

    // The endpoint returns: so does the service.
    server.serve(vec![key.jwk()]);
    eventually("recovery", || async { call(&client, addr, &key.token("alice")).await.0 == 200 }).await;
    assert_eq!(jwks.status().last_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_times_out_and_the_keys_stay() {
    let server = JwksServer::start().await;
    let key = TestKey::es256("k");
    server.serve(vec![key.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).timeout(Duration::from_millis(300)).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();

    server.hang();
    let err = jwks.refresh().await.unwrap_err();
    assert!(matches!(err, JwksError::Request(_)), "{err:?}");
    assert_eq!(call(&client, addr, &key.token("alice")).await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_while_the_endpoint_is_down_answers_503_then_recovers() {
    let server = JwksServer::start().await;
    server.fail(500);
    let key = TestKey::es384("p384");
    let jwks = JwksKeys::builder(server.jwks_url())
        .retry_interval(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .unwrap();
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES384])).await;
    let client = reqwest::Client::new();

    let response =
        client.get(format!("http://{addr}/me")).bearer_auth(key.token("alice")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("www-authenticate").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "AUTH_UNAVAILABLE");
    assert!(!jwks.status().usable);

    server.serve(vec![key.jwk()]);
    eventually("keys arrive", || async { call(&client, addr, &key.token("alice")).await.0 == 200 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_discovery_finds_the_keys_and_checks_the_issuer() {
    let server = JwksServer::start().await;
    let key = TestKey::rs256("rsa-oidc");
    server.serve(vec![key.jwk()]);
    let jwks = JwksKeys::discover(server.issuer()).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    assert!(server.discovery_requests() >= 1);
    let issuer = jwks.issuer().unwrap().to_owned();
    let auth = JwtAuth::builder()
        .key_source(jwks.clone())
        .algorithms([Algorithm::RS256])
        .issuer(issuer.clone())
        .build()
        .unwrap();
    let addr = start_app(auth).await;
    let client = reqwest::Client::new();

    // A token of this issuer passes; one without `iss` does not.
    let signed = |iss: Option<&str>| {
        let input = signing_input("RS256", Some("rsa-oidc"), "alice", iss);
        let Signer::Rsa(pair) = &key.signer else { unreachable!() };
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature)
            .unwrap();
        format!("{input}.{}", b64(&signature))
    };
    assert_eq!(call(&client, addr, &signed(Some(&issuer))).await, (200, String::new()));
    assert_eq!(call(&client, addr, &signed(None)).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_discovery_refuses_a_document_of_another_issuer() {
    let server = JwksServer::start().await;
    let key = TestKey::es256("e");
    server.serve(vec![key.jwk()]);
    server.claim_issuer("https://evil.example.com");
    let jwks = JwksKeys::discover(server.issuer()).build().unwrap();
    let err = jwks.refresh().await.unwrap_err();
    assert!(matches!(err, JwksError::IssuerMismatch { .. }), "{err}");
    assert!(err.to_string().contains("evil.example.com"));
    // The jwks_uri of a mismatching document is never fetched; requests fail closed.
    assert_eq!(server.jwks_requests(), 0);
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();
    assert_eq!(call(&client, addr, &key.token("alice")).await, (503, "AUTH_UNAVAILABLE".into()));
    assert_eq!(server.jwks_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_documents_are_clear_errors_and_keep_the_old_keys() {
    let server = JwksServer::start().await;
    let key = TestKey::es256("good");
    server.serve(vec![key.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).max_response_size(4096).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();

    let too_large = json!({ "keys": [key.jwk()], "padding": "x".repeat(8192) }).to_string();
    type Expected = fn(&JwksError) -> bool;
    let cases: [(&str, Expected); 5] = [
        ("<html>down for maintenance</html>", |e| matches!(e, JwksError::Malformed(_))),
        (r#"{"keys": "none"}"#, |e| matches!(e, JwksError::Malformed(_))),
        (r#"{"kids": []}"#, |e| matches!(e, JwksError::Malformed(_))),
        (&too_large, |e| matches!(e, JwksError::TooLarge { limit: 4096 })),
        ("", |e| matches!(e, JwksError::Malformed(_))),
    ];
    for (body, expected) in cases {
        server.serve_raw(body);
        let err = jwks.refresh().await.unwrap_err();
        assert!(expected(&err), "unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
        assert_eq!(jwks.status().keys, 1);
        assert_eq!(call(&client, addr, &key.token("alice")).await, (200, String::new()));
    }
    // An HTTP error keeps them too.
    server.fail(502);
    assert_eq!(jwks.refresh().await, Err(JwksError::Status(502)));
    assert_eq!(call(&client, addr, &key.token("alice")).await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_formed_jwks_without_usable_keys_withdraws_the_old_keys() {
    let server = JwksServer::start().await;
    let key = TestKey::es256("compromised");
    server.serve(vec![key.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();

    let oct = json!({ "kty": "oct", "alg": "HS256", "kid": "h", "k": b64(&[7u8; 32]) });
    let bad_rsa = json!({ "kty": "RSA", "kid": "r", "n": "%%%", "e": "AQAB" });
    // The provider withdraws its key: an empty set, or one with no key this source may use.
    let withdrawals: [(Vec<Value>, usize); 3] = [(vec![], 0), (vec![oct], 1), (vec![bad_rsa], 1)];
    for (keys, skipped) in withdrawals {
        server.serve(vec![key.jwk()]);
        assert_eq!(jwks.refresh().await, Ok(1));
        let token = key.token("alice");
        assert_eq!(call(&client, addr, &token).await, (200, String::new()));
        assert_eq!(call(&client, addr, &token).await, (200, String::new()), "served from the cache");

        server.serve(keys);
        assert_eq!(jwks.refresh().await, Err(JwksError::NoUsableKeys { skipped }));
        let status = jwks.status();
        assert_eq!(status.keys, 0);
        assert!(!status.usable);
        // The cached token and new ones are refused: the key is unknown now.
        assert_eq!(call(&client, addr, &token).await, (401, "INVALID_TOKEN".into()));
        assert_eq!(call(&client, addr, &key.token("bob")).await, (401, "INVALID_TOKEN".into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_is_refused_once_the_keys_pass_the_maximum_staleness() {
    let server = JwksServer::start().await;
    let key = TestKey::es256("k");
    server.serve(vec![key.jwk()]);
    // Refetched every 100 ms while the endpoint serves, so the keys stay fresh until it fails.
    let jwks = JwksKeys::builder(server.jwks_url())
        .max_staleness(Duration::from_secs(2))
        .refresh_interval(Duration::from_millis(100))
        .min_refresh_interval(Duration::from_millis(100))
        .retry_interval(Duration::from_millis(100), Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();
    let token = key.token("alice");
    assert_eq!(call(&client, addr, &token).await, (200, String::new()));
    assert_eq!(call(&client, addr, &token).await, (200, String::new()), "served from the cache");

    // The endpoint goes down; past the maximum staleness even the cached token fails closed.
    server.fail(500);
    eventually("the cached token is refused", || async {
        call(&client, addr, &token).await == (503, "AUTH_UNAVAILABLE".into())
    })
    .await;
    assert!(!jwks.status().usable);

    server.serve(vec![key.jwk()]);
    eventually("recovery", || async { call(&client, addr, &token).await.0 == 200 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_whose_first_runtime_is_gone_recovers_on_another() {
    let server = std::sync::Arc::new(JwksServer::start().await);
    let key = TestKey::es256("k");
    // The first fetch never completes ...
    server.hang();
    let url = server.jwks_url();
    let first = std::sync::Arc::clone(&server);
    let jwks = tokio::task::spawn_blocking(move || {
        // ... and the runtime it runs on (with the background refresh) is dropped meanwhile.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let jwks = runtime.block_on(async {
            let jwks = JwksKeys::builder(url)
                .timeout(Duration::from_secs(60))
                .refresh_interval(Duration::from_millis(100))
                .min_refresh_interval(Duration::from_millis(100))
                .build()
                .unwrap();
            eventually("the first fetch is in flight", || async { first.jwks_requests() >= 1 }).await;
            jwks
        });
        drop(runtime);
        jwks
    })
    .await
    .unwrap();

    server.serve(vec![key.jwk()]);
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();
    let recovered = tokio::time::timeout(Duration::from_secs(30), async {
        eventually("the keys arrive", || async { call(&client, addr, &key.token("alice")).await.0 == 200 })
            .await;
        // The background refresh runs again, on this runtime.
        let seen = server.jwks_requests();
        eventually("background refetches", || async { server.jwks_requests() >= seen + 2 }).await;
    })
    .await;
    assert!(recovered.is_ok(), "requests hung on a fetch of a runtime that is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_waits_forever_for_a_fetch_that_cannot_finish() {
    let server = std::sync::Arc::new(JwksServer::start().await);
    let key = TestKey::es256("k");
    server.serve(vec![key.jwk()]);
    server.hang();
    let url = server.jwks_url();
    let first = std::sync::Arc::clone(&server);
    // The background fetch starts on a runtime that is then left alive but idle: it never finishes.
    let (idle, jwks) = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let jwks = runtime.block_on(async {
            let jwks = JwksKeys::builder(url).timeout(Duration::from_millis(200)).build().unwrap();
            eventually("the first fetch is in flight", || async { first.jwks_requests() >= 1 }).await;
            jwks
        });
        (runtime, jwks)
    })
    .await
    .unwrap();

    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();
    let answer =
        tokio::time::timeout(Duration::from_secs(30), call(&client, addr, &key.token("alice"))).await;
    assert_eq!(answer.ok(), Some((503, "AUTH_UNAVAILABLE".into())), "the request hung or was not refused");
    tokio::task::spawn_blocking(move || drop(idle)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_discovery_makes_the_layer_require_the_issuer() {
    let server = JwksServer::start().await;
    let key = TestKey::es256("oidc");
    server.serve(vec![key.jwk()]);
    let issuer = server.issuer();
    let jwks = JwksKeys::discover(issuer.clone()).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    // No `.issuer(..)`: the discovered issuer is required.
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();
    let token = |iss: Option<&str>| key.token_with_issuer("alice", iss);
    assert_eq!(call(&client, addr, &token(Some(&issuer))).await, (200, String::new()));
    assert_eq!(
        call(&client, addr, &token(Some("https://evil.example.com"))).await,
        (401, "INVALID_TOKEN".into())
    );
    assert_eq!(call(&client, addr, &token(None)).await, (401, "INVALID_TOKEN".into()));

    // Issuers named explicitly are the list, even without the discovered one.
    let auth = JwtAuth::builder()
        .key_source(jwks.clone())
        .algorithms([Algorithm::ES256])
        .issuer("https://alias.example.com")
        .build()
        .unwrap();
    let addr = start_app(auth).await;
    assert_eq!(call(&client, addr, &token(Some("https://alias.example.com"))).await, (200, String::new()));
    assert_eq!(call(&client, addr, &token(Some(&issuer))).await, (401, "INVALID_TOKEN".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hmac_key_in_a_jwks_is_never_used() {
    let server = JwksServer::start().await;
    let ec = TestKey::es256("ec");
    let secret = [42u8; 32];
    let oct = json!({ "kty": "oct", "alg": "HS256", "use": "sig", "kid": "h", "k": b64(&secret) });
    server.serve(vec![oct, ec.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    // Even with HS256 in the allow-list (say for other, static keys), the JWKS secret never verifies.
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256, Algorithm::HS256])).await;
    let client = reqwest::Client::new();

    assert_eq!(
        call(&client, addr, &hs256_token(&secret, Some("h"), "mallory")).await,
        (401, "INVALID_TOKEN".into())
    );
    assert_eq!(
        call(&client, addr, &hs256_token(&secret, None, "mallory")).await,
        (401, "INVALID_TOKEN".into())
    );
    // The classic confusion: HS256 "signed" with the public key of the EC key.
    let public = ec.jwk().to_string();
    assert_eq!(
        call(&client, addr, &hs256_token(public.as_bytes(), Some("ec"), "mallory")).await,
        (401, "INVALID_TOKEN".into())
    );
    assert_eq!(call(&client, addr, &ec.token("alice")).await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_ec_and_okp_keys_with_and_without_kid() {
    let server = JwksServer::start().await;
    let rsa = TestKey::rs256("rsa");
    let p256 = TestKey::es256("p256");
    let p384 = TestKey::es384("p384");
    let ed = TestKey::ed25519(None);
    server.serve(vec![rsa.jwk(), p256.jwk(), p384.jwk(), ed.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(4));
    let algorithms = [Algorithm::RS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA];
    let addr = start_app(layer_auth(&jwks, algorithms)).await;
    let client = reqwest::Client::new();

    for key in [&rsa, &p256, &p384, &ed] {
        assert_eq!(call(&client, addr, &key.token("alice")).await, (200, String::new()), "{:?}", key.alg);
    }
    // The only key of its algorithm is found without a kid; a kid must name an existing key.
    assert_eq!(call(&client, addr, &p256.token_with_kid("alice", None)).await, (200, String::new()));
    assert_eq!(call(&client, addr, &ed.token_with_kid("alice", Some("nope"))).await.0, 401);
    // A key is bound to one algorithm: a P-256 signature under kid "p384" is refused.
    assert_eq!(call(&client, addr, &p256.token_with_kid("alice", Some("p384"))).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_keys_and_a_jwks_combine() {
    let server = JwksServer::start().await;
    let remote = TestKey::es256("remote");
    server.serve(vec![remote.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    let secret = [9u8; 32];
    let local = tower_jwt_guard::VerificationKey::hmac(Algorithm::HS256, secret).unwrap().with_kid("local");
    let auth = JwtAuth::builder()
        .key(local)
        .key_source(jwks)
        .algorithms([Algorithm::HS256, Algorithm::ES256])
        .build()
        .unwrap();
    let addr = start_app(auth).await;
    let client = reqwest::Client::new();

    assert_eq!(call(&client, addr, &hs256_token(&secret, Some("local"), "svc")).await, (200, String::new()));
    assert_eq!(call(&client, addr, &remote.token("alice")).await, (200, String::new()));
    // The static secret never verifies a token that names a JWKS key, nor an unknown one.
    assert_eq!(call(&client, addr, &hs256_token(&secret, Some("remote"), "x")).await.0, 401);
    assert_eq!(call(&client, addr, &hs256_token(&secret, Some("other"), "x")).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kid_less_rotation_accepts_tokens_of_the_old_and_the_new_key() {
    let server = JwksServer::start().await;
    let old = TestKey::es256("unused").without_kid();
    let new = TestKey::es256("unused").without_kid();
    let forger = TestKey::es256("unused").without_kid();
    // The provider lists the next key first, the current one second, neither with a kid.
    server.serve(vec![new.jwk(), old.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(2));
    // The precise reasons are exposed, so the refusal below says it is the signature.
    let auth =
        JwtAuth::builder().key_source(jwks.clone()).algorithms([Algorithm::ES256]).expose_error_details(true);
    let addr = start_app(auth.build().unwrap()).await;
    let client = reqwest::Client::new();

    // Either key verifies a token without kid (the old one only as the second candidate).
    let old_token = old.token("alice");
    let new_token = new.token("bob");
    assert_eq!(call(&client, addr, &old_token).await, (200, String::new()));
    assert_eq!(call(&client, addr, &new_token).await, (200, String::new()));
    // A key that is not published verifies nothing.
    let forged = forger.token("mallory");
    assert_eq!(call(&client, addr, &forged).await, (401, "INVALID_TOKEN".into()));
    assert!(challenge(&client, addr, &forged).await.contains("the token signature is invalid"));
    // Cached now.
    assert_eq!(call(&client, addr, &old_token).await, (200, String::new()));

    // The old key is retired: the cache remembered the key that verified each token, so the
    // old key's tokens are refused, cached ones included, and the new key's still pass.
    server.serve(vec![new.jwk()]);
    assert_eq!(jwks.refresh().await, Ok(1));
    assert_eq!(call(&client, addr, &old_token).await, (401, "INVALID_TOKEN".into()));
    assert_eq!(call(&client, addr, &old.token("alice")).await, (401, "INVALID_TOKEN".into()));
    assert_eq!(call(&client, addr, &new_token).await, (200, String::new()));
    assert_eq!(call(&client, addr, &new.token("bob")).await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kid_less_token_is_tried_against_a_bounded_number_of_keys() {
    let server = JwksServer::start().await;
    let keys: Vec<TestKey> =
        (0..=MAX_KID_LESS_CANDIDATES).map(|_| TestKey::rs256("unused").without_kid()).collect();
    let (within, beyond) = keys.split_at(MAX_KID_LESS_CANDIDATES);
    server.serve(within.iter().map(TestKey::jwk).collect());
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(MAX_KID_LESS_CANDIDATES));
    // The precise reasons are exposed, so the refusals below say why.
    let addr = start_app(exposing_auth(&jwks, [Algorithm::RS256])).await;
    let client = reqwest::Client::new();

    // As many keys as the bound: the last one is still tried.
    let last = within.last().unwrap();
    assert_eq!(call(&client, addr, &last.token("alice")).await, (200, String::new()));

    // One more key of the algorithm: a kid-less token is refused without trying any key, whether
    // its key is beyond the bound or the first one; a token naming its key by kid is unaffected.
    server.serve(keys.iter().map(TestKey::jwk).collect());
    assert_eq!(jwks.refresh().await, Ok(MAX_KID_LESS_CANDIDATES + 1));
    for signer in [&beyond[0], &keys[0]] {
        let token = signer.token("alice");
        assert_eq!(call(&client, addr, &token).await, (401, "INVALID_TOKEN".into()));
        assert!(challenge(&client, addr, &token)
            .await
            .contains("too many keys match this token without kid"));
    }
    let named = TestKey::rs256("named");
    let mut published: Vec<Value> = keys.iter().map(TestKey::jwk).collect();
    published.push(named.jwk());
    server.serve(published);
    assert_eq!(jwks.refresh().await, Ok(MAX_KID_LESS_CANDIDATES + 2));
    assert_eq!(call(&client, addr, &named.token("alice")).await, (200, String::new()));
    assert_eq!(
        call(&client, addr, &named.token_with_kid("alice", None)).await,
        (401, "INVALID_TOKEN".into())
    );
}

/// Hang detection only, never a speed assertion: what a test awaits must end at all.
async fn ends<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), future).await {
        Ok(value) => value,
        Err(_) => panic!("hung: {what}"),
    }
}

/// Sends `n` requests at once, each with a token of an invented `kid`; the tasks, and a counter of
/// those answered so far.
fn random_kids(
    client: &reqwest::Client,
    addr: SocketAddr,
    key: &TestKey,
    n: usize,
) -> (Vec<tokio::task::JoinHandle<(u16, String)>>, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks = (0..n)
        .map(|_| {
            let mut kid = [0u8; 9];
            aws_lc_rs::rand::fill(&mut kid).unwrap();
            let token = key.token_with_kid("mallory", Some(&b64(&kid)));
            let (client, answered) = (client.clone(), std::sync::Arc::clone(&answered));
            tokio::spawn(async move {
                let answer = call(&client, addr, &token).await;
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                answer
            })
        })
        .collect();
    (tasks, answered)
}

/// Cap on waiting requests in the hung-endpoint tests, and how many requests they send at once.
const CAP: usize = 4;
const FLOOD: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_refetch_delays_no_known_kid_and_parks_at_most_the_cap_of_unknown_kids() {
    let server = RawJwksServer::start().await;
    let key = TestKey::es256("real");
    server.serve(vec![key.jwk()]);
    // A long timeout: the hung fetch stays pending until the test releases it.
    let jwks = JwksKeys::builder(server.jwks_url())
        .timeout(Duration::from_secs(600))
        .max_waiting_requests(CAP)
        .build()
        .unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();

    // The endpoint now accepts and never answers. A flood of invented kids: the first triggers a
    // refetch (which hangs), CAP requests wait for it, every other one is refused at once.
    server.stall();
    let (flood, answered) = random_kids(&client, addr, &key, FLOOD);
    eventually("all but the capped waiters answered", || async {
        answered.load(std::sync::atomic::Ordering::SeqCst) == FLOOD - CAP && jwks.status().waiting == CAP
    })
    .await;
    // A token whose kid is held is answered from memory, and so is one more invented kid (the cap
    // is full) ...
    for _ in 0..5 {
        assert_eq!(ends("a known kid", call(&client, addr, &key.token("alice"))).await, (200, String::new()));
    }
    let one_more = key.token_with_kid("mallory", Some("one-more"));
    assert_eq!(ends("an unknown kid", call(&client, addr, &one_more)).await, (401, "INVALID_TOKEN".into()));
    // ... while the refetch is provably still pending: the server holds its connection unanswered
    // (one connection: the flood made one refetch), and the capped requests still wait for it.
    assert_eq!(server.stalled(), 1, "the refetch ended meanwhile: the answers above prove nothing");
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), FLOOD - CAP);
    assert_eq!(jwks.status().waiting, CAP);

    // The endpoint drops the connection: the waiters are answered from the keys held.
    server.release();
    for task in flood {
        assert_eq!(ends("a waiting request", task).await.unwrap(), (401, "INVALID_TOKEN".into()));
    }
    assert_eq!(jwks.status().waiting, 0);
    assert_eq!(call(&client, addr, &key.token("alice")).await, (200, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_first_fetch_parks_at_most_the_cap_and_refuses_the_rest_with_503() {
    let server = RawJwksServer::start().await;
    server.stall();
    let key = TestKey::es256("real");
    let jwks = JwksKeys::builder(server.jwks_url())
        .timeout(Duration::from_secs(600))
        .max_waiting_requests(CAP)
        .build()
        .unwrap();
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();
    eventually("the first fetch hangs", || async { server.stalled() == 1 }).await;

    // No keys yet: CAP requests wait for the first fetch, the others get 503 at once.
    let (flood, answered) = random_kids(&client, addr, &key, FLOOD);
    eventually("all but the capped waiters answered", || async {
        answered.load(std::sync::atomic::Ordering::SeqCst) == FLOOD - CAP && jwks.status().waiting == CAP
    })
    .await;
    assert_eq!(server.stalled(), 1, "the first fetch ended meanwhile: the answers above prove nothing");
    server.release();
    for task in flood {
        assert_eq!(ends("a request", task).await.unwrap(), (503, "AUTH_UNAVAILABLE".into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_endpoint_holds_no_request_past_the_timeout() {
    let server = RawJwksServer::start().await;
    let key = TestKey::es256("real");
    server.serve(vec![key.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url())
        .timeout(Duration::from_millis(500))
        .unknown_kid_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    let addr = start_app(layer_auth(&jwks, [Algorithm::ES256])).await;
    let client = reqwest::Client::new();

    // The endpoint answers one header byte at a time, forever. Waves of invented kids, some of
    // them refetching (the interval is short): every request ends, refused; known kids pass.
    let before = server.requests();
    server.drip();
    for _ in 0..3 {
        let (flood, _) = random_kids(&client, addr, &key, 50);
        assert_eq!(ends("a known kid", call(&client, addr, &key.token("alice"))).await, (200, String::new()));
        for task in flood {
            assert_eq!(ends("an unknown kid", task).await.unwrap(), (401, "INVALID_TOKEN".into()));
        }
    }
    assert!(server.requests() > before, "no refetch reached the slow endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_while_its_key_is_fetched_is_refused() {
    let server = RawJwksServer::start().await;
    let old = TestKey::es256("old");
    let new = TestKey::es256("new");
    server.serve(vec![old.jwk()]);
    let jwks = JwksKeys::builder(server.jwks_url()).build().unwrap();
    assert_eq!(jwks.refresh().await, Ok(1));
    let auth = JwtAuth::builder()
        .key_source(jwks.clone())
        .algorithms([Algorithm::ES256])
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let addr = start_app(auth).await;
    let client = reqwest::Client::new();

    // Valid when the request arrives; its key (a new kid) is published by an endpoint that
    // answers only after the token has expired.
    let exp = now() + 2;
    let token = new.token_expiring_at("alice", exp);
    server.serve_at(exp + 1, vec![old.jwk(), new.jwk()]);
    assert_eq!(
        ends("a token waiting for its key", call(&client, addr, &token)).await,
        (401, "TOKEN_EXPIRED".into())
    );
    // It was refused for its time, after its key arrived: a fresh token of that key passes (no
    // other refetch comes within the unknown-kid interval).
    assert_eq!(call(&client, addr, &new.token("bob")).await, (200, String::new()));
}
