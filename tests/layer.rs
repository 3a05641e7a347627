//! The core request path over real HTTP: every algorithm, every rejection of the table in
//! DESIGN.md, the extractors, optional mode, token sources, the rejection hook.

mod harness;

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use harness::{answer, b64, claims, client, now, serve, TestKey};
use http::HeaderName;
use serde_json::{json, Value};
use tower_jwt_guard::keys::{KeyLookup, KeySource};
use tower_jwt_guard::{
    Algorithm, AuthContext, AuthError, Claims, ConfigError, ErrorKind, JwtAuth, JwtAuthBuilder, MfaPolicy,
    RequireMfa, RequiredClaim, TokenSource, VerificationKey,
};

async fn me(Claims(claims): Claims<Value>) -> Json<Value> {
    Json((*claims).clone())
}

async fn context(ctx: AuthContext) -> Json<Value> {
    Json(json!({ "sub": ctx.subject(), "jti": ctx.jti(), "amr": ctx.amr, "mfa": ctx.mfa_satisfied() }))
}

async fn admin(RequireMfa(ctx): RequireMfa) -> Json<Value> {
    Json(json!({ "admin": ctx.subject() }))
}

async fn maybe(claims: Option<Claims<Value>>) -> Json<Value> {
    Json(json!({ "sub": claims.and_then(|c| c.get("sub").cloned()) }))
}

/// The protected routes behind the layer of `auth`, and one route that forgot the layer.
fn app(auth: &JwtAuth) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/ctx", get(context))
        .route("/admin", get(admin))
        .route("/maybe", get(maybe))
        .route_layer(auth.layer::<Value>())
        .route("/unguarded", get(me))
        .route("/health", get(|| async { "ok" }))
}

async fn start(builder: JwtAuthBuilder) -> String {
    let auth = builder.build().unwrap();
    format!("http://{}", serve(app(&auth)).await)
}

fn hs256() -> TestKey {
    TestKey::hmac(Algorithm::HS256, b"0123456789abcdef0123456789abcdef")
}

#[tokio::test]
async fn every_algorithm_round_trips_and_a_foreign_key_is_refused() {
    use Algorithm::*;
    let http = client();
    for alg in [HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA] {
        let key = TestKey::generate(alg);
        let other = TestKey::generate(alg);
        let base = start(JwtAuth::builder().key(key.verification_key())).await;

        let ok = answer(http.get(format!("{base}/me")).bearer_auth(key.sign(&claims("alice")))).await;
        assert_eq!(ok.status, 200, "{alg:?}: {:?}", ok.body);
        assert_eq!(ok.body["sub"], "alice", "{alg:?}");

        let forged = answer(http.get(format!("{base}/me")).bearer_auth(other.sign(&claims("alice")))).await;
        assert_eq!((forged.status, forged.code()), (401, "INVALID_TOKEN"), "{alg:?}");
    }
}

