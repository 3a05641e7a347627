//! Opaque access tokens checked by introspection (RFC 7662), against a real introspection
//! endpoint on loopback that checks the client's credentials and the form, and counts its calls.

#![cfg(all(feature = "introspection", feature = "axum"))]

mod example_process;
mod harness;
#[path = "common/node_script.rs"]
#[allow(dead_code)]
mod node_script;
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use harness::{answer, client, now, serve, Answer, TestKey};
use node_script::NodeScript;
use serde_json::{json, Value};
use tower_jwt_guard::issue::SigningKey;
use tower_jwt_guard::keys::{Introspector, IntrospectorBuilder};
use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationStore};
use tower_jwt_guard::{Algorithm, AuthContext, Claims, JwtAuth, JwtAuthBuilder, VerificationKey};

const ISSUER: &str = "https://as.example.com";
const CLIENT_ID: &str = "orders api";
const CLIENT_SECRET: &str = "s3cret:with/odd+chars";

/// How the endpoint expects the resource server to authenticate.
#[derive(Clone)]
enum Expect {
    Basic,
    Post,
    /// `private_key_jwt`, checked with this key.
    Assertion(Arc<VerificationKey>),
}

struct Endpoint {
    expect: Expect,
    calls: AtomicUsize,
}

/// The answer for `token`, as an authorization server would give it.
async fn introspect(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    endpoint.calls.fetch_add(1, Ordering::SeqCst);
    let basic = format!("Basic {}", STANDARD.encode("orders+api:s3cret%3Awith%2Fodd%2Bchars"));
    let authenticated = match &endpoint.expect {
        Expect::Basic => {
            headers.get("authorization").is_some_and(|value| value == basic.as_str())
                && !form.contains_key("client_secret")
        }
        Expect::Post => {
            form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
                && !headers.contains_key("authorization")
        }
        Expect::Assertion(key) => {
            form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_assertion_type").map(String::as_str)
                    == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                && form.get("client_assertion").is_some_and(|jwt| assertion_ok(key, jwt))
                && !headers.contains_key("authorization")
                && !form.contains_key("client_secret")
        }
    };
    let form_ok = headers.get("content-type").is_some_and(|v| v == "application/x-www-form-urlencoded")
        && form.get("token_type_hint").map(String::as_str) == Some("access_token");
    if !authenticated || !form_ok {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
    }
    let Some(token) = form.get("token") else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_request" }))).into_response();
    };
    let active = |sub: &str| {
        json!({
            "active": true, "sub": sub, "iss": ISSUER, "aud": "orders", "client_id": "web-app",
            "scope": "read write", "amr": ["pwd", "otp"], "jti": format!("jti-{token}"),
            "iat": now(), "exp": now() + 600, "token_type": "Bearer",
        })
    };
    let body = match token.as_str() {
        "hang" => std::future::pending().await,
        "dead" => json!({ "active": false }),
        "string-active" => json!({ "active": "true", "sub": "mallory", "exp": now() + 600 }),
        "no-active" => json!({ "sub": "mallory", "exp": now() + 600 }),
        "not-json" => return "<html>oops</html>".into_response(),
        "huge" => json!({ "active": true, "sub": "big", "exp": now() + 600, "pad": "x".repeat(100_000) }),
        "bound" => {
            json!({ "active": true, "sub": "bob", "iss": ISSUER, "aud": "orders", "exp": now() + 600, "cnf": { "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" } })
        }
        "elsewhere" => {
            json!({ "active": true, "sub": "bob", "iss": ISSUER, "aud": "billing", "exp": now() + 600 })
        }
        "string-exp" => {
            json!({ "active": true, "sub": "bob", "iss": ISSUER, "aud": "orders", "exp": "4000000000" })
        }
        token if token.starts_with("slow-") => {
            tokio::time::sleep(Duration::from_millis(400)).await;
            active("slow")
        }
        token if token.starts_with("expiring-") => {
            let exp: u64 = token["expiring-".len()..].parse().unwrap();
            if now() < exp {
                json!({ "active": true, "sub": "eve", "exp": exp })
            } else {
                json!({ "active": false })
            }
        }
        "from-b" => json!({
            "active": true, "sub": "mallory", "iss": OTHER_ISSUER, "aud": "orders", "exp": now() + 600,
        }),
        token if token.contains('.') => active("jwt-user"),
        token => active(token.trim_start_matches("opaque-")),
    };
    Json(body).into_response()
}

