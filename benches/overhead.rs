//! Per-request overhead of the layer over a bare axum route, in-process, per algorithm, cached
//! and uncached, next to the same request through the peers jwt-authorizer and axum-jwt-auth,
//! and the bare signature check of the crypto backend.
//!
//! `cargo bench --bench overhead` (add `-- --quick` for a fast look).

#[path = "../tests/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use harness::{claims, TestKey};
use http::{header::AUTHORIZATION, HeaderValue, Request};
use serde_json::Value;
use tower::ServiceExt as _;
use tower_jwt_guard::{Algorithm, Claims, JwtAuth};

const ALGORITHMS: [Algorithm; 4] = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

fn request(bearer: &HeaderValue) -> Request<Body> {
    let mut request = Request::get("/me").body(Body::empty()).unwrap();
    request.headers_mut().insert(AUTHORIZATION, bearer.clone());
    request
}

async fn bare() -> &'static str {
    "ok"
}

async fn guarded(_: Claims<Value>) -> &'static str {
    "ok"
}

fn guard_router(key: &TestKey, cache: bool) -> Router {
    let mut builder = JwtAuth::builder().key(key.verification_key());
    if !cache {
        builder = builder.cache_capacity(0);
    }
    let auth = builder.build().unwrap();
    Router::new().route("/me", get(guarded)).route_layer(auth.layer::<Value>())
}

/// jwt-authorizer (axum 0.7, jsonwebtoken 9 on ring).
mod jwt_authorizer_peer {
    use super::*;
    use jwt_authorizer::{AuthorizerBuilder, IntoLayer, JwtClaims, Validation};

    async fn handler(_: JwtClaims<Value>) -> &'static str {
        "ok"
    }

    pub(super) async fn router(key: &TestKey) -> axum_07::Router {
        let builder = match key.alg {
            Algorithm::HS256 => {
                // jwt-authorizer takes the secret as text: the test secret is ASCII here.
                AuthorizerBuilder::<Value>::from_secret(std::str::from_utf8(&key.public_raw).unwrap())
            }
            Algorithm::RS256 => AuthorizerBuilder::from_rsa_pem_text(&key.public_pem),
            Algorithm::ES256 => AuthorizerBuilder::from_ec_pem_text(&key.public_pem),
            _ => AuthorizerBuilder::from_ed_pem_text(&key.public_pem),
        };
        let authorizer = builder.validation(Validation::new().aud(&["bench"])).build().await.unwrap();
        axum_07::Router::new()
            .route("/me", axum_07::routing::get(handler))
            .layer(vec![authorizer].into_layer())
    }
}

/// axum-jwt-auth (axum 0.8, jsonwebtoken 10 on pure-Rust crypto).
mod axum_jwt_auth_peer {
    use super::*;
    use axum_jwt_auth::{Claims as PeerClaims, Decoder, LocalDecoder};
    use jsonwebtoken_10 as jwt10;
    use std::sync::Arc;

    async fn handler(_: PeerClaims<Value>) -> &'static str {
        "ok"
    }

    pub(super) fn router(key: &TestKey) -> Router {
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
        let decoder: Decoder<Value> =
            Arc::new(LocalDecoder::builder().keys(vec![decoding]).validation(validation).build().unwrap());
        Router::new().route("/me", get(handler)).with_state(decoder)
    }
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for alg in ALGORITHMS {
        let key = match alg {
            Algorithm::HS256 => TestKey::hmac(alg, b"bench-secret-bench-secret-bench-secret!!"),
            _ => TestKey::generate(alg),
        };
        let mut token_claims = claims("bench");
        token_claims["aud"] = "bench".into();
        let bearer = HeaderValue::from_str(&format!("Bearer {}", key.sign(&token_claims))).unwrap();
        let mut group = c.benchmark_group(format!("{alg:?}"));
        group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));

        let bare_router = Router::new().route("/me", get(bare));
        let cached = guard_router(&key, true);
        let uncached = guard_router(&key, false);
        let authorizer = runtime.block_on(jwt_authorizer_peer::router(&key));
        let axum_jwt_auth = axum_jwt_auth_peer::router(&key);

        // Every router must say 200 to this request, or the comparison is meaningless.
        for (name, status) in [
            ("bare", runtime.block_on(bare_router.clone().oneshot(request(&bearer))).unwrap().status()),
            ("cached", runtime.block_on(cached.clone().oneshot(request(&bearer))).unwrap().status()),
            ("uncached", runtime.block_on(uncached.clone().oneshot(request(&bearer))).unwrap().status()),
            (
                "jwt-authorizer",
                runtime.block_on(authorizer.clone().oneshot(request(&bearer))).unwrap().status(),
            ),
            (
                "axum-jwt-auth",
                runtime.block_on(axum_jwt_auth.clone().oneshot(request(&bearer))).unwrap().status(),
            ),
        ] {
            assert_eq!(status, 200, "{alg:?} {name}");
        }

        group.bench_function(BenchmarkId::new("bare route", ""), |b| {
            b.to_async(&runtime).iter(|| bare_router.clone().oneshot(request(&bearer)))
        });
        group.bench_function(BenchmarkId::new("tower-jwt-guard cached", ""), |b| {
            b.to_async(&runtime).iter(|| cached.clone().oneshot(request(&bearer)))
        });
        group.bench_function(BenchmarkId::new("tower-jwt-guard uncached", ""), |b| {
            b.to_async(&runtime).iter(|| uncached.clone().oneshot(request(&bearer)))
        });
        group.bench_function(BenchmarkId::new("jwt-authorizer", ""), |b| {
            b.to_async(&runtime).iter(|| authorizer.clone().oneshot(request(&bearer)))
        });
        group.bench_function(BenchmarkId::new("axum-jwt-auth", ""), |b| {
            b.to_async(&runtime).iter(|| axum_jwt_auth.clone().oneshot(request(&bearer)))
        });

        // The floor: the crypto backend's signature check alone, on the same token.
        let verification = key.verification_key();
        let token = bearer.to_str().unwrap().trim_start_matches("Bearer ").to_string();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = harness::b64_decode(signature);
        assert!(verification.verify(input.as_bytes(), &signature));
        group.bench_function(BenchmarkId::new("signature check alone", ""), |b| {
            b.iter(|| verification.verify(input.as_bytes(), &signature))
        });
        group.finish();
    }
}

criterion_group!(benches, overhead);
criterion_main!(benches);
