//! The gateway pattern in one process: a gateway that verifies *user* tokens and an `orders`
//! service that accepts only *service* tokens.
//!
//! ```text
//! cargo run --example microservices
//! ```
//!
//! - Gateway on `BIND` (default `127.0.0.1:3000`), `GET /orders` with a user access token
//!   (`typ: at+jwt`, `sub`): verifies it, removes every client-sent `x-user-*` header, and calls
//!   the orders service with a service token it mints itself (`typ: service+jwt`, audience
//!   `orders`, scope `read:orders`, cached and renewed a minute before it expires) plus
//!   `x-user-id` / `x-user-role` taken from the verified claims. It answers with the orders
//!   service's JSON.
//! - Orders on `BIND_DOWNSTREAM` (default `127.0.0.1:3001`), `GET /orders`: only service tokens
//!   with the scope `read:orders` (a user token is refused with 401: token kinds never validate
//!   as each other, RFC 8725 §3.12; a service token without the scope gets 403). It answers
//!   `{"user": <x-user-id>, "role": <x-user-role>, "caller": <service token sub>, "orders": [..]}`.
//!
//! DPoP (RFC 9449, `DPOP`, default `allowed`; `off` turns it off): the gateway accepts
//! DPoP-bound user tokens with their proofs (`htu` against `PUBLIC_URL` or its address), and
//! it holds a DPoP key
//! (ES256, generated at start), its service tokens are bound to it (`cnf.jkt`) and every call to
//! the orders service carries `Authorization: DPoP` and a fresh proof for that call (`htm`,
//! `htu` = the orders service's address, `ath`). The orders service checks the proofs (replays
//! refused); a stolen service token is useless without the gateway's key. With
//! `DPOP_NONCE=1` the orders service demands its nonces: the gateway retries once with the
//! `DPoP-Nonce` it was given, and keeps using it.
//!
//! Mutual TLS (RFC 8705, with `TLS_CERT` and `TLS_KEY`): both listeners serve HTTPS (the gateway's
//! clients may present certificates, verified against `TLS_CLIENT_CA` if set). The gateway makes
//! itself a client certificate at start (self-signed, RFC 8705 §2.2), calls the orders service over
//! mutual TLS with it (pinning the orders service's certificate, `TLS_CERT`), and binds its service
//! tokens to it (`cnf."x5t#S256"`, beside `cnf.jkt` when DPoP is on); the orders service accepts
//! only certificate-bound service tokens, over the connection with their certificate.
//!
//! The keys come from the same environment variables as every example (`JWT_SECRET`, ...).
//! With a secret, user and service tokens are signed with the same key: only their kinds keep
//! them apart. With `JWT_PUBLIC_KEY` (or a JWKS) the gateway signs its service tokens with a
//! random secret generated at start.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_guard::issue::{DpopKey, SigningKey};
use tower_jwt_guard::{
    Algorithm, AuthContext, ClaimHeaders, JwtAuth, RequireScopeLayer, RequiredClaim, ServiceTokenLayer,
    ServiceTokenService, ServiceTokens, TokenKind, VerificationKey,
};

use support::tls::{ClientIdentity, Tls};
use support::{fail, KeyConfig, Settings};

/// The audience, `typ` and scope of the tokens the gateway sends to the orders service.
const ORDERS_AUDIENCE: &str = "orders";
const SERVICE_TOKEN_TYPE: &str = "service+jwt";
const READ_ORDERS: &str = "read:orders";
/// The gateway's name: the `iss` and `sub` of its service tokens.
const GATEWAY: &str = "gateway";

/// The claims the gateway reads from user tokens.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// User access tokens (RFC 9068 `at+jwt`) with a subject; each issuer's own `iss` and
/// audience rules apply besides.
fn user_kind() -> TokenKind {
    TokenKind::new("user", "at+jwt").require([RequiredClaim::Sub])
}

/// Service tokens for the orders service.
fn service_kind() -> TokenKind {
    TokenKind::new("service", SERVICE_TOKEN_TYPE)
        .audience(ORDERS_AUDIENCE)
        .issuer(GATEWAY)
        .require([RequiredClaim::Sub, RequiredClaim::Jti])
        .require_claim("scope")
}

/// The key of service tokens: the configured secret, or a random one when the user tokens are
/// verified with a public key.
fn service_secret(settings: &Settings) -> (Vec<u8>, Algorithm) {
    match &settings.keys {
        KeyConfig::Secret { secret, algorithm, .. } => (secret.clone(), *algorithm),
        _ => {
            let mut secret = vec![0u8; 32];
            aws_lc_rs::rand::fill(&mut secret).unwrap_or_else(|_| fail("JWT_SECRET", "no randomness"));
            (secret, Algorithm::HS256)
        }
    }
}

type OrdersClient = ServiceTokenService<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>>;