/// A client assertion (RFC 7523) signed by `key`, by this client, for this endpoint, current.
fn assertion_ok(key: &VerificationKey, jwt: &str) -> bool {
    let Some((input, signature)) = jwt.rsplit_once('.') else { return false };
    if !key.verify(input.as_bytes(), &harness::b64_decode(signature)) {
        return false;
    }
    let claims: Value =
        serde_json::from_slice(&harness::b64_decode(input.split('.').nth(1).unwrap())).unwrap();
    let aud = claims["aud"].as_str().unwrap_or("");
    claims["iss"] == CLIENT_ID
        && claims["sub"] == CLIENT_ID
        && aud.starts_with("http://127.0.0.1:")
        && aud.ends_with("/introspect")
        && claims["jti"].as_str().is_some_and(|jti| jti.len() >= 22)
        && claims["exp"].as_u64().is_some_and(|exp| exp > now() && exp <= now() + 120)
}

/// An introspection endpoint on loopback: its URL and its call counter.
async fn start_endpoint(expect: Expect) -> (String, Arc<Endpoint>) {
    let state = Arc::new(Endpoint { expect, calls: AtomicUsize::new(0) });
    let app = Router::new().route("/introspect", post(introspect)).with_state(Arc::clone(&state));
    let addr = serve(app).await;
    (format!("http://{addr}/introspect"), state)
}

#[derive(serde::Deserialize)]
struct User {
    sub: String,
    client_id: Option<String>,
}

async fn me(Claims(user): Claims<User>, context: AuthContext) -> Json<Value> {
    Json(json!({
        "sub": user.sub,
        "client_id": user.client_id,
        "read": context.has_scope("read"),
        "admin": context.has_scope("admin"),
        "mfa": context.mfa_satisfied(),
    }))
}

/// Another issuer the service trusts, with keys of its own.
const OTHER_ISSUER: &str = "https://b.example";

fn introspector(url: &str) -> IntrospectorBuilder {
    Introspector::builder(url)
        .client_secret_basic(CLIENT_ID, CLIENT_SECRET)
        .timeout(Duration::from_millis(500))
}

fn auth(introspector: IntrospectorBuilder) -> JwtAuthBuilder {
    JwtAuth::builder().introspection(introspector.build().unwrap()).issuer(ISSUER).audience("orders")
}

/// A protected `/me` under `auth`.
async fn service(auth: JwtAuth) -> SocketAddr {
    serve(Router::new().route("/me", get(me)).layer(auth.layer::<User>())).await
}

async fn call(addr: SocketAddr, token: &str) -> Answer {
    answer(client().get(format!("http://{addr}/me")).bearer_auth(token)).await
}

fn calls(endpoint: &Endpoint) -> usize {
    endpoint.calls.load(Ordering::SeqCst)
}

#[tokio::test]
async fn an_active_token_passes_with_its_claims_scopes_and_mfa_and_is_asked_about_once() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let addr = service(auth(introspector(&url)).build().unwrap()).await;
    let first = call(addr, "opaque-alice").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        first.body,
        json!({ "sub": "alice", "client_id": "web-app", "read": true, "admin": false, "mfa": true })
    );
    for _ in 0..5 {
        assert_eq!(call(addr, "opaque-alice").await.status, 200);
    }
    assert_eq!(calls(&endpoint), 1, "later requests are answered from the cache");
    assert_eq!(call(addr, "opaque-bob").await.body["sub"], "bob");
    assert_eq!(calls(&endpoint), 2);
}

#[tokio::test]
async fn client_secret_post_authenticates_in_the_body() {
    let (url, endpoint) = start_endpoint(Expect::Post).await;
    let builder = Introspector::builder(&url).client_secret_post(CLIENT_ID, CLIENT_SECRET);
    let addr = service(auth(builder).build().unwrap()).await;
    assert_eq!(call(addr, "opaque-alice").await.status, 200);
    // The same endpoint refuses Basic: no answer is a 503, never a pass.
    let basic = service(auth(introspector(&url)).build().unwrap()).await;
    let refused = call(basic, "opaque-alice").await;
    assert_eq!((refused.status, refused.code()), (503, "AUTH_UNAVAILABLE"));
    assert_eq!(calls(&endpoint), 2);
}

