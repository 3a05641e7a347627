//! Service-to-service authentication over loopback: token kinds that cannot be confused,
//! scopes per route (HTTP 403 and gRPC 7), claim propagation, and the outgoing token layer on
//! hyper-util's client and on a tonic channel.

mod harness;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use harness::{answer, client, now, serve, TestKey};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_guard::issue::SigningKey;
use tower_jwt_guard::{
    Algorithm, AuthContext, ClaimHeaders, ConfigError, JwtAuth, RequireScopeLayer, RequiredClaim, ScopeSet,
    Scoped, ServiceTokenLayer, ServiceTokenService, ServiceTokens, TokenKind,
};

const SECRET: &[u8] = b"service-auth-test-secret-of-32-bytes!!";

fn key() -> TestKey {
    TestKey::hmac(Algorithm::HS256, SECRET)
}

fn user_kind() -> TokenKind {
    TokenKind::new("user", "at+jwt").audience("api").require([RequiredClaim::Sub])
}

fn service_kind() -> TokenKind {
    TokenKind::new("service", "service+jwt")
        .audience("orders")
        .require([RequiredClaim::Sub])
        .require_claim("scope")
}

/// A token signed by the test with header `typ` and `claims` (plus `exp` in five minutes).
fn typed(typ: &str, claims: Value) -> String {
    let mut claims = claims;
    claims.as_object_mut().unwrap().entry("exp").or_insert(json!(now() + 300));
    key().sign_with_header(json!({ "typ": typ }), &claims)
}

fn user_token(sub: &str) -> String {
    typed("at+jwt", json!({ "sub": sub, "aud": "api" }))
}

fn service_token(scope: Value) -> String {
    typed("service+jwt", json!({ "sub": "gateway", "aud": "orders", "scope": scope }))
}

/// A server whose `/who` answers the subject and the token's kind, behind a layer accepting `kinds`.
async fn kind_server(kinds: &[TokenKind]) -> String {
    let mut builder = JwtAuth::builder().hmac_secret(SECRET);
    for kind in kinds {
        builder = builder.accept(kind.clone());
    }
    let auth = builder.build().unwrap();
    let app = Router::new()
        .route(
            "/who",
            get(|ctx: AuthContext| async move {
                Json(json!({ "sub": ctx.subject(), "kind": ctx.kind.as_deref() }))
            }),
        )
        .route_layer(auth.layer::<Value>());
    format!("http://{}/who", serve(app).await)
}

// ---------------------------------------------------------------- token kinds