#[derive(Clone)]
struct Gateway {
    orders: OrdersClient,
    orders_url: String,
    /// The key the service tokens are bound to (DPoP on), to remember the server's nonces.
    dpop_key: Option<Arc<DpopKey>>,
}

/// Gateway `GET /orders`: the `x-user-*` headers here were put by `ClaimHeaders` from the
/// verified token (the client's were removed); pass them on with a service token.
async fn gateway_orders(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let request = || {
        let mut request = Request::get(format!("{}/orders", gateway.orders_url));
        for (name, value) in headers.iter().filter(|(name, _)| name.as_str().starts_with("x-user-")) {
            request = request.header(name, value);
        }
        request.body(Empty::<Bytes>::new())
    };
    let unreachable = |err: tower::BoxError| {
        tracing::warn!(error = %err, "orders service unreachable");
        (StatusCode::BAD_GATEWAY, Json(json!({ "error": "the orders service is unavailable" })))
            .into_response()
    };
    let Ok(first) = request() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "bad upstream request" })))
            .into_response();
    };
    let mut response = match gateway.orders.clone().oneshot(first).await {
        Ok(response) => response,
        Err(err) => return unreachable(err),
    };
    // DPoP nonces (RFC 9449 §8): the client layer remembered the one the orders service sent;
    // on `use_dpop_nonce`, try once more with it.
    let use_nonce = gateway.dpop_key.is_some()
        && response.status() == StatusCode::UNAUTHORIZED
        && response.headers().contains_key("dpop-nonce");
    if use_nonce {
        if let Ok(again) = request() {
            response = match gateway.orders.clone().oneshot(again).await {
                Ok(response) => response,
                Err(err) => return unreachable(err),
            };
        }
    }
    let (parts, body) = response.into_parts();
    match body.collect().await {
        Ok(body) => {
            let mut response = Response::new(Body::from(body.to_bytes()));
            *response.status_mut() = parts.status;
            if let Some(content_type) = parts.headers.get(http::header::CONTENT_TYPE) {
                response.headers_mut().insert(http::header::CONTENT_TYPE, content_type.clone());
            }
            response
        }
        Err(_) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": "the orders service answer was cut" })))
            .into_response(),
    }
}

/// Orders `GET /orders`: only reached with a service token carrying `read:orders`.
async fn orders(context: AuthContext, headers: HeaderMap) -> Json<Value> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    Json(json!({
        "user": header("x-user-id"),
        "role": header("x-user-role"),
        "caller": context.subject(),
        "orders": [
            { "id": "o-1001", "item": "coffee beans", "quantity": 2 },
            { "id": "o-1002", "item": "grinder", "quantity": 1 },
        ],
    }))
}