#[tokio::test]
async fn pem_keys_pick_their_algorithm_and_refuse_another() {
    let http = client();
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        let key = TestKey::generate(alg);
        let verification = VerificationKey::from_pem(key.public_pem.as_bytes(), None).unwrap();
        assert_eq!(verification.algorithm(), alg);
        let base = start(JwtAuth::builder().key(verification)).await;
        let ok = answer(http.get(format!("{base}/me")).bearer_auth(key.sign(&claims("pem")))).await;
        assert_eq!(ok.status, 200, "{alg:?}");
    }
    // PS256 must be asked for: the same RSA key then refuses RS256 tokens.
    let rs = TestKey::generate(Algorithm::RS256);
    let ps_key = VerificationKey::from_pem(rs.public_pem.as_bytes(), Some(Algorithm::PS256)).unwrap();
    let base = start(JwtAuth::builder().key(ps_key)).await;
    let refused = answer(http.get(format!("{base}/me")).bearer_auth(rs.sign(&claims("x")))).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn keys_are_selected_by_kid() {
    let a = TestKey::generate(Algorithm::ES256);
    let b = TestKey::generate(Algorithm::ES256);
    let base = start(
        JwtAuth::builder().key(a.verification_key().with_kid("a")).key(b.verification_key().with_kid("b")),
    )
    .await;
    let http = client();
    let with_kid = |key: &TestKey, kid: &str| key.sign_with_header(json!({ "kid": kid }), &claims("k"));
    assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(with_kid(&a, "a"))).await.status, 200);
    assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(with_kid(&b, "b"))).await.status, 200);
    let swapped = answer(http.get(format!("{base}/me")).bearer_auth(with_kid(&a, "b"))).await;
    assert_eq!((swapped.status, swapped.code()), (401, "INVALID_TOKEN"));
    let unknown = answer(http.get(format!("{base}/me")).bearer_auth(with_kid(&a, "zzz"))).await;
    assert_eq!((unknown.status, unknown.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn a_token_without_kid_is_tried_with_each_key_of_its_algorithm() {
    let a = TestKey::generate(Algorithm::ES256);
    let b = TestKey::generate(Algorithm::ES256);
    let stranger = TestKey::generate(Algorithm::ES256);
    let base = start(
        JwtAuth::builder().key(a.verification_key().with_kid("a")).key(b.verification_key().with_kid("b")),
    )
    .await;
    let http = client();
    for key in [&a, &b] {
        assert_eq!(
            answer(http.get(format!("{base}/me")).bearer_auth(key.sign(&claims("k")))).await.status,
            200
        );
    }
    let forged = answer(http.get(format!("{base}/me")).bearer_auth(stranger.sign(&claims("k")))).await;
    assert_eq!((forged.status, forged.code()), (401, "INVALID_TOKEN"));
}

/// A source that answers every lookup with the same candidates.
struct FixedCandidates(Vec<std::sync::Arc<VerificationKey>>);

impl KeySource for FixedCandidates {
    fn lookup(&self, _kid: Option<&str>, _alg: Algorithm) -> KeyLookup {
        KeyLookup::Candidates(self.0.clone())
    }
}

#[tokio::test]
async fn a_candidate_bound_to_another_algorithm_refuses_the_token() {
    let es = TestKey::generate(Algorithm::ES256);
    let other_es = TestKey::generate(Algorithm::ES256);
    let hmac = hs256();
    let start_with = |keys: Vec<VerificationKey>| {
        let source = FixedCandidates(keys.into_iter().map(std::sync::Arc::new).collect());
        start(JwtAuth::builder().key_source(source).algorithms([Algorithm::ES256, Algorithm::HS256]))
    };
    let http = client();
    // The right key among candidates of the token's algorithm verifies it ...
    let base = start_with(vec![other_es.verification_key(), es.verification_key()]).await;
    assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(es.sign(&claims("k")))).await.status, 200);
    // ... but a candidate bound to another algorithm refuses the token, whatever the others say.
    let base = start_with(vec![hmac.verification_key(), es.verification_key()]).await;
    let mixed = answer(http.get(format!("{base}/me")).bearer_auth(es.sign(&claims("k")))).await;
    assert_eq!((mixed.status, mixed.code()), (401, "INVALID_TOKEN"));
    // No candidate at all is no key.
    let base = start_with(Vec::new()).await;
    let none = answer(http.get(format!("{base}/me")).bearer_auth(es.sign(&claims("k")))).await;
    assert_eq!((none.status, none.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn missing_and_malformed_requests_get_the_rfc_6750_answers() {
    let key = hs256();
    let base = start(JwtAuth::builder().key(key.verification_key()).realm("shop")).await;
    let http = client();

    let missing = answer(http.get(format!("{base}/me"))).await;
    assert_eq!((missing.status, missing.code()), (401, "MISSING_TOKEN"));
    assert_eq!(missing.challenge.as_deref(), Some(r#"Bearer realm="shop""#));
    assert_eq!(missing.headers["cache-control"], "no-store");

    let other_scheme = answer(http.get(format!("{base}/me")).header("authorization", "Basic YTpi")).await;
    assert_eq!((other_scheme.status, other_scheme.code()), (401, "MISSING_TOKEN"));

    let token = key.sign(&claims("alice"));
    let lower =
        answer(http.get(format!("{base}/me")).header("authorization", format!("bearer {token}"))).await;
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");

    let two = answer(
        http.get(format!("{base}/me"))
            .header("authorization", format!("Bearer {token}"))
            .header("authorization", format!("Bearer {token}")),
    )
    .await;
    assert_eq!((two.status, two.code()), (400, "INVALID_REQUEST"));
    assert!(two.challenge.unwrap().contains(r#"error="invalid_request""#));

    let empty = answer(http.get(format!("{base}/me")).header("authorization", "Bearer ")).await;
    assert_eq!((empty.status, empty.code()), (400, "INVALID_REQUEST"));

    let garbage = answer(http.get(format!("{base}/me")).bearer_auth("not-a-jwt")).await;
    assert_eq!((garbage.status, garbage.code()), (401, "INVALID_TOKEN"));
    assert!(garbage.challenge.unwrap().contains(r#"error="invalid_token""#));

    let huge = answer(http.get(format!("{base}/me")).bearer_auth("a".repeat(9000))).await;
    assert_eq!((huge.status, huge.code()), (401, "INVALID_TOKEN"));

    // The health route has no layer.
    assert_eq!(http.get(format!("{base}/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn time_claims_are_checked_with_leeway() {
    let key = hs256();
    let base =
        start(JwtAuth::builder().key(key.verification_key()).max_token_age(Duration::from_secs(3600))).await;
    let http = client();
    let t = now();
    let send = |claims: Value| http.get(format!("{base}/me")).bearer_auth(key.sign(&claims));

    let expired = answer(send(json!({ "sub": "a", "iat": t - 200, "exp": t - 100 }))).await;
    assert_eq!((expired.status, expired.code()), (401, "TOKEN_EXPIRED"));
    assert!(expired.challenge.unwrap().contains("invalid_token"));

    let within_leeway = answer(send(json!({ "sub": "a", "iat": t - 200, "exp": t - 5 }))).await;
    assert_eq!(within_leeway.status, 200, "30 s of leeway by default");

    let early = answer(send(json!({ "sub": "a", "nbf": t + 300, "exp": t + 600 }))).await;
    assert_eq!((early.status, early.code()), (401, "TOKEN_NOT_YET_VALID"));

    let future_iat = answer(send(json!({ "sub": "a", "iat": t + 300, "exp": t + 600 }))).await;
    assert_eq!((future_iat.status, future_iat.code()), (401, "TOKEN_NOT_YET_VALID"));

    let old = answer(send(json!({ "sub": "a", "iat": t - 7200, "exp": t + 600 }))).await;
    assert_eq!((old.status, old.code()), (401, "TOKEN_TOO_OLD"));

    let no_exp = answer(send(json!({ "sub": "a", "iat": t }))).await;
    assert_eq!((no_exp.status, no_exp.code()), (401, "INVALID_TOKEN"));

    let string_exp = answer(send(json!({ "sub": "a", "exp": (t + 600).to_string() }))).await;
    assert_eq!((string_exp.status, string_exp.code()), (401, "INVALID_TOKEN"), "CVE-2026-25537");
}

#[tokio::test]
async fn issuer_audience_type_and_required_claims() {
    let key = hs256();
    let base = start(
        JwtAuth::builder()
            .key(key.verification_key())
            .issuer("https://auth.example.com")
            .audience("api")
            .token_type("at+jwt")
            .require([RequiredClaim::Exp, RequiredClaim::Jti]),
    )
    .await;
    let http = client();
    let t = now();
    let good = json!({ "sub": "a", "iss": "https://auth.example.com", "aud": ["web", "api"], "exp": t + 60, "jti": "1" });
    let at = json!({ "typ": "at+jwt" });
    let send = |header: Value, claims: Value| {
        http.get(format!("{base}/me")).bearer_auth(key.sign_with_header(header, &claims))
    };

    assert_eq!(answer(send(at.clone(), good.clone())).await.status, 200);
    let app_typ = answer(send(json!({ "typ": "application/at+jwt" }), good.clone())).await;
    assert_eq!(app_typ.status, 200, "RFC 7515: the application/ prefix may be omitted");

    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil.example.com");
    assert_eq!(answer(send(at.clone(), wrong_iss)).await.code(), "INVALID_TOKEN");

    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("other");
    assert_eq!(answer(send(at.clone(), wrong_aud)).await.code(), "INVALID_TOKEN");

    let mut no_jti = good.clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_eq!(answer(send(at.clone(), no_jti)).await.code(), "INVALID_TOKEN");

    let plain_jwt = answer(send(json!({}), good.clone())).await;
    assert_eq!(plain_jwt.code(), "INVALID_TOKEN", "typ JWT is not an access token");
}

#[tokio::test]
async fn algorithms_outside_the_allow_list_are_refused() {
    let hs = hs256();
    let hs512 = TestKey::hmac(Algorithm::HS512, b"0123456789abcdef0123456789abcdef");
    let base = start(JwtAuth::builder().key(hs.verification_key())).await;
    let http = client();
    // Same secret, other HMAC algorithm: the key is bound to HS256 only.
    let other = answer(http.get(format!("{base}/me")).bearer_auth(hs512.sign(&claims("a")))).await;
    assert_eq!((other.status, other.code()), (401, "INVALID_TOKEN"));
    let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims("a").to_string()));
    let refused = answer(http.get(format!("{base}/me")).bearer_auth(none)).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn context_mfa_and_step_up() {
    let key = hs256();
    let base =
        start(JwtAuth::builder().key(key.verification_key()).mfa(
            MfaPolicy::default().accept_acr(["urn:example:mfa"]).max_auth_age(Duration::from_secs(600)),
        ))
        .await;
    let http = client();
    let t = now();
    let get = |path: &str, claims: Value| http.get(format!("{base}{path}")).bearer_auth(key.sign(&claims));

    let ctx = answer(get("/ctx", json!({ "sub": "bob", "jti": "j-1", "exp": t + 60, "amr": ["pwd"] }))).await;
    assert_eq!(ctx.body, json!({ "sub": "bob", "jti": "j-1", "amr": ["pwd"], "mfa": false }));

    let pwd_only = answer(get("/admin", json!({ "sub": "bob", "exp": t + 60, "amr": ["pwd"] }))).await;
    assert_eq!((pwd_only.status, pwd_only.code()), (401, "MFA_REQUIRED"));
    let challenge = pwd_only.challenge.unwrap();
    assert!(challenge.contains(r#"error="insufficient_user_authentication""#), "{challenge}");
    assert!(challenge.contains(r#"acr_values="urn:example:mfa""#), "{challenge}");
    assert!(challenge.contains(r#"max_age="600""#), "{challenge}");

    let otp =
        answer(get("/admin", json!({ "sub": "bob", "exp": t + 60, "amr": ["pwd", "otp"], "auth_time": t })))
            .await;
    assert_eq!(otp.status, 200, "{:?}", otp.body);
    let verified =
        answer(get("/admin", json!({ "sub": "bob", "exp": t + 60, "mfa_verified": true, "auth_time": t })))
            .await;
    assert_eq!(verified.status, 200);
    let stringly =
        answer(get("/admin", json!({ "sub": "bob", "exp": t + 60, "mfa_verified": "true", "auth_time": t })))
            .await;
    assert_eq!(stringly.code(), "INVALID_TOKEN", "mfa_verified must be a boolean");
    let acr = answer(get(
        "/admin",
        json!({ "sub": "bob", "exp": t + 60, "acr": "urn:example:mfa", "auth_time": t }),
    ))
    .await;
    assert_eq!(acr.status, 200);
    let stale =
        answer(get("/admin", json!({ "sub": "bob", "exp": t + 60, "amr": ["otp"], "auth_time": t - 3600 })))
            .await;
    assert_eq!(stale.code(), "MFA_REQUIRED", "the second factor is older than max_auth_age");
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_not_bad_tokens() {
    let key = hs256();
    let base = start(JwtAuth::builder().key(key.verification_key()).optional(true).realm("shop")).await;
    let http = client();
    let anonymous = answer(http.get(format!("{base}/maybe"))).await;
    assert_eq!((anonymous.status, anonymous.body.clone()), (200, json!({ "sub": null })));
    let signed = answer(http.get(format!("{base}/maybe")).bearer_auth(key.sign(&claims("carol")))).await;
    assert_eq!(signed.body, json!({ "sub": "carol" }));
    let bad = answer(http.get(format!("{base}/maybe")).bearer_auth("a.b.c")).await;
    assert_eq!((bad.status, bad.code()), (401, "INVALID_TOKEN"));
    // A handler that needs claims answers 401, not 500, for an anonymous request.
    let needs = answer(http.get(format!("{base}/me"))).await;
    assert_eq!((needs.status, needs.code()), (401, "MISSING_TOKEN"));
    assert_eq!(needs.challenge.as_deref(), Some(r#"Bearer realm="shop""#), "the configured realm");
}

#[tokio::test]
async fn an_extractor_without_the_layer_is_a_wiring_bug() {
    let key = hs256();
    let base = start(JwtAuth::builder().key(key.verification_key())).await;
    let http = client();
    let unguarded = answer(http.get(format!("{base}/unguarded")).bearer_auth(key.sign(&claims("a")))).await;
    assert_eq!((unguarded.status, unguarded.code()), (500, "MISSING_LAYER"));
    assert!(unguarded.body["error"].as_str().unwrap().contains("layer"));
}

#[tokio::test]
async fn cookie_and_custom_header_sources() {
    let key = hs256();
    let base = start(JwtAuth::builder().key(key.verification_key()).sources([
        TokenSource::cookie("session"),
        TokenSource::header(HeaderName::from_static("x-api-token")),
    ]))
    .await;
    let http = client();
    let token = key.sign(&claims("dave"));
    let cookie =
        answer(http.get(format!("{base}/me")).header("cookie", format!("theme=dark; session={token}"))).await;
    assert_eq!(cookie.body["sub"], "dave");
    let header = answer(http.get(format!("{base}/me")).header("x-api-token", &token)).await;
    assert_eq!(header.body["sub"], "dave");
    let bearer = answer(http.get(format!("{base}/me")).bearer_auth(&token)).await;
    assert_eq!(bearer.code(), "MISSING_TOKEN", "the bearer header is not a configured source");
    let both = answer(
        http.get(format!("{base}/me"))
            .header("x-api-token", &token)
            .header("cookie", format!("session={token}")),
    )
    .await;
    assert_eq!((both.status, both.code()), (400, "INVALID_REQUEST"));
}

#[tokio::test]
async fn query_tokens_are_ignored_unless_configured() {
    let key = hs256();
    let token = key.sign(&claims("erin"));
    let http = client();
    let default = start(JwtAuth::builder().key(key.verification_key())).await;
    let ignored = answer(http.get(format!("{default}/me?access_token={token}"))).await;
    assert_eq!(ignored.code(), "MISSING_TOKEN");
    let opted_in =
        start(JwtAuth::builder().key(key.verification_key()).sources([TokenSource::query()])).await;
    let used = answer(http.get(format!("{opted_in}/me?access_token={token}"))).await;
    assert_eq!(used.body["sub"], "erin");
}

#[tokio::test]
async fn custom_checks_and_the_rejection_hook() {
    let key = hs256();
    let auth = JwtAuth::builder()
        .key(key.verification_key())
        .on_rejection(|error, _protocol| {
            http::Response::builder()
                .status(error.kind().status())
                .header("content-type", "text/plain")
                .body(bytes::Bytes::from(format!("denied: {}", error.code())))
                .unwrap()
        })
        .build()
        .unwrap();
    let layer = auth.layer::<Value>().with_check(|claims, _facts| match claims.get("role") {
        Some(role) if role == "admin" => Ok(()),
        _ => Err(AuthError::with_message(ErrorKind::InvalidToken, "admins only")),
    });
    let router = Router::new().route("/me", get(me)).route_layer(layer);
    let base = format!("http://{}", serve(router).await);
    let http = client();
    let t = now();
    let admin = answer(
        http.get(format!("{base}/me"))
            .bearer_auth(key.sign(&json!({ "sub": "a", "role": "admin", "exp": t + 60 }))),
    )
    .await;
    assert_eq!(admin.status, 200);
    let user = answer(
        http.get(format!("{base}/me"))
            .bearer_auth(key.sign(&json!({ "sub": "a", "role": "user", "exp": t + 60 }))),
    )
    .await;
    assert_eq!(user.status, 401);
    assert_eq!(user.body, json!("denied: INVALID_TOKEN"));
}

#[tokio::test]
async fn grpc_requests_get_a_trailers_only_status() {
    let key = hs256();
    let base = start(JwtAuth::builder().key(key.verification_key())).await;
    let http = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response =
        http.post(format!("{base}/me")).header("content-type", "application/grpc").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "16");
    let message = response.headers()["grpc-message"].to_str().unwrap().to_string();
    assert!(message.starts_with("MISSING_TOKEN"), "{message}");
    let two = http
        .post(format!("{base}/me"))
        .header("content-type", "application/grpc+proto")
        .header("authorization", "Bearer a.b.c")
        .header("authorization", "Bearer a.b.c")
        .send()
        .await
        .unwrap();
    assert_eq!((two.status().as_u16(), two.headers()["grpc-status"].to_str().unwrap()), (200, "16"));

    // Over HTTP/1.1 a gRPC content type gets a plain 401: a gRPC refusal is an HTTP 200, and a
    // proxy asking "is this allowed?" must never read a refusal as a 2xx.
    let http1 = client();
    let spoofed = answer(http1.post(format!("{base}/me")).header("content-type", "application/grpc")).await;
    assert_eq!((spoofed.status, spoofed.code()), (401, "MISSING_TOKEN"));
    let web = answer(http.post(format!("{base}/me")).header("content-type", "application/grpc-web")).await;
    assert_eq!((web.status, web.code()), (401, "MISSING_TOKEN"), "gRPC-Web is answered as HTTP");
}

#[tokio::test]
async fn the_cache_serves_repeats_but_rechecks_expiry() {
    let key = hs256();
    let auth = JwtAuth::builder().key(key.verification_key()).leeway(Duration::ZERO).build().unwrap();
    let layer = auth.layer::<Value>();
    let router = Router::new().route("/me", get(me)).route_layer(layer.clone());
    let base = format!("http://{}", serve(router).await);
    let http = client();

    let token = key.sign(&claims("frank"));
    for _ in 0..3 {
        assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(&token)).await.status, 200);
    }
    let stats = layer.cache_stats().unwrap();
    assert_eq!((stats.misses, stats.hits, stats.len), (1, 2, 1));

    // A token that expires in a second: accepted, cached, then refused once its time is up.
    let short = key.sign(&json!({ "sub": "f", "exp": now() + 1 }));
    assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(&short)).await.status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = answer(http.get(format!("{base}/me")).bearer_auth(&short)).await;
        if again.status == 401 {
            assert_eq!(again.code(), "TOKEN_EXPIRED");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "an expired cached token was still accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Bad tokens are never cached.
    let before = layer.cache_stats().unwrap().len;
    let _ = answer(http.get(format!("{base}/me")).bearer_auth(hs256_other().sign(&claims("x")))).await;
    assert_eq!(layer.cache_stats().unwrap().len, before);
}

fn hs256_other() -> TestKey {
    TestKey::hmac(Algorithm::HS256, b"fedcba9876543210fedcba9876543210")
}

#[test]
fn bad_configuration_is_an_error_not_a_panic() {
    let short = JwtAuth::builder().hmac_secret("too short").build().unwrap_err();
    assert!(matches!(short, ConfigError::WeakSecret { min_len: 32, .. }), "{short}");
    assert_eq!(JwtAuth::builder().build().unwrap_err(), ConfigError::NoKeys);
    let es = TestKey::generate(Algorithm::ES256);
    let not_allowed = JwtAuth::builder().key(es.verification_key()).algorithms([Algorithm::RS256]).build();
    assert_eq!(not_allowed.unwrap_err(), ConfigError::AlgorithmNotAllowed(Algorithm::ES256));
    assert!(VerificationKey::from_der(Algorithm::RS256, &es.public_raw).is_err());
    assert!(VerificationKey::from_pem(es.public_pem.as_bytes(), Some(Algorithm::HS256)).is_err());
    assert!(JwtAuth::builder().hmac_secret([0u8; 32]).realm("bad\"realm").build().is_err());
}

#[tokio::test]
async fn a_flood_of_distinct_tokens_keeps_the_cache_at_its_bound() {
    let key = hs256();
    let auth = JwtAuth::builder().key(key.verification_key()).cache_capacity(64).build().unwrap();
    let layer = auth.layer::<Value>();
    let router = Router::new().route("/me", get(me)).route_layer(layer.clone());
    let base = format!("http://{}", serve(router).await);
    let http = client();
    let t = now();
    for i in 0..1000 {
        let token = key.sign(&json!({ "sub": format!("user-{i}"), "exp": t + 600 }));
        assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(token)).await.status, 200);
    }
    let stats = layer.cache_stats().unwrap();
    assert_eq!(stats.misses, 1000, "every token is new");
    assert!(stats.len <= stats.capacity, "{} entries for a capacity of {}", stats.len, stats.capacity);
    assert_eq!(stats.capacity, 64);
}

#[tokio::test]
async fn tokens_longer_than_the_cache_cap_are_verified_but_not_cached() {
    let key = hs256();
    let auth = JwtAuth::builder().key(key.verification_key()).build().unwrap();
    let layer = auth.layer::<Value>();
    let router = Router::new().route("/me", get(me)).route_layer(layer.clone());
    let base = format!("http://{}", serve(router).await);
    let padding = "x".repeat(3000);
    let token = key.sign(&json!({ "sub": "big", "exp": now() + 600, "pad": padding }));
    assert!(token.len() < tower_jwt_guard::DEFAULT_MAX_TOKEN_LEN);
    let http = client();
    assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(&token)).await.status, 200);
    assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(&token)).await.status, 200);
    let stats = layer.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.len), (0, 0), "{stats:?}");
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_when_none_is_configured() {
    let key = hs256();
    let http = client();
    let for_b = key.sign(&json!({ "sub": "a", "aud": "service-b", "exp": now() + 60 }));
    let strict = start(JwtAuth::builder().key(key.verification_key())).await;
    let refused = answer(http.get(format!("{strict}/me")).bearer_auth(&for_b)).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
    let no_aud = answer(http.get(format!("{strict}/me")).bearer_auth(key.sign(&claims("a")))).await;
    assert_eq!(no_aud.status, 200, "a token without aud is still accepted");
    let lenient = start(JwtAuth::builder().key(key.verification_key()).accept_any_audience()).await;
    assert_eq!(answer(http.get(format!("{lenient}/me")).bearer_auth(&for_b)).await.status, 200);
}

#[tokio::test]
async fn a_bound_token_is_refused_where_nothing_checks_its_binding() {
    let key = hs256();
    let base = start(JwtAuth::builder().key(key.verification_key())).await;
    let http = client();
    let t = now();
    for (member, value) in [
        ("jkt", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
        ("x5t#S256", "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"),
        ("dfp", "abc"),
    ] {
        let bound = key.sign(&json!({ "sub": "a", "exp": t + 60, "cnf": { member: value } }));
        let refused = answer(http.get(format!("{base}/me")).bearer_auth(bound)).await;
        assert_eq!((refused.status, refused.code()), (401, "BINDING_MISMATCH"), "{member}");
        assert_eq!(refused.body["binding"], member, "the body names the binding");
    }
    // An empty `cnf` names no confirmation method (RFC 7800 §3.1): malformed, not unbound.
    let empty = key.sign(&json!({ "sub": "a", "exp": t + 60, "cnf": {} }));
    let refused = answer(http.get(format!("{base}/me")).bearer_auth(empty)).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
    let unbound = key.sign(&json!({ "sub": "a", "exp": t + 60 }));
    assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(unbound)).await.status, 200);
}

#[tokio::test]
async fn tokens_from_another_jose_library_pass() {
    use jsonwebtoken_10 as other;
    let http = client();
    let t = now();
    let claims =
        json!({ "sub": "interop", "iat": t, "exp": t + 600, "aud": "api", "iss": "https://idp.example" });
    let secret = b"0123456789abcdef0123456789abcdef0123456789abcdef";
    let hs = TestKey::hmac(Algorithm::HS384, secret);
    let es = TestKey::generate(Algorithm::ES256);
    let ed = TestKey::generate(Algorithm::EdDSA);
    let cases = [
        (&hs, other::Algorithm::HS384, other::EncodingKey::from_secret(secret)),
        (&es, other::Algorithm::ES256, other::EncodingKey::from_ec_der(&es.private_pkcs8().unwrap())),
        (&ed, other::Algorithm::EdDSA, other::EncodingKey::from_ed_der(&ed.private_pkcs8().unwrap())),
    ];
    for (key, alg, encoding) in cases {
        let base = start(
            JwtAuth::builder()
                .key(key.verification_key().with_kid("k1"))
                .issuer("https://idp.example")
                .audience("api"),
        )
        .await;
        let mut header = other::Header::new(alg);
        header.kid = Some("k1".into());
        let token = other::encode(&header, &claims, &encoding).unwrap();
        let ok = answer(http.get(format!("{base}/me")).bearer_auth(&token)).await;
        assert_eq!((ok.status, ok.body["sub"].clone()), (200, json!("interop")), "{alg:?}");
    }
}

/// Sends `GET {path}` over a raw connection (reqwest's URL parser would remove the dot
/// segments before sending) and answers the status and the `WWW-Authenticate` challenge.
async fn raw_get(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let challenge = response
        .lines()
        .find_map(|line| line.strip_prefix("www-authenticate: "))
        .unwrap_or_default()
        .to_owned();
    (status, challenge)
}

#[tokio::test]
async fn require_mfa_for_paths_covers_every_spelling_a_backend_serves_as_the_path() {
    use tower_jwt_guard::RequireMfaLayer;
    let key = hs256();
    let auth = JwtAuth::builder().key(key.verification_key()).build().unwrap();
    // A backend that serves any spelling (a normalising proxy or framework behind the layer).
    let app = Router::new()
        .fallback(|uri: http::Uri| async move { uri.path().to_owned() })
        .layer(RequireMfaLayer::for_paths(["/admin"]))
        .layer(auth.layer::<Value>());
    let addr = serve(app).await;
    let t = now();
    let password_only = key.sign(&json!({ "sub": "bob", "exp": t + 60, "amr": ["pwd"] }));
    let second_factor = key.sign(&json!({ "sub": "bob", "exp": t + 60, "amr": ["pwd", "otp"] }));
    for path in [
        "/admin",
        "/%61dmin",
        "/x/../admin",
        "/x/%2e%2e/admin",
        "/./admin",
        "//admin",
        "/ADMIN",
        "/admin/",
        "/admin;jsessionid=1",
        "/%2561dmin",
        "/x%2F..%2Fadmin",
        "/admin%3F.css",
        "/admin%00.html",
    ] {
        let (status, challenge) = raw_get(addr, path, &password_only).await;
        assert_eq!(status, 401, "{path}");
        assert!(challenge.contains("insufficient_user_authentication"), "{path}: {challenge}");
        assert_eq!(raw_get(addr, path, &second_factor).await.0, 200, "{path}");
    }
    for path in ["/me", "/admins", "/x/admin", "/admin/users"] {
        assert_eq!(raw_get(addr, path, &password_only).await.0, 200, "{path}");
    }
}