#[tokio::test]
async fn private_key_jwt_signs_a_fresh_assertion_with_the_crates_signing_key() {
    let key = TestKey::generate(Algorithm::ES256);
    let (url, endpoint) = start_endpoint(Expect::Assertion(Arc::new(key.verification_key()))).await;
    let signing = SigningKey::from_der(Algorithm::ES256, &key.private_pkcs8().unwrap()).unwrap();
    let builder = Introspector::builder(&url).private_key_jwt(CLIENT_ID, signing);
    let addr = service(auth(builder).build().unwrap()).await;
    assert_eq!(call(addr, "opaque-alice").await.status, 200);
    assert_eq!(call(addr, "opaque-bob").await.status, 200, "a new assertion for each call");
    // Signed by another key: the endpoint refuses the client, the layer answers 503.
    let other = TestKey::generate(Algorithm::ES256);
    let signing = SigningKey::from_der(Algorithm::ES256, &other.private_pkcs8().unwrap()).unwrap();
    let addr =
        service(auth(Introspector::builder(&url).private_key_jwt(CLIENT_ID, signing)).build().unwrap()).await;
    assert_eq!(call(addr, "opaque-alice").await.status, 503);
    assert_eq!(calls(&endpoint), 3);
}

#[tokio::test]
async fn an_inactive_token_is_refused_and_remembered_briefly() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let addr = service(auth(introspector(&url)).build().unwrap()).await;
    for _ in 0..3 {
        let refused = call(addr, "dead").await;
        assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
        assert!(refused.challenge.unwrap().contains(r#"error="invalid_token""#));
    }
    assert_eq!(calls(&endpoint), 1, "the negative answer is cached");

    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let uncached =
        service(auth(introspector(&url).negative_cache_ttl(Duration::ZERO)).build().unwrap()).await;
    call(uncached, "dead").await;
    call(uncached, "dead").await;
    assert_eq!(calls(&endpoint), 2, "without a negative cache every request asks");
}

#[tokio::test]
async fn a_cached_answer_is_not_served_past_exp() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let auth = JwtAuth::builder()
        .introspection(introspector(&url).build().unwrap())
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let addr = service(auth).await;
    let token = format!("expiring-{}", now() + 2);
    assert_eq!(call(addr, &token).await.status, 200);
    assert_eq!(call(addr, &token).await.status, 200);
    assert_eq!(calls(&endpoint), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Wait until the clock's second has turned past exp (the coarse clock is whole seconds).
    while now() < token["expiring-".len()..].parse::<u64>().unwrap() + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = call(addr, &token).await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    assert_eq!(calls(&endpoint), 2, "the entry died at exp: the endpoint was asked again");
}

#[tokio::test]
async fn the_cache_ttl_bounds_an_entry() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let addr = service(auth(introspector(&url).cache_ttl(Duration::ZERO)).build().unwrap()).await;
    call(addr, "opaque-alice").await;
    call(addr, "opaque-alice").await;
    assert_eq!(calls(&endpoint), 2, "a zero TTL caches nothing");
}

#[tokio::test]
async fn an_endpoint_down_or_hung_fails_closed_within_the_timeout() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("http://{}/introspect", closed.local_addr().unwrap());
    drop(closed);
    let addr = service(auth(introspector(&down)).build().unwrap()).await;
    let refused = call(addr, "opaque-alice").await;
    assert_eq!((refused.status, refused.code()), (503, "AUTH_UNAVAILABLE"));

    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let addr = service(auth(introspector(&url)).build().unwrap()).await;
    // A hang detector, not a timing assertion: the 500 ms timeout must end the request.
    let refused = tokio::time::timeout(Duration::from_secs(10), call(addr, "hang")).await.expect("not hung");
    assert_eq!((refused.status, refused.code()), (503, "AUTH_UNAVAILABLE"));
    assert_eq!(calls(&endpoint), 1);
    // A cached answer keeps working whatever the endpoint does.
    assert_eq!(call(addr, "opaque-alice").await.status, 200);
}

#[tokio::test]
async fn malformed_answers_are_refused_and_not_cached() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let addr = service(auth(introspector(&url).max_response_size(8 * 1024)).build().unwrap()).await;
    for token in ["string-active", "no-active", "not-json", "huge"] {
        let refused = call(addr, token).await;
        assert_eq!((refused.status, refused.code()), (503, "AUTH_UNAVAILABLE"), "{token}");
    }
    assert_eq!(calls(&endpoint), 4);
    call(addr, "string-active").await;
    assert_eq!(calls(&endpoint), 5, "no answer is not an answer to remember");
    // Claims an active answer gets wrong are the token's fault, as in a JWT.
    let refused = call(addr, "string-exp").await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn concurrent_requests_with_one_token_make_one_call() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let addr = service(auth(introspector(&url)).build().unwrap()).await;
    // One client built beforehand (building one loads the root certificates: slow enough to
    // serialise the requests otherwise).
    let client = client();
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let request = client.get(format!("http://{addr}/me")).bearer_auth("slow-1");
            tokio::spawn(async move { answer(request).await.status })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(calls(&endpoint), 1);
}

