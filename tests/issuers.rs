//! Several trusted issuers, each with its own keys and rules (issue 14), through the whole layer
//! over HTTP on loopback: two real JWKS / OIDC discovery servers with keys of their own, and one
//! issuer with a static key.
#![cfg(feature = "jwks")]

#[path = "harness/mod.rs"]
mod harness;
#[path = "common/jwks_server.rs"]
mod jwks_server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use harness::{answer, b64, claims, client, now, serve, Answer, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::keys::{JwksKeys, TenantKeys};
use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationStore};
use tower_jwt_guard::{Algorithm, AuthContext, ConfigError, Issuer, JwtAuth};

use jwks_server::{JwksServer, TenantServer};

const STATIC_ISSUER: &str = "https://static.example.com";
const SECRET: &[u8; 32] = b"the static issuer's HS256 secret";

/// An ES256 key as a JWK with this `kid`.
fn jwk(key: &TestKey, kid: &str) -> Value {
    let point = &key.public_raw;
    json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": b64(&point[1..33]), "y": b64(&point[33..65]),
    })
}

/// A token of `iss` (any JSON, `Value::Null`: no `iss`) for `sub`, signed by `key` under `kid`.
fn token(key: &TestKey, kid: Option<&str>, iss: Value, sub: &str, jti: &str) -> String {
    let mut body = claims(sub);
    if !iss.is_null() {
        body["iss"] = iss;
    }
    body["jti"] = json!(jti);
    let header = match kid {
        Some(kid) => json!({ "kid": kid }),
        None => json!({}),
    };
    key.sign_with_header(header, &body)
}

/// Two JWKS issuers (A by its JWKS URL, B by OIDC discovery), each with its own `shared` kid,
/// and the static-key issuer.
struct World {
    a: JwksServer,
    b: JwksServer,
    a_key: TestKey,
    a_shared: TestKey,
    b_key: TestKey,
    b_shared: TestKey,
    hmac: TestKey,
}

impl World {
    async fn start() -> World {
        let world = World {
            a: JwksServer::start().await,
            b: JwksServer::start().await,
            a_key: TestKey::generate(Algorithm::ES256),
            a_shared: TestKey::generate(Algorithm::ES256),
            b_key: TestKey::generate(Algorithm::ES256),
            b_shared: TestKey::generate(Algorithm::ES256),
            hmac: TestKey::hmac(Algorithm::HS256, SECRET),
        };
        world.a.serve(vec![jwk(&world.a_key, "a1"), jwk(&world.a_shared, "shared")]);
        world.b.serve(vec![jwk(&world.b_key, "b1"), jwk(&world.b_shared, "shared")]);
        world
    }

    fn issuer_a(&self) -> Issuer {
        let keys = JwksKeys::builder(self.a.jwks_url())
            .algorithms([Algorithm::ES256])
            .timeout(Duration::from_millis(300))
            .retry_interval(Duration::from_millis(50), Duration::from_millis(200))
            // An unknown kid may refetch at once (the first fetch counts as this interval's).
            .unknown_kid_interval(Duration::from_millis(1))
            .build()
            .unwrap();
        Issuer::new(self.a.issuer()).key_source(keys).accept_any_audience()
    }

    fn issuer_b(&self) -> Issuer {
        Issuer::discover(self.b.issuer()).unwrap().algorithms([Algorithm::ES256])
    }

    fn issuer_c() -> Issuer {
        Issuer::new(STATIC_ISSUER).hmac_secret(SECRET)
    }

    /// `iss` of A and B.
    fn a_iss(&self) -> Value {
        json!(self.a.issuer())
    }

    fn b_iss(&self) -> Value {
        json!(self.b.issuer())
    }

    fn requests(&self) -> (usize, usize) {
        (
            self.a.jwks_requests() + self.a.discovery_requests(),
            self.b.jwks_requests() + self.b.discovery_requests(),
        )
    }
}

