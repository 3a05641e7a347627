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

criterion_group!(benches, overhead);
criterion_main!(benches);
