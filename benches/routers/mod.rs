//! The routers under comparison, shared by the benches: a bare route, this crate's layer
//! (cached and uncached), and the peers jwt-authorizer and axum-jwt-auth.

#![allow(dead_code)] // each bench uses part of it

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header::AUTHORIZATION, HeaderValue, Request};
use serde::Deserialize;

/// The typed claims every router decodes, as a real service would.
#[derive(Debug, Clone, Deserialize)]
pub struct BenchClaims {
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
}
use tower_jwt_guard::binding::{ClientIpBinding, DeviceFingerprint, PeerAddr};
use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
use tower_jwt_guard::revocation::MemoryRevocationStore;
use tower_jwt_guard::{Algorithm, Claims, JwtAuth};

use crate::harness::{claims, TestKey};

pub const ALGORITHMS: [Algorithm; 4] =
    [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// The request every router serves: a browser-like head, the connection's peer address, and
/// the bearer token.
pub fn request(bearer: &HeaderValue) -> Request<Body> {
    let mut request = unauthenticated_request();
    request.headers_mut().insert(AUTHORIZATION, bearer.clone());
    request
}

fn unauthenticated_request() -> Request<Body> {
    let mut request = Request::get("/me")
        .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
        .header("accept-language", "en-GB,en;q=0.9")
        .header("accept-encoding", "gzip, br")
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(PeerAddr(([192, 0, 2, 7], 40000).into()));
    request
}

/// The layer with a device fingerprint, client-IP binding and memory revocation, and a bearer
/// header whose token carries the matching `cnf` claims.
pub fn bound_router_and_bearer(key: &TestKey) -> (Router, HeaderValue) {
    let auth = JwtAuth::builder()
        .key(key.verification_key())
        .audience("bench")
        .binding(DeviceFingerprint::new())
        .binding(ClientIpBinding::new())
        .revocation(MemoryRevocationStore::new())
        .build()
        .unwrap();
    // The binding claims for this request, computed by the crate's own issuer.
    let helper = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [9u8; 32]).unwrap())
        .bindings_of(&auth)
        .build();
    // The memory-only bindings answer at once: no runtime needed to wait for them.
    let request = unauthenticated_request();
    let no_claims = serde_json::json!({});
    let minting = helper.mint_for(&request, "bench", &no_claims);
    let minted = futures_util::FutureExt::now_or_never(minting).expect("bound at once").unwrap();
    let payload = minted.token.split('.').nth(1).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&crate::harness::b64_decode(payload)).unwrap();
    let mut token_claims = claims("bench");
    token_claims["aud"] = "bench".into();
    token_claims["cnf"] = payload["cnf"].clone();
    token_claims["jti"] = "bench-jti".into();
    let bearer = HeaderValue::from_str(&format!("Bearer {}", key.sign(&token_claims))).unwrap();
    (Router::new().route("/me", get(guarded)).route_layer(auth.layer::<BenchClaims>()).with_state(()), bearer)
}

/// A route with no authentication: the baseline.
///
/// Every router here is finished with `with_state(())`, as `axum::serve` does through
/// `into_make_service`: routes and route layers are then built once, not on every request.
pub fn bare_router() -> Router {
    Router::new().route("/me", get(bare)).with_state(())
}

pub async fn bare() -> &'static str {
    "ok"
}

pub async fn guarded(_: Claims<BenchClaims>) -> &'static str {
    "ok"
}

pub fn guard_router(key: &TestKey, cache: bool) -> Router {
    let mut builder = JwtAuth::builder().key(key.verification_key()).audience("bench");
    if !cache {
        builder = builder.cache_capacity(0);
    }
    let auth = builder.build().unwrap();
    Router::new().route("/me", get(guarded)).route_layer(auth.layer::<BenchClaims>()).with_state(())
}

/// The layer of an existing configuration in front of the guarded route.
pub fn guard_router_for(auth: &JwtAuth) -> Router {
    Router::new().route("/me", get(guarded)).route_layer(auth.layer::<BenchClaims>()).with_state(())
}

/// jwt-authorizer (axum 0.7, jsonwebtoken 9 on ring).
pub mod jwt_authorizer_peer {
    use super::*;
    use jwt_authorizer::{AuthorizerBuilder, IntoLayer, JwtClaims, Validation};

    async fn handler(_: JwtClaims<BenchClaims>) -> &'static str {
        "ok"
    }

    pub async fn router(key: &TestKey) -> axum_07::Router {
        let builder = match key.alg {
            Algorithm::HS256 => {
                // jwt-authorizer takes the secret as text: the test secret is ASCII here.
                AuthorizerBuilder::<BenchClaims>::from_secret(std::str::from_utf8(&key.public_raw).unwrap())
            }
            Algorithm::RS256 => AuthorizerBuilder::from_rsa_pem_text(&key.public_pem),
            Algorithm::ES256 => AuthorizerBuilder::from_ec_pem_text(&key.public_pem),
            _ => AuthorizerBuilder::from_ed_pem_text(&key.public_pem),
        };
        let authorizer = builder.validation(Validation::new().aud(&["bench"])).build().await.unwrap();
        axum_07::Router::new()
            .route("/me", axum_07::routing::get(handler))
            .layer(vec![authorizer].into_layer())
            .with_state(())
    }
}

/// axum-jwt-auth (axum 0.8, jsonwebtoken 10 on pure-Rust crypto).
pub mod axum_jwt_auth_peer {
    use super::*;
    use axum_jwt_auth::{Claims as PeerClaims, Decoder, LocalDecoder};
    use jsonwebtoken_10 as jwt10;
    use std::sync::Arc;

    async fn handler(_: PeerClaims<BenchClaims>) -> &'static str {
        "ok"
    }

    pub fn router(key: &TestKey) -> Router {
        let (decoding, alg) = match key.alg {
            Algorithm::HS256 => (jwt10::DecodingKey::from_secret(&key.public_raw), jwt10::Algorithm::HS256),
            Algorithm::RS256 => (
                jwt10::DecodingKey::from_rsa_pem(key.public_pem.as_bytes()).unwrap(),
                jwt10::Algorithm::RS256,
            ),
            Algorithm::ES256 => {
                (jwt10::DecodingKey::from_ec_pem(key.public_pem.as_bytes()).unwrap(), jwt10::Algorithm::ES256)
            }
            _ => {
                (jwt10::DecodingKey::from_ed_pem(key.public_pem.as_bytes()).unwrap(), jwt10::Algorithm::EdDSA)
            }
        };
        // axum-jwt-auth insists on an audience; the bench tokens carry `aud: bench`.
        let mut validation = jwt10::Validation::new(alg);
        validation.set_audience(&["bench"]);
        let decoder: Decoder<BenchClaims> =
            Arc::new(LocalDecoder::builder().keys(vec![decoding]).validation(validation).build().unwrap());
        Router::new().route("/me", get(handler)).with_state(decoder)
    }
}

/// A key for `alg` and a bearer header with a token it signed (`aud: bench`, valid 10 minutes).
pub fn key_and_bearer(alg: Algorithm) -> (TestKey, HeaderValue) {
    let key = match alg {
        Algorithm::HS256 => TestKey::hmac(alg, b"bench-secret-bench-secret-bench-secret!!"),
        _ => TestKey::generate(alg),
    };
    let mut token_claims = claims("bench");
    token_claims["aud"] = "bench".into();
    let bearer = HeaderValue::from_str(&format!("Bearer {}", key.sign(&token_claims))).unwrap();
    (key, bearer)
}