/// `GET /me` answers "issuer|subject"; `POST /logout` revokes the token in `store`.
async fn app(auth: JwtAuth, store: MemoryRevocationStore) -> SocketAddr {
    let router = Router::new()
        .route(
            "/me",
            get(|ctx: AuthContext| async move {
                format!("{}|{}", ctx.issuer().unwrap_or("-"), ctx.subject().unwrap_or("-"))
            }),
        )
        .route(
            "/logout",
            post(
                |axum::extract::State(store): axum::extract::State<MemoryRevocationStore>,
                 ctx: AuthContext| async move {
                    match store
                        .revoke_token(ctx.issuer(), ctx.jti().unwrap(), ctx.facts().expires_at.unwrap())
                        .await
                    {
                        Ok(()) => StatusCode::NO_CONTENT,
                        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
                    }
                },
            ),
        )
        .route_layer(auth.layer::<Value>())
        .with_state(store);
    serve(router).await
}

async fn me(addr: SocketAddr, token: &str) -> Answer {
    answer(client().get(format!("http://{addr}/me")).bearer_auth(token)).await
}

fn refused(answer: &Answer, status: u16, code: &str) -> bool {
    answer.status == status && answer.code() == code
}

#[tokio::test]
async fn a_token_is_verified_only_with_the_keys_of_the_issuer_it_names() {
    let world = World::start().await;
    let auth = JwtAuth::builder()
        .trust(world.issuer_a())
        .trust(world.issuer_b())
        .trust(World::issuer_c())
        .build()
        .unwrap();
    let addr = app(auth, MemoryRevocationStore::new()).await;

    // Each issuer's own tokens.
    let a = me(addr, &token(&world.a_key, Some("a1"), world.a_iss(), "alice", "1")).await;
    assert_eq!((a.status, a.body.as_str()), (200, Some(format!("{}|alice", world.a.issuer()).as_str())));
    let b = me(addr, &token(&world.b_key, Some("b1"), world.b_iss(), "bob", "1")).await;
    assert_eq!((b.status, b.body.as_str()), (200, Some(format!("{}|bob", world.b.issuer()).as_str())));
    let c = me(addr, &token(&world.hmac, None, json!(STATIC_ISSUER), "carol", "1")).await;
    assert_eq!((c.status, c.body.as_str()), (200, Some(format!("{STATIC_ISSUER}|carol").as_str())));

    // A token claiming A, signed with B's key: A's keys only are asked (B's server hears nothing).
    let before = world.requests().1;
    let forged = token(&world.b_key, Some("b1"), world.a_iss(), "mallory", "2");
    assert!(refused(&me(addr, &forged).await, 401, "INVALID_TOKEN"));
    assert_eq!(world.requests().1, before, "B's keys were fetched for a token claiming A");

    // The same kid in both sets does not cross over.
    let cross = token(&world.b_shared, Some("shared"), world.a_iss(), "mallory", "3");
    assert!(refused(&me(addr, &cross).await, 401, "INVALID_TOKEN"));
    let cross = token(&world.a_shared, Some("shared"), world.b_iss(), "mallory", "4");
    assert!(refused(&me(addr, &cross).await, 401, "INVALID_TOKEN"));
    assert_eq!(
        me(addr, &token(&world.a_shared, Some("shared"), world.a_iss(), "alice", "5")).await.status,
        200
    );
    assert_eq!(
        me(addr, &token(&world.b_shared, Some("shared"), world.b_iss(), "bob", "6")).await.status,
        200
    );

    // Each issuer's algorithms: the static issuer's HS256 secret does not sign for A, nor A's
    // ES256 key for the static issuer.
    let hs_for_a = token(&world.hmac, None, world.a_iss(), "mallory", "7");
    assert!(refused(&me(addr, &hs_for_a).await, 401, "INVALID_TOKEN"));
    let es_for_c = token(&world.a_key, Some("a1"), json!(STATIC_ISSUER), "mallory", "8");
    assert!(refused(&me(addr, &es_for_c).await, 401, "INVALID_TOKEN"));

    // Each issuer's rules: A accepts any audience, B (no audience configured) refuses one.
    let mut body = claims("alice");
    body["iss"] = world.a_iss();
    body["aud"] = json!("elsewhere");
    assert_eq!(me(addr, &world.a_key.sign_with_header(json!({ "kid": "a1" }), &body)).await.status, 200);
    body["iss"] = world.b_iss();
    let b_aud = world.b_key.sign_with_header(json!({ "kid": "b1" }), &body);
    assert!(refused(&me(addr, &b_aud).await, 401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn a_token_naming_no_trusted_issuer_is_refused_without_any_fetch() {
    let world = World::start().await;
    let auth = JwtAuth::builder().trust(world.issuer_a()).trust(world.issuer_b()).build().unwrap();
    let addr = app(auth, MemoryRevocationStore::new()).await;
    // Both sources have their keys (the first fetch is over).
    assert_eq!(me(addr, &token(&world.a_key, Some("a1"), world.a_iss(), "alice", "1")).await.status, 200);
    assert_eq!(me(addr, &token(&world.b_key, Some("b1"), world.b_iss(), "bob", "1")).await.status, 200);
    let before = world.requests();

    // Unknown kids everywhere: a lookup would make a JWKS source fetch.
    let unknown = [
        json!("https://evil.example.com"),
        json!(format!("{}/", world.a.issuer())),
        json!(world.a.issuer().to_uppercase()),
        Value::Null,
        json!(42),
        json!([world.a.issuer()]),
        json!({ "iss": world.a.issuer() }),
    ];
    for iss in unknown {
        let forged = token(&world.a_key, Some("never-seen"), iss.clone(), "mallory", "2");
        assert!(refused(&me(addr, &forged).await, 401, "INVALID_TOKEN"), "iss {iss}");
    }
    let null_iss = world.a_key.sign_with_header(json!({ "kid": "never-seen" }), &{
        let mut body = claims("mallory");
        body["iss"] = Value::Null;
        body
    });
    assert!(refused(&me(addr, &null_iss).await, 401, "INVALID_TOKEN"));
    assert_eq!(world.requests(), before, "a key source was asked for a token of no trusted issuer");

    // The counting works: the same unknown kid for A's own issuer makes A (only) fetch.
    let unknown_kid = token(&world.a_key, Some("never-seen"), world.a_iss(), "alice", "3");
    assert!(refused(&me(addr, &unknown_kid).await, 401, "INVALID_TOKEN"));
    assert_eq!(world.requests(), (before.0 + 1, before.1));
}

#[tokio::test]
async fn an_outage_of_one_issuer_leaves_the_others_working() {
    for outage in ["hang", "fail"] {
        let world = World::start().await;
        match outage {
            "hang" => world.a.hang(),
            _ => world.a.fail(500),
        }
        let auth = JwtAuth::builder()
            .trust(world.issuer_a())
            .trust(world.issuer_b())
            .trust(World::issuer_c())
            .build()
            .unwrap();
        let addr = app(auth, MemoryRevocationStore::new()).await;
        for _ in 0..3 {
            let a = me(addr, &token(&world.a_key, Some("a1"), world.a_iss(), "alice", "1")).await;
            assert!(refused(&a, 503, "AUTH_UNAVAILABLE"), "{outage}: {} {}", a.status, a.body);
            let b = me(addr, &token(&world.b_key, Some("b1"), world.b_iss(), "bob", "1")).await;
            assert_eq!(b.status, 200, "{outage}: B's token while A is down");
            let c = me(addr, &token(&world.hmac, None, json!(STATIC_ISSUER), "carol", "1")).await;
            assert_eq!(c.status, 200, "{outage}: the static issuer's token while A is down");
        }
    }
}

#[tokio::test]
async fn revoking_a_jti_of_one_issuer_leaves_the_same_jti_of_another() {
    let a_key = TestKey::hmac(Algorithm::HS256, b"issuer A's secret, 32 bytes long");
    let b_key = TestKey::hmac(Algorithm::HS256, b"issuer B's secret, 32 bytes long");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let store = MemoryRevocationStore::new();
    let auth = JwtAuth::builder()
        .trust(Issuer::new("https://a.example.com").hmac_secret(b"issuer A's secret, 32 bytes long"))
        .trust(Issuer::new("https://b.example.com").hmac_secret(b"issuer B's secret, 32 bytes long"))
        .revocation(store.clone())
        .on_audit(move |event| {
            sink.lock().unwrap().push((event.issuer.map(str::to_owned), event.code));
        })
        .build()
        .unwrap();
    let addr = app(auth, store.clone()).await;
    let of_a = token(&a_key, None, json!("https://a.example.com"), "1", "1");
    let of_b = token(&b_key, None, json!("https://b.example.com"), "1", "1");
    assert_eq!(me(addr, &of_a).await.status, 200);
    assert_eq!(me(addr, &of_b).await.status, 200);

    let logout = client().post(format!("http://{addr}/logout")).bearer_auth(&of_a).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    assert!(refused(&me(addr, &of_a).await, 401, "TOKEN_REVOKED"));
    assert_eq!(me(addr, &of_b).await.status, 200, "B's jti 1 was revoked with A's");

    // Log out everywhere, per issuer too: B's subject "1", not A's.
    store.revoke_subject(Some("https://b.example.com"), "1", now()).await.unwrap();
    assert!(refused(&me(addr, &of_b).await, 401, "TOKEN_REVOKED"));
    let another_of_a = token(&a_key, None, json!("https://a.example.com"), "1", "2");
    assert_eq!(me(addr, &another_of_a).await.status, 200);

    // The audit events name the issuer, accepted or refused after verification.
    let events = events.lock().unwrap();
    let a = Some("https://a.example.com".to_owned());
    let b = Some("https://b.example.com".to_owned());
    assert!(events.contains(&(a.clone(), "OK")) && events.contains(&(b.clone(), "OK")));
    assert!(events.contains(&(a, "TOKEN_REVOKED")) && events.contains(&(b, "TOKEN_REVOKED")));
}

/// `every_issuer`: the service's own rules reach the builder's issuer and every trusted one,
/// whether trusted before or after the call.
#[tokio::test]
async fn rules_for_every_issuer_reach_each_of_them() {
    use tower_jwt_guard::RequiredClaim;
    let a_key = TestKey::hmac(Algorithm::HS256, b"issuer A's secret, 32 bytes long");
    let b_key = TestKey::hmac(Algorithm::HS256, b"issuer B's secret, 32 bytes long");
    let own_key = TestKey::hmac(Algorithm::HS256, SECRET);
    let auth = JwtAuth::builder()
        .hmac_secret(SECRET)
        .issuer("https://own.example.com")
        .trust(Issuer::new("https://a.example.com").hmac_secret(b"issuer A's secret, 32 bytes long"))
        .every_issuer(|issuer| issuer.require([RequiredClaim::Jti]).max_token_age(Duration::from_secs(600)))
        .trust(Issuer::new("https://b.example.com").hmac_secret(b"issuer B's secret, 32 bytes long"))
        .build()
        .unwrap();
    let addr = app(auth, MemoryRevocationStore::new()).await;
    for (key, iss) in [
        (&own_key, "https://own.example.com"),
        (&a_key, "https://a.example.com"),
        (&b_key, "https://b.example.com"),
    ] {
        assert_eq!(me(addr, &token(key, None, json!(iss), "alice", "1")).await.status, 200, "{iss}");
        let mut without_jti = claims("alice");
        without_jti["iss"] = json!(iss);
        let answer = me(addr, &key.sign_with_header(json!({}), &without_jti)).await;
        assert!(refused(&answer, 401, "INVALID_TOKEN"), "{iss}: {} {}", answer.status, answer.body);
        let mut old = claims("alice");
        old["iss"] = json!(iss);
        old["jti"] = json!("2");
        old["iat"] = json!(now() - 3600);
        let answer = me(addr, &key.sign_with_header(json!({}), &old)).await;
        assert!(refused(&answer, 401, "TOKEN_TOO_OLD"), "{iss}: {} {}", answer.status, answer.body);
    }
}

// ---------------------------------------------------------------- configuration

fn invalid(result: Result<JwtAuth, ConfigError>) -> String {
    match result {
        Err(ConfigError::Invalid(why)) => why.to_owned(),
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn builder_keys_next_to_trusted_issuers_must_name_their_issuer() {
    let why = invalid(JwtAuth::builder().hmac_secret([1u8; 32]).trust(World::issuer_c()).build());
    assert!(why.contains("issuer(..)"), "{why}");
    // Named: the shorthand is one more issuer, verified with its own keys only.
    let auth = JwtAuth::builder()
        .hmac_secret([1u8; 32])
        .issuer("https://own.example.com")
        .trust(World::issuer_c())
        .build()
        .unwrap();
    let own = TestKey::hmac(Algorithm::HS256, &[1u8; 32]);
    let static_key = TestKey::hmac(Algorithm::HS256, SECRET);
    let addr = app(auth, MemoryRevocationStore::new()).await;
    let own_iss = json!("https://own.example.com");
    let accepted = me(addr, &token(&own, None, own_iss.clone(), "a", "1")).await;
    assert_eq!((accepted.status, accepted.body.as_str()), (200, Some("https://own.example.com|a")));
    assert!(refused(&me(addr, &token(&static_key, None, own_iss, "a", "1")).await, 401, "INVALID_TOKEN"));
    assert!(refused(
        &me(addr, &token(&own, None, json!(STATIC_ISSUER), "a", "1")).await,
        401,
        "INVALID_TOKEN"
    ));
    assert_eq!(me(addr, &token(&static_key, None, json!(STATIC_ISSUER), "a", "1")).await.status, 200);
}

#[test]
fn builder_rules_without_builder_keys_are_refused_next_to_trusted_issuers() {
    for builder in [
        JwtAuth::builder().audience("api"),
        JwtAuth::builder().leeway(Duration::from_secs(5)),
        JwtAuth::builder().algorithms([Algorithm::RS256]),
        JwtAuth::builder().issuer("https://a.example.com"),
        JwtAuth::builder().token_type("at+jwt"),
    ] {
        let why = invalid(builder.trust(World::issuer_c()).build());
        assert!(why.contains("each Issuer"), "{why}");
    }
    // Settings that are not claim rules stay on the builder.
    assert!(JwtAuth::builder().cache_capacity(0).realm("r").trust(World::issuer_c()).build().is_ok());
}

#[test]
fn two_issuers_of_one_name_are_refused() {
    let twice = JwtAuth::builder().trust(World::issuer_c()).trust(World::issuer_c()).build();
    assert!(invalid(twice).contains("same name"));
    let with_shorthand =
        JwtAuth::builder().hmac_secret([1u8; 32]).issuer(STATIC_ISSUER).trust(World::issuer_c()).build();
    assert!(invalid(with_shorthand).contains("same name"));
    // One issuer may carry a name twice; a nameless issuer is refused.
    assert!(JwtAuth::builder().hmac_secret([1u8; 32]).issuer("x").issuer("x").build().is_ok());
    assert!(
        invalid(JwtAuth::builder().trust(Issuer::new("").hmac_secret([1u8; 32])).build()).contains("name")
    );
}

#[tokio::test]
async fn a_discovered_source_serves_only_its_own_issuer() {
    let other = JwksKeys::discover("https://idp.example.com").algorithms([Algorithm::ES256]).build().unwrap();
    let misnamed =
        JwtAuth::builder().trust(Issuer::new("https://else.example.com").key_source(other)).build();
    assert!(invalid(misnamed).contains("another issuer"));
    // The shorthand keeps naming one discovered key set several ways (Entra ID v1 and v2).
    let shared =
        JwksKeys::discover("https://idp.example.com").algorithms([Algorithm::ES256]).build().unwrap();
    let aliases = JwtAuth::builder()
        .key_source(shared)
        .issuer("https://idp.example.com")
        .issuer("https://sts.example.com/tenant/")
        .trust(World::issuer_c())
        .build();
    assert!(aliases.is_ok(), "{aliases:?}");
}

// ---------------------------------------------------------------- tenants discovered on demand

#[tokio::test]
async fn tenants_are_discovered_on_demand_each_with_its_own_keys() {
    let server = TenantServer::start().await;
    let (contoso, fabrikam, refused_key) = (
        TestKey::generate(Algorithm::ES256),
        TestKey::generate(Algorithm::ES256),
        TestKey::generate(Algorithm::ES256),
    );
    // The same kid in every tenant's set.
    server.add_tenant("contoso", vec![jwk(&contoso, "k1")]);
    server.add_tenant("fabrikam", vec![jwk(&fabrikam, "k1")]);
    server.add_tenant("not-allowed", vec![jwk(&refused_key, "k1")]);
    let tenants = TenantKeys::builder(server.pattern()).allow(["contoso", "fabrikam"]).build().unwrap();
    let auth = JwtAuth::builder()
        .trust(Issuer::tenants(tenants.clone()).algorithms([Algorithm::ES256]))
        .trust(World::issuer_c())
        .build()
        .unwrap();
    let addr = app(auth, MemoryRevocationStore::new()).await;
    assert_eq!((tenants.tenants_held(), server.requests()), (0, 0), "nothing is fetched before a token");

    // Each allowed tenant's own token: its issuer is its whole iss.
    let of_contoso = token(&contoso, Some("k1"), json!(server.issuer("contoso")), "alice", "1");
    let accepted = me(addr, &of_contoso).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.body.as_str(), Some(format!("{}|alice", server.issuer("contoso")).as_str()));
    let of_fabrikam = token(&fabrikam, Some("k1"), json!(server.issuer("fabrikam")), "bob", "1");
    assert_eq!(me(addr, &of_fabrikam).await.status, 200);
    assert_eq!(tenants.tenants_held(), 2);
    // One discovery and one JWKS fetch per tenant; the next tokens are answered from memory.
    assert_eq!((server.discovery_requests(), server.jwks_requests()), (2, 2));
    assert_eq!(me(addr, &of_contoso).await.status, 200);
    let fetched = server.requests();

    // A tenant's key does not verify another tenant's token (same kid).
    let cross = token(&fabrikam, Some("k1"), json!(server.issuer("contoso")), "mallory", "2");
    assert!(refused(&me(addr, &cross).await, 401, "INVALID_TOKEN"));
    let cross = token(&contoso, Some("k1"), json!(server.issuer("fabrikam")), "mallory", "3");
    assert!(refused(&me(addr, &cross).await, 401, "INVALID_TOKEN"));
    // Nor does the static issuer's key, nor a tenant's key the static issuer's.
    let hs = token(&World::start().await.hmac, None, json!(server.issuer("contoso")), "mallory", "4");
    assert!(refused(&me(addr, &hs).await, 401, "INVALID_TOKEN"));
    let es = token(&contoso, Some("k1"), json!(STATIC_ISSUER), "mallory", "5");
    assert!(refused(&me(addr, &es).await, 401, "INVALID_TOKEN"));

    // A tenant the allow-list refuses (it exists at the provider), and iss values that are no plain
    // tenant segment: refused without any fetch.
    let addr_of = server.issuer("x").trim_end_matches("/x/v2.0").to_owned();
    for iss in [
        server.issuer("not-allowed"),
        server.issuer("../contoso"),
        server.issuer("contoso/../contoso"),
        server.issuer("con%74oso"),
        format!("{addr_of}//v2.0"),
        format!("{}/", server.issuer("contoso")),
        server.issuer("contoso").replace("v2.0", "v1.0"),
    ] {
        let forged = token(&refused_key, Some("k1"), json!(iss), "mallory", "6");
        assert!(refused(&me(addr, &forged).await, 401, "INVALID_TOKEN"), "iss {iss}");
    }
    assert_eq!(server.requests(), fetched, "a refused tenant was fetched");
    assert_eq!(tenants.tenants_held(), 2);
    // The static issuer still works beside the pattern.
    let c =
        me(addr, &token(&TestKey::hmac(Algorithm::HS256, SECRET), None, json!(STATIC_ISSUER), "carol", "7"))
            .await;
    assert_eq!(c.status, 200);
}

#[tokio::test]
async fn a_flood_of_invented_tenants_stays_within_the_fetch_and_memory_bounds() {
    const MAX_TENANTS: usize = 8;
    const NEW_TENANTS: usize = 16;
    const FLOOD: usize = 300;
    let server = TenantServer::start().await;
    let contoso = TestKey::generate(Algorithm::ES256);
    server.add_tenant("contoso", vec![jwk(&contoso, "k1")]);
    // A permissive predicate: every plain segment is a tenant worth asking about.
    let tenants = TenantKeys::builder(server.pattern())
        .allow_if(|_| true)
        .max_tenants(MAX_TENANTS)
        .new_tenants(NEW_TENANTS, Duration::from_secs(3600))
        .build()
        .unwrap();
    let auth = JwtAuth::builder()
        .trust(Issuer::tenants(tenants.clone()).algorithms([Algorithm::ES256]))
        .build()
        .unwrap();
    let addr = app(auth, MemoryRevocationStore::new()).await;
    let of_contoso = token(&contoso, Some("k1"), json!(server.issuer("contoso")), "alice", "1");
    assert_eq!(me(addr, &of_contoso).await.status, 200);

    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..FLOOD {
        let iss = server.issuer(&format!("invented-{i}"));
        let forged = me(addr, &token(&contoso, Some("k1"), json!(iss), "mallory", "2")).await;
        *statuses.entry((forged.status, forged.code().to_owned())).or_insert(0) += 1;
        assert!(tenants.tenants_held() <= MAX_TENANTS, "held {}", tenants.tenants_held());
    }
    let status = tenants.status();
    // Each admitted tenant cost one discovery (which failed: no JWKS fetch); the others none.
    assert_eq!(status.admitted as usize, NEW_TENANTS, "{status:?}");
    assert_eq!(server.discovery_requests(), 1 + (NEW_TENANTS - 1), "{status:?}");
    assert_eq!(server.jwks_requests(), 1);
    assert_eq!(status.rate_limited as usize, FLOOD - (NEW_TENANTS - 1), "{status:?}");
    assert!(status.held <= MAX_TENANTS && status.failed <= MAX_TENANTS, "{status:?}");
    // The tenants the provider does not know are refused as invalid; the rest wait (503).
    assert_eq!(statuses.get(&(401, "INVALID_TOKEN".to_owned())), Some(&(NEW_TENANTS - 1)), "{statuses:?}");
    assert_eq!(statuses.get(&(503, "AUTH_UNAVAILABLE".to_owned())), Some(&(FLOOD - (NEW_TENANTS - 1))));
    // A failed tenant asked again is refused from memory.
    let before = server.requests();
    let again =
        token(&contoso, Some("k1"), json!(server.issuer(&format!("invented-{}", FLOOD - 1))), "m", "3");
    let last_admitted = token(&contoso, Some("k1"), json!(server.issuer("invented-14")), "m", "3");
    assert!(refused(&me(addr, &again).await, 503, "AUTH_UNAVAILABLE"));
    assert!(refused(&me(addr, &last_admitted).await, 401, "INVALID_TOKEN"));
    assert_eq!(server.requests(), before);
    // The real tenant, used, is still held and answered from memory.
    assert_eq!(me(addr, &of_contoso).await.status, 200);
    assert_eq!(server.requests(), before);
    assert!(tenants.tenant_status("contoso").is_some_and(|keys| keys.usable));
}

/// The tenants of one pattern share one HTTP client: admitting tenants one after another reuses
/// one pooled connection to the provider (each tenant's own client opened one connection each,
/// and held its own TLS configuration and pool).
#[tokio::test]
async fn the_tenants_of_a_pattern_share_one_connection_pool() {
    const TENANTS: usize = 5;
    let server = TenantServer::start().await;
    let key = TestKey::generate(Algorithm::ES256);
    for i in 0..TENANTS {
        server.add_tenant(&format!("t{i}"), vec![jwk(&key, "k1")]);
    }
    let tenants = TenantKeys::builder(server.pattern()).allow_if(|_| true).build().unwrap();
    let auth = JwtAuth::builder()
        .trust(Issuer::tenants(tenants.clone()).algorithms([Algorithm::ES256]))
        .build()
        .unwrap();
    let addr = app(auth, MemoryRevocationStore::new()).await;
    for i in 0..TENANTS {
        let of_tenant = token(&key, Some("k1"), json!(server.issuer(&format!("t{i}"))), "alice", "1");
        assert_eq!(me(addr, &of_tenant).await.status, 200);
    }
    assert_eq!(tenants.tenants_held(), TENANTS);
    assert_eq!((server.discovery_requests(), server.jwks_requests()), (TENANTS, TENANTS));
    assert_eq!(server.connections(), 1, "every tenant's discovery and JWKS fetch over one pooled connection");
}

#[test]
fn tenant_patterns_are_checked() {
    let pattern = "https://login.example.com/{tenant}/v2.0";
    assert!(TenantKeys::builder(pattern).build().is_err(), "no allow-list nor predicate");
    assert!(TenantKeys::builder(pattern).allow(["a"]).max_tenants(0).build().is_err());
    for bad in ["https://login.example.com/v2.0", "https://{tenant}.example.com", "https://x/{tenant}?q"] {
        assert!(TenantKeys::builder(bad).allow(["a"]).build().is_err(), "{bad}");
    }
    let tenants = TenantKeys::builder(pattern).allow(["a"]).build().unwrap();
    let with_keys = Issuer::tenants(tenants.clone()).hmac_secret([1u8; 32]).algorithms([Algorithm::ES256]);
    assert!(invalid(JwtAuth::builder().trust(with_keys).build()).contains("no keys"));
    let no_algorithms = JwtAuth::builder().trust(Issuer::tenants(tenants)).build();
    assert!(invalid(no_algorithms).contains("algorithms"));
}

#[tokio::test]
async fn the_least_used_tenants_are_evicted_beyond_the_cap_and_discovered_again() {
    let server = TenantServer::start().await;
    let keys: Vec<TestKey> = (0..4).map(|_| TestKey::generate(Algorithm::ES256)).collect();
    for (i, key) in keys.iter().enumerate() {
        server.add_tenant(&format!("t{i}"), vec![jwk(key, "k1")]);
    }
    let tenants = TenantKeys::builder(server.pattern()).allow_if(|_| true).max_tenants(2).build().unwrap();
    let auth = JwtAuth::builder()
        .trust(Issuer::tenants(tenants.clone()).algorithms([Algorithm::ES256]))
        .build()
        .unwrap();
    let addr = app(auth, MemoryRevocationStore::new()).await;
    let of = |i: usize| token(&keys[i], Some("k1"), json!(server.issuer(&format!("t{i}"))), "alice", "1");
    for i in 0..4 {
        assert_eq!(me(addr, &of(i)).await.status, 200, "tenant {i}");
        assert!(tenants.tenants_held() <= 2, "held {}", tenants.tenants_held());
    }
    // Every tenant still verifies its tokens (an evicted one is discovered again), within the cap.
    for i in 0..4 {
        assert_eq!(me(addr, &of(i)).await.status, 200, "tenant {i} again");
        assert!(tenants.tenants_held() <= 2);
    }
    assert!(tenants.status().admitted > 4, "{:?}", tenants.status());
}