#[tokio::test]
async fn a_user_token_is_refused_by_a_service_only_layer_and_the_reverse() {
    let users = kind_server(&[user_kind()]).await;
    let services = kind_server(&[service_kind()]).await;
    let http = client();
    let user = user_token("alice");
    let service = service_token(json!("read:orders"));

    assert_eq!(answer(http.get(&users).bearer_auth(&user)).await.status, 200);
    assert_eq!(answer(http.get(&services).bearer_auth(&service)).await.status, 200);

    let refused = answer(http.get(&services).bearer_auth(&user)).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
    let refused = answer(http.get(&users).bearer_auth(&service)).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn a_token_is_of_a_kind_only_with_its_type_audience_and_claims() {
    let both = kind_server(&[user_kind(), service_kind()]).await;
    let http = client();
    let who = |token: String| {
        let request = http.get(&both).bearer_auth(token);
        async move { answer(request).await }
    };
    let user = who(user_token("alice")).await;
    assert_eq!((user.status, user.body["kind"].clone()), (200, json!("user")));
    let service = who(service_token(json!(["read:orders"]))).await;
    assert_eq!((service.status, service.body["kind"].clone()), (200, json!("service")));

    let refused = [
        // the service type with the users' audience
        typed("service+jwt", json!({ "sub": "gateway", "aud": "api", "scope": "x" })),
        // the user type with the service audience
        typed("at+jwt", json!({ "sub": "alice", "aud": "orders" })),
        // a user token without its required sub
        typed("at+jwt", json!({ "aud": "api" })),
        // a service token without its required scope claim
        typed("service+jwt", json!({ "sub": "gateway", "aud": "orders" })),
        // generic or unknown types
        typed("JWT", json!({ "sub": "alice", "aud": "api" })),
        typed("id+jwt", json!({ "sub": "alice", "aud": "api" })),
    ];
    for token in refused {
        let answer = who(token).await;
        assert_eq!((answer.status, answer.code()), (401, "INVALID_TOKEN"), "{:?}", answer.body);
    }
    // Without a typ header at all.
    let untyped = key().sign_parts(
        &harness::b64(r#"{"alg":"HS256"}"#),
        &harness::b64(json!({ "sub": "alice", "aud": "api", "exp": now() + 60 }).to_string()),
    );
    assert_eq!(who(untyped).await.status, 401);
}

/// How a configuration of the audience/issuer tables uses token kinds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// No kind accepted: the layer's settings alone.
    None,
    /// One kind (`at+jwt`) with no audience or issuer of its own.
    Bare,
    /// One kind (`at+jwt`) with this audience or issuer.
    With(&'static str),
}

/// A server for one row of the tables below.
async fn rule_server(layer: Option<&str>, kind: Kind, accept_any: bool, issuer_rule: bool) -> String {
    let mut builder = JwtAuth::builder().hmac_secret(SECRET);
    let mut at = TokenKind::new("user", "at+jwt");
    match (layer, issuer_rule) {
        (Some(name), false) => builder = builder.audience(name),
        (Some(name), true) => builder = builder.issuer(name),
        (None, _) => {}
    }
    if accept_any {
        builder = builder.accept_any_audience();
    }
    match (kind, issuer_rule) {
        (Kind::None, _) => {}
        (Kind::Bare, _) => builder = builder.accept(at),
        (Kind::With(name), false) => {
            at = at.audience(name);
            builder = builder.accept(at);
        }
        (Kind::With(name), true) => {
            at = at.issuer(name);
            builder = builder.accept(at);
        }
    }
    let app = Router::new()
        .route("/who", get(|| async { "ok" }))
        .route_layer(builder.build().unwrap().layer::<Value>());
    format!("http://{}/who", serve(app).await)
}

/// Plays `tokens` (a claim's value, `null` for absent) against every row; fails listing every
/// cell that differs.
async fn play_rule_table(claim: &str, tokens: &[Value], rows: &[(Option<&str>, Kind, bool, &[u8])]) {
    let http = client();
    let mut wrong = Vec::new();
    for (layer, kind, accept_any, expected) in rows {
        let url = rule_server(*layer, *kind, *accept_any, claim == "iss").await;
        for (value, expected) in tokens.iter().zip(expected.iter()) {
            let mut claims = json!({ "sub": "alice" });
            if !value.is_null() {
                claims[claim] = value.clone();
            }
            let got = answer(http.get(&url).bearer_auth(typed("at+jwt", claims))).await;
            let accepted = got.status == 200;
            if accepted != (*expected == 1) || (!accepted && got.code() != "INVALID_TOKEN") {
                wrong.push(format!(
                    "layer {layer:?}, kind {kind:?}, accept_any {accept_any}, {claim} {value}: got {} {}",
                    got.status,
                    got.code()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} cells differ:\n{}", wrong.len(), wrong.join("\n"));
}

/// One audience rule with or without token kinds: an audience list that is empty (the layer's or
/// the kind's) is "not configured here" and adds no condition; each configured list needs one of
/// the token's `aud`; with none configured anywhere a token naming an audience is refused
/// (RFC 7519 §4.1.3) unless `accept_any_audience` says otherwise. A kind without an audience of
/// its own therefore behaves exactly like no kind at all.
#[tokio::test]
async fn the_audience_rule_for_every_combination_of_layer_and_kind() {
    let tokens = [Value::Null, json!("api"), json!("orders"), json!(["api", "orders"]), json!("other")];
    #[rustfmt::skip]
    let rows: &[(Option<&str>, Kind, bool, &[u8])] = &[
        //                                       absent api orders both other
        (None,        Kind::None,             false, &[1, 0, 0, 0, 0]),
        (None,        Kind::None,             true,  &[1, 1, 1, 1, 1]),
        (Some("api"), Kind::None,             false, &[0, 1, 0, 1, 0]),
        (Some("api"), Kind::None,             true,  &[0, 1, 0, 1, 0]),
        (None,        Kind::Bare,             false, &[1, 0, 0, 0, 0]),
        (None,        Kind::Bare,             true,  &[1, 1, 1, 1, 1]),
        (Some("api"), Kind::Bare,             false, &[0, 1, 0, 1, 0]),
        (Some("api"), Kind::Bare,             true,  &[0, 1, 0, 1, 0]),
        (None,        Kind::With("orders"),   false, &[0, 0, 1, 1, 0]),
        (None,        Kind::With("orders"),   true,  &[0, 0, 1, 1, 0]),
        (Some("api"), Kind::With("orders"),   false, &[0, 0, 0, 1, 0]),
        (Some("api"), Kind::With("orders"),   true,  &[0, 0, 0, 1, 0]),
        (Some("api"), Kind::With("api"),      false, &[0, 1, 0, 1, 0]),
    ];
    play_rule_table("aud", &tokens, rows).await;
}

/// The issuer rule, the same way: an empty list adds no condition, a configured one needs `iss`
/// among it; a kind without issuers of its own behaves like no kind.
#[tokio::test]
async fn the_issuer_rule_for_every_combination_of_layer_and_kind() {
    let (a, b) = ("https://a.example", "https://b.example");
    let tokens = [Value::Null, json!(a), json!(b), json!("https://other.example")];
    #[rustfmt::skip]
    let rows: &[(Option<&str>, Kind, bool, &[u8])] = &[
        //                                 absent a  b  other
        (None,    Kind::None,    false, &[1, 1, 1, 1]),
        (Some(a), Kind::None,    false, &[0, 1, 0, 0]),
        (None,    Kind::Bare,    false, &[1, 1, 1, 1]),
        (Some(a), Kind::Bare,    false, &[0, 1, 0, 0]),
        (None,    Kind::With(b), false, &[0, 0, 1, 0]),
        (Some(a), Kind::With(a), false, &[0, 1, 0, 0]),
    ];
    play_rule_table("iss", &tokens, rows).await;
}

#[test]
fn a_kind_whose_issuers_the_layer_refuses_is_a_configuration_error() {
    let err = JwtAuth::builder()
        .hmac_secret(SECRET)
        .issuer("https://a.example")
        .accept(TokenKind::new("user", "at+jwt").issuer("https://b.example"))
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
    let shared = JwtAuth::builder()
        .hmac_secret(SECRET)
        .issuer("https://a.example")
        .accept(TokenKind::new("user", "at+jwt").issuer("https://b.example").issuer("https://a.example"))
        .build();
    assert!(shared.is_ok());
}

#[test]
fn kinds_that_share_a_type_cannot_be_accepted_together() {
    let err = JwtAuth::builder()
        .hmac_secret(SECRET)
        .accept(TokenKind::new("user", "at+jwt"))
        .accept(TokenKind::new("other", "application/AT+JWT"))
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn tokens_minted_for_a_kind_are_accepted_as_that_kind_only() {
    let services = kind_server(&[service_kind()]).await;
    let users = kind_server(&[user_kind()]).await;
    let signing = SigningKey::hmac(Algorithm::HS256, SECRET).unwrap();
    let minted = service_kind()
        .token_issuer(signing)
        .build()
        .mint("gateway", &json!({ "scope": "read:orders" }))
        .unwrap();
    let http = client();
    assert_eq!(answer(http.get(&services).bearer_auth(&minted.token)).await.status, 200);
    assert_eq!(answer(http.get(&users).bearer_auth(&minted.token)).await.status, 401);
}

// ---------------------------------------------------------------- scopes

struct ReadOrders;
impl ScopeSet for ReadOrders {
    const SCOPES: &'static [&'static str] = &["read:orders"];
}

async fn scope_server() -> String {
    let auth = JwtAuth::builder().hmac_secret(SECRET).build().unwrap();
    let ok = || async { "ok" };
    let app = Router::new()
        .merge(Router::new().route("/orders", get(ok)).route_layer(RequireScopeLayer::new("read:orders")))
        .merge(
            Router::new()
                .route("/both", get(ok))
                .route_layer(RequireScopeLayer::all(["read:orders", "write:orders"])),
        )
        .merge(
            Router::new()
                .route("/either", get(ok))
                .route_layer(RequireScopeLayer::any(["admin", "read:orders"])),
        )
        .route(
            "/extract",
            get(|Scoped(ctx, ..): Scoped<ReadOrders>| async move { ctx.subject().unwrap_or("").to_owned() }),
        )
        .route("/me", get(ok))
        .route_layer(auth.layer::<Value>());
    format!("http://{}", serve(app).await)
}

fn scoped(claims: Value) -> String {
    let mut claims = claims;
    claims.as_object_mut().unwrap().insert("sub".into(), json!("alice"));
    claims.as_object_mut().unwrap().insert("exp".into(), json!(now() + 300));
    key().sign(&claims)
}

#[tokio::test]
async fn a_missing_scope_is_403_with_the_scope_attribute() {
    let base = scope_server().await;
    let http = client();
    for path in ["/orders", "/extract"] {
        let refused = answer(
            http.get(format!("{base}{path}")).bearer_auth(scoped(json!({ "scope": "profile read:ordersX" }))),
        )
        .await;
        assert_eq!((refused.status, refused.code()), (403, "INSUFFICIENT_SCOPE"), "{path}");
        let challenge = refused.challenge.unwrap();
        assert!(challenge.starts_with("Bearer realm="), "{challenge}");
        assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
        assert!(challenge.contains(r#"scope="read:orders""#), "{challenge}");
        assert_eq!(refused.body["scope"], "read:orders");
    }
    let both =
        answer(http.get(format!("{base}/both")).bearer_auth(scoped(json!({ "scope": "read:orders" })))).await;
    assert_eq!(both.status, 403);
    assert!(both.challenge.unwrap().contains(r#"scope="read:orders write:orders""#));
    // Scopes are compared exactly.
    let upper =
        answer(http.get(format!("{base}/orders")).bearer_auth(scoped(json!({ "scope": "READ:ORDERS" }))))
            .await;
    assert_eq!(upper.status, 403);
    // The routes without a scope layer need only the token; no token is still 401.
    assert_eq!(answer(http.get(format!("{base}/me")).bearer_auth(scoped(json!({})))).await.status, 200);
    assert_eq!(answer(http.get(format!("{base}/orders"))).await.status, 401);
}

#[tokio::test]
async fn scopes_are_read_from_a_string_an_array_or_scp() {
    let base = scope_server().await;
    let http = client();
    let tokens = [
        json!({ "scope": "profile read:orders" }),
        json!({ "scope": ["profile", "read:orders"] }),
        json!({ "scp": ["read:orders"] }),
        // Entra ID writes `scp` as one space-separated string.
        json!({ "scp": "User.Read read:orders" }),
        json!({ "scp": "read:orders" }),
    ];
    for claims in tokens {
        for path in ["/orders", "/extract", "/either"] {
            let allowed = answer(http.get(format!("{base}{path}")).bearer_auth(scoped(claims.clone()))).await;
            assert_eq!(allowed.status, 200, "{path} {claims}");
        }
    }
    let all = scoped(json!({ "scope": "write:orders read:orders" }));
    assert_eq!(answer(http.get(format!("{base}/both")).bearer_auth(all)).await.status, 200);
    let all = scoped(json!({ "scp": "write:orders read:orders" }));
    assert_eq!(answer(http.get(format!("{base}/both")).bearer_auth(all)).await.status, 200);
    // An array item is one scope, spaces and all.
    let one = scoped(json!({ "scp": ["User.Read read:orders"] }));
    assert_eq!(answer(http.get(format!("{base}/orders")).bearer_auth(one)).await.status, 403);
    // A scope claim of the wrong type is a bad token, not a missing scope.
    let bad = answer(http.get(format!("{base}/orders")).bearer_auth(scoped(json!({ "scope": 7 })))).await;
    assert_eq!((bad.status, bad.code()), (401, "INVALID_TOKEN"));
    let bad = answer(http.get(format!("{base}/orders")).bearer_auth(scoped(json!({ "scp": 7 })))).await;
    assert_eq!((bad.status, bad.code()), (401, "INVALID_TOKEN"));
}

#[tokio::test]
async fn a_missing_scope_on_a_grpc_request_is_permission_denied() {
    let base = scope_server().await;
    let grpc = |http: &reqwest::Client| {
        http.get(format!("{base}/orders"))
            .header("content-type", "application/grpc")
            .bearer_auth(scoped(json!({ "scope": "profile" })))
    };
    let http2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let refused = answer(grpc(&http2)).await;
    assert_eq!(refused.status, 200, "gRPC refusals are trailers-only answers");
    assert_eq!(refused.headers["grpc-status"], "7");
    // Over HTTP/1.1 there is no gRPC: a plain 403.
    let refused = answer(grpc(&client())).await;
    assert_eq!((refused.status, refused.code()), (403, "INSUFFICIENT_SCOPE"));
}

#[tokio::test]
async fn the_scope_layer_without_a_verified_token_never_lets_through() {
    // Anonymous request (optional mode): 401, not 403 and not the handler.
    let auth = JwtAuth::builder().hmac_secret(SECRET).optional(true).build().unwrap();
    let app = Router::new()
        .route("/orders", get(|| async { "ok" }))
        .route_layer(RequireScopeLayer::new("read:orders"))
        .route_layer(auth.layer::<Value>());
    let base = format!("http://{}", serve(app).await);
    let anonymous = answer(client().get(format!("{base}/orders"))).await;
    assert_eq!((anonymous.status, anonymous.code()), (401, "MISSING_TOKEN"));
    // Without the JwtLayer at all: a wiring bug, 500.
    let app = Router::new()
        .route("/orders", get(|| async { "ok" }))
        .route_layer(RequireScopeLayer::new("read:orders"));
    let base = format!("http://{}", serve(app).await);
    let unwired =
        answer(client().get(format!("{base}/orders")).bearer_auth(scoped(json!({ "scope": "read:orders" }))))
            .await;
    assert_eq!((unwired.status, unwired.code()), (500, "MISSING_LAYER"));
}

// ---------------------------------------------------------------- claim propagation

/// Echoes every `x-user-*` and `x-forwarded-user` header it receives (all values), in any
/// spelling a CGI backend reads as the same (`x_user_role` is `HTTP_X_USER_ROLE` too).
async fn echo_headers(headers: HeaderMap) -> Json<Value> {
    let mut seen = serde_json::Map::new();
    for name in headers.keys() {
        let cgi = name.as_str().replace('_', "-");
        if cgi.starts_with("x-user-") || cgi == "x-forwarded-user" {
            let values: Vec<Value> =
                headers.get_all(name).iter().map(|v| json!(v.to_str().unwrap_or("?"))).collect();
            seen.insert(name.to_string(), Value::Array(values));
        }
    }
    Json(Value::Object(seen))
}

async fn propagation_server() -> String {
    let auth = JwtAuth::builder().hmac_secret(SECRET).optional(true).build().unwrap();
    let propagate = ClaimHeaders::new()
        .claim("sub", "x-user-id")
        .claim("role", "x-user-role")
        .claim("groups", "x-user-groups")
        .claim("org.name", "x-user-org")
        .claim("scope", "x-user-scope")
        .strip("x-forwarded-user")
        .strip_prefix("x-user-")
        .build::<Value>()
        .unwrap();
    let app =
        Router::new().route("/", get(echo_headers)).route_layer(propagate).route_layer(auth.layer::<Value>());
    format!("http://{}/", serve(app).await)
}

fn spoofing(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("x-user-id", "admin")
        .header("X-User-Role", "admin")
        .header("x-user-admin", "true")
        .header("x-forwarded-user", "admin")
        // PHP, Rack and WSGI read these as HTTP_X_USER_ROLE, HTTP_X_USER_ADMIN, ...
        .header("x_user_role", "admin")
        .header("X_User-Admin", "true")
        .header("x_forwarded_user", "admin")
        .header("x_user_id", "root")
}

#[tokio::test]
async fn spoofed_user_headers_are_replaced_by_the_verified_claims() {
    let url = propagation_server().await;
    let http = client();
    let t = now();
    let token = key().sign(&json!({
        "sub": "alice", "exp": t + 300, "role": "customer", "groups": ["a", "b"],
        "org": { "name": "acme" }, "scope": "read:orders profile",
    }));
    let seen = answer(spoofing(http.get(&url)).bearer_auth(&token)).await;
    assert_eq!(seen.status, 200);
    assert_eq!(
        seen.body,
        json!({
            "x-user-id": ["alice"],
            "x-user-role": ["customer"],
            "x-user-groups": ["a,b"],
            "x-user-org": ["acme"],
            "x-user-scope": ["read:orders profile"],
        })
    );

    // A claim the token lacks: the spoofed header is gone and nothing replaces it.
    let plain = key().sign(&json!({ "sub": "bob", "exp": t + 300 }));
    let seen = answer(spoofing(http.get(&url)).bearer_auth(&plain)).await;
    assert_eq!(seen.body, json!({ "x-user-id": ["bob"] }));

    // Anonymous (optional mode): every user header is removed.
    let seen = answer(spoofing(http.get(&url))).await;
    assert_eq!((seen.status, seen.body.clone()), (200, json!({})));

    // Text that is not visible ASCII is percent-encoded (UTF-8), and so are the commas inside
    // an array's items: `["a,b", "c"]` is never read as three groups.
    let unusual = key().sign(&json!({
        "sub": "josé", "exp": t + 300, "role": "Jefe de Producción\r\nx-user-role: admin",
        "groups": ["a,b", "c"], "org": { "name": "100% Acme, Inc." },
    }));
    let seen = answer(spoofing(http.get(&url)).bearer_auth(&unusual)).await;
    assert_eq!(
        seen.body,
        json!({
            "x-user-id": ["jos%C3%A9"],
            "x-user-role": ["Jefe de Producci%C3%B3n%0D%0Ax-user-role: admin"],
            "x-user-groups": ["a%2Cb,c"],
            "x-user-org": ["100%25 Acme%2C Inc."],
        })
    );

    // A bad token never reaches the service.
    let forged = TestKey::generate(Algorithm::HS256).sign(&json!({ "sub": "admin", "exp": t + 300 }));
    assert_eq!(answer(spoofing(http.get(&url)).bearer_auth(&forged)).await.status, 401);
}

// ---------------------------------------------------------------- outgoing service tokens

type HttpClient = ServiceTokenService<Client<HttpConnector, Empty<Bytes>>>;

/// An orders service accepting service tokens (leeway 0, at most `max_age` old); `/echo`
/// answers the subject and the `jti` of the token it received.
async fn orders_server(max_age: Option<Duration>) -> SocketAddr {
    let mut builder = JwtAuth::builder().hmac_secret(SECRET).accept(service_kind()).leeway(Duration::ZERO);
    if let Some(age) = max_age {
        builder = builder.max_token_age(age);
    }
    let auth = builder.build().unwrap();
    let app = Router::new()
        .route(
            "/echo",
            get(|ctx: AuthContext, headers: HeaderMap| async move {
                Json(json!({ "sub": ctx.subject(), "jti": ctx.jti(), "authorizations": headers.get_all("authorization").iter().count() }))
            }),
        )
        .route_layer(auth.layer::<Value>());
    serve(app).await
}

fn service_tokens(ttl: Duration, renew_before: Duration) -> ServiceTokens {
    let issuer =
        service_kind().token_issuer(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).ttl(ttl).build();
    ServiceTokens::builder(issuer, "gateway").scope("read:orders").renew_before(renew_before).build().unwrap()
}

fn http_client(tokens: &ServiceTokens) -> HttpClient {
    let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    ServiceBuilder::new().layer(ServiceTokenLayer::new(tokens.clone())).service(http)
}

/// GET `/echo` through the client layer, optionally with an `Authorization` already set.
async fn echo(client: &HttpClient, addr: SocketAddr, authorization: Option<&str>) -> (u16, Value) {
    let mut request = http::Request::get(format!("http://{addr}/echo"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = client.clone().oneshot(request.body(Empty::new()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_client_layer_reuses_its_token_and_replaces_a_forwarded_authorization() {
    let addr = orders_server(None).await;
    let tokens = service_tokens(Duration::from_secs(300), Duration::from_secs(60));
    let client = http_client(&tokens);
    let user = format!("Bearer {}", user_token("alice"));
    let mut jtis = HashSet::new();
    for i in 0..10 {
        let (status, body) = echo(&client, addr, (i % 2 == 0).then_some(user.as_str())).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sub"], "gateway", "the service token, never the user's");
        assert_eq!(body["authorizations"], 1);
        jtis.insert(body["jti"].as_str().unwrap().to_owned());
    }
    assert_eq!(jtis.len(), 1, "one token for every request while it is fresh");
    assert_eq!(tokens.minted_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_mint_one_token() {
    const REQUESTS: usize = 32;
    let addr = orders_server(None).await;
    let tokens = service_tokens(Duration::from_secs(300), Duration::from_secs(60));
    let client = http_client(&tokens);
    let barrier = Arc::new(tokio::sync::Barrier::new(REQUESTS));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (client, barrier) = (client.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                echo(&client, addr, None).await
            })
        })
        .collect();
    let mut jtis = HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        jtis.insert(body["jti"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.minted_count(), 1, "single-flight: no stampede");
    assert_eq!(jtis.len(), 1);
}

/// The receiving service refuses tokens older than 4 s; the client's tokens live 60 s but are
/// renewed once less than 58 s are left (2 s after they were minted). Without the renewal
/// margin the client would keep its first token and be refused (TOKEN_TOO_OLD) after 4 s.
#[tokio::test]
async fn the_client_layer_renews_before_expiry_and_reuses_in_between() {
    let addr = orders_server(Some(Duration::from_secs(4))).await;
    let tokens = service_tokens(Duration::from_secs(60), Duration::from_secs(58));
    let client = http_client(&tokens);
    let mut jtis: Vec<String> = Vec::new();
    let mut requests = 0;
    // Bounded poll: until three distinct tokens were used (about 4 s), at most 40 s.
    for _ in 0..400 {
        let (status, body) = echo(&client, addr, None).await;
        requests += 1;
        assert_eq!(status, 200, "request {requests} refused: {body}");
        let jti = body["jti"].as_str().unwrap().to_owned();
        if jtis.last() != Some(&jti) {
            assert!(!jtis.contains(&jti), "an older token came back");
            jtis.push(jti);
        }
        if jtis.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(jtis.len() >= 3, "the token was not renewed: {} tokens in {requests} requests", jtis.len());
    assert_eq!(tokens.minted_count(), jtis.len() as u64);
    assert!(requests > jtis.len(), "tokens are reused between renewals");
}

#[test]
fn a_renewal_margin_as_long_as_the_lifetime_is_refused() {
    let issuer = service_kind()
        .token_issuer(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .ttl(Duration::from_secs(30))
        .build();
    let err =
        ServiceTokens::builder(issuer, "gateway").renew_before(Duration::from_secs(30)).build().unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)));
}

mod grpc {
    //! The client layer on a tonic channel, against a tonic server whose service-token layer
    //! demands a scope: SERVING with it, PERMISSION_DENIED (7) without.

    use super::*;
    use tonic::transport::server::TcpIncoming;
    use tonic::transport::{Channel, Server};
    use tonic::Code;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    async fn health_server() -> String {
        let auth = JwtAuth::builder().hmac_secret(SECRET).accept(service_kind()).build().unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            Server::builder()
                .layer(auth.layer::<Value>())
                .layer(RequireScopeLayer::new("health:read"))
                .add_service(health)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        url
    }

    async fn check(url: &str, scope: &str) -> Result<i32, tonic::Status> {
        let issuer = service_kind().token_issuer(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build();
        let tokens = ServiceTokens::builder(issuer, "gateway").scope(scope).build().unwrap();
        let channel = Channel::from_shared(url.to_owned()).unwrap().connect().await.unwrap();
        let mut client =
            HealthClient::new(ServiceBuilder::new().layer(ServiceTokenLayer::new(tokens)).service(channel));
        client.check(HealthCheckRequest { service: String::new() }).await.map(|r| r.into_inner().status)
    }

    /// A DPoP-bound service token over a tonic `Channel`: the requests the client layer sees are
    /// relative (`/grpc.health.v1.Health/Check`), so the layer signs `htu` on the configured
    /// target origin, and the server (DPoP required) accepts the proof. Without the origin, the
    /// call is not sent: its proof could only name `https:///grpc.health.v1.Health/Check`.
    #[tokio::test]
    async fn a_tonic_channel_signs_dpop_proofs_for_the_target_origin() {
        use std::sync::Arc;
        use tower_jwt_guard::binding::Dpop;
        use tower_jwt_guard::issue::DpopKey;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let auth = JwtAuth::builder()
            .hmac_secret(SECRET)
            .accept(service_kind())
            .dpop(Dpop::required().public_url(&url))
            .build()
            .unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            Server::builder()
                .layer(auth.layer::<Value>())
                .add_service(health)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        let issuer = service_kind().token_issuer(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build();
        let tokens = ServiceTokens::builder(issuer, "gateway")
            .scope("health:read")
            .dpop_key(Arc::new(DpopKey::generate_es256().unwrap()))
            .build()
            .unwrap();
        let channel = Channel::from_shared(url.clone()).unwrap().connect().await.unwrap();
        let layer = ServiceTokenLayer::new(tokens.clone()).origin(&url).unwrap();
        let mut client = HealthClient::new(ServiceBuilder::new().layer(layer).service(channel.clone()));
        for _ in 0..2 {
            let status = client.check(HealthCheckRequest { service: String::new() }).await.unwrap();
            assert_eq!(status.into_inner().status, ServingStatus::Serving as i32);
        }
        let mut without =
            HealthClient::new(ServiceBuilder::new().layer(ServiceTokenLayer::new(tokens)).service(channel));
        let refused = without.check(HealthCheckRequest { service: String::new() }).await.unwrap_err();
        assert!(refused.message().contains("names no host"), "{refused:?}");
    }

    #[tokio::test]
    async fn a_tonic_channel_sends_service_tokens_and_a_missing_scope_is_permission_denied() {
        let url = health_server().await;
        assert_eq!(check(&url, "health:read").await.unwrap(), ServingStatus::Serving as i32);
        let refused = check(&url, "read:orders").await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
        assert!(refused.message().contains("INSUFFICIENT_SCOPE"), "{}", refused.message());
    }
}