async fn listen(variable: &str, addr: SocketAddr) -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|err| fail(variable, format!("cannot listen on {addr}: {err}")))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(true).init();
    let settings = Settings::from_env("127.0.0.1:3000");
    let downstream: SocketAddr = std::env::var("BIND_DOWNSTREAM")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:3001".into())
        .parse()
        .unwrap_or_else(|_| fail("BIND_DOWNSTREAM", "expected an address like 127.0.0.1:3001"));
    let (service_secret, service_alg) = service_secret(&settings);
    // TLS_CERT/TLS_KEY: HTTPS on both listeners, mutual TLS from the gateway to the orders service.
    let tls = Tls::from_env();
    let scheme = support::scheme();
    let identity = tls.as_ref().map(|_| ClientIdentity::generate(GATEWAY));

    // The orders service: service tokens with read:orders, nothing else; DPoP-bound ones need
    // a proof for the address the gateway calls (the orders service is not behind PUBLIC_URL).
    let orders_listener = listen("BIND_DOWNSTREAM", downstream).await;
    let orders_addr = orders_listener.local_addr().unwrap_or(downstream);
    let orders_auth = JwtAuth::builder()
        .try_key(VerificationKey::hmac(service_alg, &service_secret))
        .accept(service_kind());
    let mut orders_auth = support::with_dpop_at(orders_auth, format!("{scheme}://{orders_addr}"));
    if tls.is_some() {
        // Over TLS, service tokens must be bound to the certificate of the calling connection.
        orders_auth = orders_auth.binding(tower_jwt_guard::CertificateBound::required());
    }
    let orders_auth = orders_auth.build().unwrap_or_else(|err| fail("configuration", err));
    let orders_app = Router::new()
        .route("/orders", get(orders))
        .route_layer(RequireScopeLayer::new(READ_ORDERS))
        .route_layer(orders_auth.layer::<Value>())
        .route("/health", get(|| async { "ok" }));

    // The gateway: user tokens in (DPoP-bound ones with their proofs, `htu` against
    // PUBLIC_URL or its address), service tokens out.
    let gateway_listener = listen("BIND", settings.bind).await;
    let gateway_addr = gateway_listener.local_addr().unwrap_or(settings.bind);
    let gateway_auth = support::with_dpop(settings.auth_builder(), gateway_addr)
        .every_issuer(|issuer| issuer.accept(user_kind()))
        .build()
        .unwrap_or_else(|err| fail("configuration", err));
    let propagate = ClaimHeaders::new()
        .claim("sub", "x-user-id")
        .claim("role", "x-user-role")
        .strip_prefix("x-user-")
        .build::<User>()
        .unwrap_or_else(|err| fail("configuration", err));
    let signing_key =
        SigningKey::hmac(service_alg, &service_secret).unwrap_or_else(|err| fail("JWT_SECRET", err));
    // DPoP on: the service tokens are bound to the gateway's key, each call signed with it.
    let dpop_key = support::dpop_on().then(|| {
        Arc::new(DpopKey::generate_es256().unwrap_or_else(|err| fail("DPOP", format!("no key: {err}"))))
    });
    let mut service_tokens = ServiceTokens::builder(
        service_kind().token_issuer(signing_key).ttl(Duration::from_secs(5 * 60)).build(),
        GATEWAY,
    )
    .scope(READ_ORDERS)
    .renew_before(Duration::from_secs(60));
    if let Some(key) = &dpop_key {
        service_tokens = service_tokens.dpop_key(Arc::clone(key));
    }
    // Mutual TLS on: the service tokens are bound to the gateway's client certificate.
    if let Some(identity) = &identity {
        service_tokens = service_tokens.client_certificate(&identity.certificate);
    }
    let service_tokens = service_tokens.build().unwrap_or_else(|err| fail("configuration", err));
    let client_tls = match (&identity, &tls) {
        (Some(identity), Some(tls)) => identity.client_config(tls.server_certificate()),
        // Plain HTTP: the connector never makes a TLS connection.
        _ => rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|err| fail("configuration", err))
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth(),
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_tls)
        .https_or_http()
        .enable_http1()
        .build();
    let http = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let gateway = Gateway {
        orders: ServiceBuilder::new().layer(ServiceTokenLayer::new(service_tokens)).service(http),
        orders_url: format!("{scheme}://{orders_addr}"),
        dpop_key: dpop_key.clone(),
    };
    let gateway_app = Router::new()
        .route("/orders", get(gateway_orders))
        .route_layer(propagate) // inside the JwtLayer: runs after the token is verified
        .route_layer(gateway_auth.layer::<User>())
        .route("/health", get(|| async { "ok" }))
        .with_state(gateway);

    println!("microservices gateway listening on {scheme}://{gateway_addr} ({})", settings.describe_keys());
    let mut service_binding = match &dpop_key {
        Some(key) => format!("DPoP-bound to the gateway's key, jkt {}", key.jkt()),
        None => "bearer, DPOP=off".to_string(),
    };
    if identity.is_some() {
        service_binding.push_str("; over mutual TLS, bound to the gateway's client certificate (x5t#S256)");
    }
    println!(
        "  orders service on {scheme}://{orders_addr} (service tokens with scope {READ_ORDERS} only; {service_binding})"
    );
    let curl = support::curl();
    println!("  {curl} -i {scheme}://{gateway_addr}/health");
    let user_issuer = match &settings.keys {
        KeyConfig::Secret { secret, algorithm, .. } => SigningKey::hmac(*algorithm, secret).ok().map(|key| {
            let mut issuer = user_kind().token_issuer(key);
            if let Some(name) = &settings.issuer {
                issuer = issuer.issuer(name.clone());
            }
            if let Some(audience) = &settings.audience {
                issuer = issuer.audience(audience.clone());
            }
            issuer.build()
        }),
        _ => None,
    };
    match user_issuer.and_then(|issuer| issuer.mint("alice", &json!({ "role": "customer" })).ok()) {
        Some(user) => {
            let token = user.token;
            println!("  {curl} -i {scheme}://{gateway_addr}/orders -H 'Authorization: Bearer {token}'");
            println!(
                "  {curl} -i {scheme}://{gateway_addr}/orders -H 'Authorization: Bearer {token}' -H 'x-user-id: admin'   # the spoofed header is dropped"
            );
            println!(
                "  {curl} -i {scheme}://{orders_addr}/orders -H 'Authorization: Bearer {token}'   # 401: a user token is not a service token"
            );
        }
        None => {
            println!("  {curl} -i {scheme}://{gateway_addr}/orders -H \"Authorization: Bearer $TOKEN\"   # typ at+jwt, with sub");
        }
    }

    let internal = tls.as_ref().map(Tls::internal);
    tokio::join!(
        support::serve(orders_listener, orders_app, internal.as_ref()),
        support::serve(gateway_listener, gateway_app, tls.as_ref()),
    );
}