#[tokio::test]
async fn the_in_flight_cap_refuses_a_flood_of_new_tokens() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let addr = service(auth(introspector(&url).max_in_flight(2)).build().unwrap()).await;
    let client = client();
    let requests: Vec<_> = (0..6)
        .map(|i| {
            let request = client.get(format!("http://{addr}/me")).bearer_auth(format!("slow-{i}"));
            tokio::spawn(async move { answer(request).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(calls(&endpoint) <= 4, "{}", calls(&endpoint));
}

#[tokio::test]
async fn the_answer_meets_the_layers_rules() {
    let (url, _endpoint) = start_endpoint(Expect::Basic).await;
    let addr = service(auth(introspector(&url)).build().unwrap()).await;
    let elsewhere = call(addr, "elsewhere").await;
    assert_eq!((elsewhere.status, elsewhere.code()), (401, "INVALID_TOKEN"), "aud is checked");
    // A cnf that no binding policy checks fails closed, as in a JWT.
    let bound = call(addr, "bound").await;
    assert_eq!((bound.status, bound.code()), (401, "BINDING_MISMATCH"));

    let other_issuer = JwtAuth::builder()
        .introspection(introspector(&url).build().unwrap())
        .issuer("https://other.example.com")
        .audience("orders")
        .build()
        .unwrap();
    let refused = call(service(other_issuer).await, "opaque-alice").await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"), "iss is checked");
}

#[tokio::test]
async fn a_local_revocation_applies_at_once_to_a_cached_answer() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let store = Arc::new(MemoryRevocationStore::new());
    let addr = service(auth(introspector(&url)).revocation(Arc::clone(&store)).build().unwrap()).await;
    assert_eq!(call(addr, "opaque-carol").await.status, 200);
    store.revoke_token(Some(ISSUER), "jti-opaque-carol", now() + 600).await.unwrap();
    let refused = call(addr, "opaque-carol").await;
    assert_eq!((refused.status, refused.code()), (401, "TOKEN_REVOKED"));
    assert_eq!(calls(&endpoint), 1);
}

#[tokio::test]
async fn a_jws_is_still_verified_locally_unless_all_tokens_are_introspected() {
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let key = TestKey::hmac(Algorithm::HS256, b"a test secret of at least 32 bytes!!");
    let jwt = key.sign(&json!({ "sub": "local", "iss": ISSUER, "aud": "orders", "exp": now() + 600 }));
    let forged = TestKey::hmac(Algorithm::HS256, b"another secret of at least 32 bytes")
        .sign(&json!({ "sub": "local", "iss": ISSUER, "aud": "orders", "exp": now() + 600 }));
    let both = auth(introspector(&url)).key(key.verification_key()).build().unwrap();
    let addr = service(both).await;
    assert_eq!(call(addr, &jwt).await.body["sub"], "local");
    assert_eq!(call(addr, &forged).await.status, 401, "a forged JWS is not rescued by introspection");
    assert_eq!(call(addr, "opaque-alice").await.body["sub"], "alice");
    assert_eq!(calls(&endpoint), 1, "only the opaque token was introspected");

    // Without keys, a JWS is refused unless every token is introspected.
    let addr = service(auth(introspector(&url)).build().unwrap()).await;
    assert_eq!(call(addr, &jwt).await.status, 401);
    let addr = service(auth(introspector(&url).all_tokens(true)).build().unwrap()).await;
    assert_eq!(call(addr, &jwt).await.body["sub"], "jwt-user");
    assert_eq!(calls(&endpoint), 2);
}

/// Two instances of a service share revocations through Redis: a token revoked on one is refused
/// on the other at once, although both hold its introspection answer in their caches.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_revocation_through_redis_drops_the_cached_answer_on_every_instance() {
    use tower_jwt_guard::revocation::RedisRevocationStore;
    let Some(redis) = redis_server::Redis::for_test("introspection + redis") else { return };
    let prefix = redis_server::unique_prefix("introspection");
    let store = || {
        RedisRevocationStore::builder(&redis.url())
            .unwrap()
            .key_prefix(&prefix)
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap()
    };
    let (url, endpoint) = start_endpoint(Expect::Basic).await;
    let (first_store, second_store) = (Arc::new(store()), Arc::new(store()));
    // Each store's local cache is kept honest by its invalidation subscription: wait for both.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(first_store.is_subscribed() && second_store.is_subscribed()) {
        assert!(std::time::Instant::now() < deadline, "the invalidation subscriptions");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = service(auth(introspector(&url)).revocation(Arc::clone(&first_store)).build().unwrap()).await;
    let second =
        service(auth(introspector(&url)).revocation(Arc::clone(&second_store)).build().unwrap()).await;
    assert_eq!(call(first, "opaque-erin").await.status, 200);
    assert_eq!(call(second, "opaque-erin").await.status, 200);
    assert_eq!(calls(&endpoint), 2, "one call per instance, then their caches answer");
    first_store.revoke_token(Some(ISSUER), "jti-opaque-erin", now() + 600).await.unwrap();
    let refused = call(first, "opaque-erin").await;
    assert_eq!((refused.status, refused.code()), (401, "TOKEN_REVOKED"));
    // The other instance hears of it through Redis (pub/sub: within moments, not a TTL).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = call(second, "opaque-erin").await;
        if answer.status == 401 {
            assert_eq!(answer.code(), "TOKEN_REVOKED");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the other instance still accepts the token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calls(&endpoint), 2);
}

/// An authorization server that publishes its RFC 8414 metadata, naming `claimed` as its issuer.
async fn discoverable(claimed: Option<&str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/tenant", listener.local_addr().unwrap());
    let metadata = json!({
        "issuer": claimed.unwrap_or(&issuer),
        "introspection_endpoint": format!("{issuer}/introspect"),
    });
    let answer_issuer = issuer.clone();
    let app = Router::new()
        .route("/.well-known/oauth-authorization-server/tenant", get(move || async move { Json(metadata) }))
        .route(
            "/tenant/introspect",
            post(move |Form(form): Form<HashMap<String, String>>| async move {
                let iss =
                    if form["token"] == "foreign" { "https://elsewhere.example.com" } else { &answer_issuer };
                Json(json!({ "active": true, "sub": "dana", "iss": iss, "exp": now() + 600 }))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

#[tokio::test]
async fn the_endpoint_is_discovered_from_the_issuers_metadata_which_makes_iss_required() {
    let issuer = discoverable(None).await;
    let introspector =
        Introspector::discover(&issuer).client_secret_basic(CLIENT_ID, CLIENT_SECRET).build().unwrap();
    assert_eq!(introspector.issuer(), Some(issuer.as_str()));
    let addr = service(JwtAuth::builder().introspection(introspector).build().unwrap()).await;
    assert_eq!(call(addr, "opaque").await.body["sub"], "dana");
    let foreign = call(addr, "foreign").await;
    assert_eq!((foreign.status, foreign.code()), (401, "INVALID_TOKEN"), "the discovered issuer is required");

    // Metadata naming another issuer is not believed (RFC 8414 §3.3): no endpoint, 503.
    let issuer = discoverable(Some("https://impostor.example.com")).await;
    let introspector =
        Introspector::discover(&issuer).client_secret_basic(CLIENT_ID, CLIENT_SECRET).build().unwrap();
    let addr = service(JwtAuth::builder().introspection(introspector).build().unwrap()).await;
    let refused = call(addr, "opaque").await;
    assert_eq!((refused.status, refused.code()), (503, "AUTH_UNAVAILABLE"));
}

/// A real authorization server: panva's oidc-provider under node (`tests/interop/provider.mjs`).
struct AuthorizationServer {
    issuer: String,
    node: NodeScript,
}

impl AuthorizationServer {
    async fn start(interop: &std::path::Path) -> AuthorizationServer {
        let mut node = NodeScript::start(interop, "provider.mjs", &[]);
        let issuer = node.next().await["issuer"].as_str().unwrap().to_owned();
        AuthorizationServer { issuer, node }
    }

    /// A new opaque access token of client `app` for `alice`.
    async fn mint(&mut self) -> String {
        self.node.send("mint").await;
        self.node.next().await["token"].as_str().unwrap().to_owned()
    }

    /// Revokes `token` at the provider (RFC 7009), as its client.
    async fn revoke(&self, token: &str) {
        let response = client()
            .post(format!("{}/token/revocation", self.issuer))
            .basic_auth("app", Some("app-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&token_type_hint=access_token"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// Whether node and oidc-provider are installed (`npm ci --prefix tests/interop`).
fn node_ready(interop: &std::path::Path) -> Result<(), String> {
    match std::process::Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        _ => return Err("node is not installed".into()),
    }
    if !interop.join("node_modules/oidc-provider/package.json").exists() {
        return Err("oidc-provider is not installed: run `npm ci --prefix tests/interop`".into());
    }
    Ok(())
}

#[tokio::test]
async fn oidc_provider_tokens_pass_until_revoked_there() {
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    if let Err(why) = node_ready(&interop) {
        // In CI the interop test must run; elsewhere it may be skipped, and says so.
        assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
        println!("skipped: {why}");
        return;
    }
    let mut provider = AuthorizationServer::start(&interop).await;
    // The endpoint as the provider's metadata names it (RFC 8414 `introspection_endpoint`).
    let metadata: Value = client()
        .get(format!("{}/.well-known/openid-configuration", provider.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = metadata["introspection_endpoint"].as_str().expect("introspection is enabled").to_owned();

    // The quickstart, configured from the environment as a user would.
    let example = example_process::Example::start(
        "quickstart",
        &[
            ("JWT_INTROSPECTION_URL", &url),
            ("JWT_INTROSPECTION_CLIENT_ID", "orders-api"),
            ("JWT_INTROSPECTION_CLIENT_SECRET", "orders-api-secret"),
            ("JWT_ISSUER", &provider.issuer),
        ],
    );
    let me = format!("{}/me", example.url());
    let token = provider.mint().await;
    let accepted = answer(client().get(&me).bearer_auth(&token)).await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    assert_eq!(accepted.body["sub"], "alice");
    assert_eq!(accepted.body["client_id"], "app");
    let revoked = provider.mint().await;
    provider.revoke(&revoked).await;
    let refused = answer(client().get(&me).bearer_auth(&revoked)).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
    let wrong_secret = example_process::Example::start(
        "quickstart",
        &[
            ("JWT_INTROSPECTION_URL", &url),
            ("JWT_INTROSPECTION_CLIENT_ID", "orders-api"),
            ("JWT_INTROSPECTION_CLIENT_SECRET", "not-the-secret"),
        ],
    );
    let unavailable = answer(client().get(format!("{}/me", wrong_secret.url())).bearer_auth(&token)).await;
    assert_eq!((unavailable.status, unavailable.code()), (503, "AUTH_UNAVAILABLE"));

    // Revoked at the provider after it was cached: refused once the cache TTL has passed.
    // (The endpoint found by discovery this time: oidc-provider publishes OpenID metadata only.)
    let introspector = Introspector::discover(&provider.issuer)
        .client_secret_basic("orders-api", "orders-api-secret")
        .cache_ttl(Duration::from_secs(1));
    let auth = JwtAuth::builder().introspection(introspector.build().unwrap());
    let addr = service(auth.build().unwrap()).await;
    let token = provider.mint().await;
    assert_eq!(call(addr, &token).await.status, 200);
    provider.revoke(&token).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = call(addr, &token).await;
        if answer.status == 401 {
            assert_eq!(answer.code(), "INVALID_TOKEN");
            break;
        }
        assert_eq!(answer.status, 200);
        assert!(std::time::Instant::now() < deadline, "still accepted long after the TTL");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `.introspection(..)` beside `.trust(Issuer::new(B))`: the builder's own issuer (the
/// endpoint's) stays, and the endpoint speaks for it only: an answer naming B is refused.
#[tokio::test]
async fn an_endpoint_speaks_for_its_own_issuer_only() {
    let (url, _endpoint) = start_endpoint(Expect::Basic).await;
    let other = tower_jwt_guard::Issuer::new(OTHER_ISSUER).hmac_secret([8u8; 32]).audience("orders");
    let addr = service(auth(introspector(&url)).trust(other).build().unwrap()).await;
    let own = call(addr, "opaque-alice").await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    let from_b = call(addr, "from-b").await;
    assert_eq!((from_b.status, from_b.code()), (401, "INVALID_TOKEN"), "{:?}", from_b.body);
    // The endpoint's issuer must have a name when another issuer is trusted.
    let unnamed = JwtAuth::builder()
        .introspection(introspector(&url).build().unwrap())
        .trust(tower_jwt_guard::Issuer::new(OTHER_ISSUER).hmac_secret([8u8; 32]))
        .build();
    assert!(unnamed.err().is_some_and(|err| err.to_string().contains("introspection")));
}
