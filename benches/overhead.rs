//! Per-request overhead of the layer over a bare axum route, in-process, per algorithm, cached
//! and uncached, next to the same request through the peers jwt-authorizer and axum-jwt-auth,
//! and the bare signature check of the crypto backend.
//!
//! `cargo bench --bench overhead` (add `-- --quick` for a fast look).

#[path = "../tests/harness/mod.rs"]
mod harness;
mod routers;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use routers::{
    axum_jwt_auth_peer, bare_router, bound_router_and_bearer, guard_router, jwt_authorizer_peer,
    key_and_bearer, request, ALGORITHMS,
};
use tower::ServiceExt as _;
use tower_jwt_guard::Algorithm;

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for alg in ALGORITHMS {
        let (key, bearer) = key_and_bearer(alg);
        let mut group = c.benchmark_group(format!("{alg:?}"));
        group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));

        let bare_router = bare_router();
        let cached = guard_router(&key, true);
        let uncached = guard_router(&key, false);
        let authorizer = runtime.block_on(jwt_authorizer_peer::router(&key));
        let axum_jwt_auth = axum_jwt_auth_peer::router(&key);
        let (bound, bound_bearer) = bound_router_and_bearer(&key);

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
        group.bench_function(
            BenchmarkId::new("tower-jwt-guard cached + fingerprint + IP + revocation", ""),
            |b| b.to_async(&runtime).iter(|| bound.clone().oneshot(request(&bound_bearer))),
        );
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

/// The cost of issuer selection: the same HS256 token, uncached, verified by a configuration with
/// one issuer and by one with three (its issuer last), so the difference is the selection (the
/// payload read before the signature check, the `iss` lookup). Through the router, and the
/// verification step alone.
///
/// `cargo bench --bench overhead -- "issuer selection"`
fn issuer_selection(c: &mut Criterion) {
    use tower_jwt_guard::{Issuer, JwtAuth};

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (key, _) = key_and_bearer(Algorithm::HS256);
    let mut token_claims = harness::claims("bench");
    token_claims["aud"] = "bench".into();
    token_claims["iss"] = "https://c.example.com".into();
    let token = key.sign(&token_claims);
    let bearer = http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();

    let one = JwtAuth::builder()
        .key(key.verification_key())
        .issuer("https://c.example.com")
        .audience("bench")
        .cache_capacity(0)
        .build()
        .unwrap();
    let three = JwtAuth::builder()
        .trust(Issuer::new("https://a.example.com").hmac_secret([1u8; 32]).audience("bench"))
        .trust(Issuer::new("https://b.example.com").hmac_secret([2u8; 32]).audience("bench"))
        .trust(Issuer::new("https://c.example.com").key(key.verification_key()).audience("bench"))
        .cache_capacity(0)
        .build()
        .unwrap();

    let mut group = c.benchmark_group("issuer selection");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    for (name, auth) in [("one issuer", &one), ("three issuers", &three)] {
        let router = routers::guard_router_for(auth);
        let status = runtime.block_on(router.clone().oneshot(request(&bearer))).unwrap().status();
        assert_eq!(status, 200, "{name}");
        group.bench_function(BenchmarkId::new("uncached request", name), |b| {
            b.to_async(&runtime).iter(|| router.clone().oneshot(request(&bearer)))
        });
    }
    group.finish();
}

criterion_group!(benches, overhead, issuer_selection);
criterion_main!(benches);
