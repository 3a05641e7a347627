//! The smallest complete program: an axum service whose `/me` and `/admin` routes need a JWT.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no configuration it verifies HS256 tokens signed with a random secret made at start,
//! and prints ready-to-paste `curl` commands with tokens it minted. The environment variables
//! of the README (`BIND`, `JWT_SECRET`, `JWT_PUBLIC_KEY`, `JWT_ALG`, `JWT_ISSUER`,
//! `JWT_AUDIENCE`) change that.
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /health` | 200, no token needed |
//! | `GET /me` | 200 with the token's claims as JSON |
//! | `GET /admin` | 200 when the token shows a second factor; otherwise 401 with a step-up challenge |
//! | `GET /ready` | 200 when the layer can answer (keys loaded, stores reachable), 503 with the reasons |
//! | `GET /metrics` | the layer's metrics as Prometheus text (feature `metrics`, on by default) |
//!
//! Signed requests (RFC 9421): `HTTP_SIGNATURES=allowed` (the default) or `required`, with
//! clients' keys in `HTTP_SIGNATURE_KEYS`; a token bound to a key (`cnf.jwk`) needs a signature
//! by it, and a body must match its `Content-Digest` before the handler runs.
//!
//! Signed answers (RFC 9421): `HTTP_SIGNATURE_RESPONSE_KEY=server-key.pem` (ES256, Ed25519 or
//! RSA-PSS, PEM) signs every response, refusals included; the banner prints the public key.
//!
//! HTTPS with client certificates (rustls, no OpenSSL):
//!
//! ```text
//! TLS_CERT=server.pem TLS_KEY=server-key.pem TLS_CLIENT_CA=client-ca.pem cargo run --example quickstart
//! ```
//!
//! Certificate-bound tokens (RFC 8705, `cnf."x5t#S256"`) pass only over a TLS connection with
//! their certificate (or, from `TRUSTED_PROXIES`, with it in a `Client-Cert` header); other
//! tokens still pass as bearer tokens. Without `TLS_CLIENT_CA`, any client certificate is
//! accepted for binding (RFC 8705 §2.2, self-signed clients). With `DEMO_CLIENT_CERT` (a PEM
//! client certificate) the banner also prints a token bound to that certificate.

mod support;

use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tower_jwt_guard::{CertificateBound, Claims, RequireMfa};

use support::tls::Tls;
use support::Settings;

/// The claims this service reads: a subject, and whatever else the token carries.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    sub: String,
    #[serde(flatten)]
    other: Map<String, Value>,
}

async fn health() -> &'static str {
    "ok"
}

async fn me(Claims(user): Claims<User>) -> Json<Value> {
    Json(json!(*user))
}

async fn admin(RequireMfa(context): RequireMfa, Claims(user): Claims<User>) -> Json<Value> {
    Json(json!({ "admin": true, "sub": user.sub, "amr": context.amr }))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(true).init();
    // Before the first request: the layer's metrics register with the recorder on first use.
    let metrics = support::metrics_recorder();
    let settings = Settings::from_env("127.0.0.1:3000");
    let tls = Tls::from_env();
    let (listener, addr) = settings.listen().await;
    let auth = support::with_http_signatures(support::with_dpop(settings.auth_builder(), addr), addr)
        .build()
        .unwrap_or_else(|err| support::fail("configuration", err));

    let app = Router::new().route("/me", get(me)).route("/admin", get(admin));
    // HTTP_SIGNATURES on: a body is checked against its Content-Digest before the handler (inside
    // the guard, so only verified requests are read).
    let app = match support::content_digest() {
        Some(digest) => app.route_layer(digest),
        None => app,
    };
    let app = app
        .route_layer(auth.layer::<User>())
        .route("/health", get(health))
        .merge(support::operations(&auth, metrics));
    // FAPI 2.0: every answer, rejections included, carries the request's x-fapi-interaction-id.
    let app = if support::fapi2() { app.layer(tower_jwt_guard::InteractionIdLayer::new()) } else { app };
    // HTTP_SIGNATURE_RESPONSE_KEY: every answer signed, the guard's refusals included.
    let signer = support::response_signer(addr);

    let (scheme, curl) = (support::scheme(), support::curl());
    let transport = tls.as_ref().map_or("plain HTTP", Tls::describe);
    println!("quickstart listening on {scheme}://{addr} ({}; {transport})", settings.describe_keys());
    let base = format!("{scheme}://{addr}");
    println!("  {curl} -i {base}/health");
    println!("  {curl} -i {base}/ready");
    println!("  {curl} -s {base}/metrics");
    match settings.demo_tokens() {
        Some(tokens) => {
            let (plain, mfa) = (tokens.password_only, tokens.second_factor);
            println!("  {curl} -i {base}/me -H 'Authorization: Bearer {plain}'");
            println!("  {curl} -i {base}/admin -H 'Authorization: Bearer {plain}'   # 401: no second factor");
            println!("  {curl} -i {base}/admin -H 'Authorization: Bearer {mfa}'");
        }
        None => {
            println!("  {curl} -i {base}/me -H \"Authorization: Bearer $TOKEN\"");
            println!("  {curl} -i {base}/admin -H \"Authorization: Bearer $TOKEN\"   # needs amr with a second factor");
        }
    }
    if let Some((path, token)) = bound_demo_token(&settings).await {
        println!(
            "  {curl} -i {base}/me --cert {path} --key <its key> -H 'Authorization: Bearer {token}'   # bound to DEMO_CLIENT_CERT; another certificate or none: 401 BINDING_MISMATCH"
        );
    }

    match signer {
        Some((signer, jwk)) => {
            let jwk = jwk.map(|jwk| jwk.to_string()).unwrap_or_default();
            println!("  every answer is signed (RFC 9421, label sig); verify with the public key {jwk}");
            support::serve(listener, app.layer(signer), tls.as_ref()).await
        }
        None => support::serve(listener, app, tls.as_ref()).await,
    }
}

/// A token for `alice` bound to the certificate of `DEMO_CLIENT_CERT` (when this process holds
/// the secret): minted for a request that carries that certificate, as a token endpoint behind
/// mutual TLS would.
async fn bound_demo_token(settings: &Settings) -> Option<(String, String)> {
    let (path, certificate) = support::demo_client_certificate()?;
    let issuer = settings.token_issuer_builder()?.binding(CertificateBound::required()).build();
    let mut token_request = http::Request::new(());
    token_request.extensions_mut().insert(certificate);
    let minted = issuer.mint_for(&token_request, "alice", &json!({ "name": "Alice" })).await.ok()?;
    Some((path, minted.token))
}
