//! The cost of an introspection cache hit (an opaque token whose answer is remembered) against a
//! JWT cache hit, through the same route, with the same claims, next to a bare route. The
//! introspection endpoint runs on loopback and is asked once, before the measurement.
//!
//! `cargo bench --bench introspection --features introspection`

#[path = "../tests/harness/mod.rs"]
mod harness;
mod routers;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::HeaderValue;
use routers::{bare_router, guard_router, key_and_bearer, request, BenchClaims};
use serde_json::json;
use tower::ServiceExt as _;
use tower_jwt_guard::keys::Introspector;
use tower_jwt_guard::{Algorithm, Claims, JwtAuth};

async fn guarded(_: Claims<BenchClaims>) -> &'static str {
    "ok"
}

fn introspection(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let endpoint = Router::new().route(
        "/introspect",
        post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let now = harness::now();
            async move {
                Json(json!({ "active": true, "sub": "bench", "aud": "bench", "iat": now, "exp": now + 600 }))
            }
        }),
    );
    let url = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, endpoint).await.unwrap() });
        url
    });

    let (key, jwt_bearer) = key_and_bearer(Algorithm::HS256);
    let introspector =
        Introspector::builder(&url).client_secret_basic("bench", "bench-secret").build().unwrap();
    let auth = JwtAuth::builder().introspection(introspector).audience("bench").build().unwrap();
    let introspected =
        Router::new().route("/me", get(guarded)).route_layer(auth.layer::<BenchClaims>()).with_state(());
    // An opaque token of a common shape: 43 base64url characters (32 random bytes).
    let opaque = HeaderValue::from_static("Bearer ohmb5tksBpPDsDv3xoUrd29V6SsNX_jk1Bd4tblLPT5");
    let jwt = guard_router(&key, true);
    let bare = bare_router();

    for (name, router, bearer) in [("jwt", &jwt, &jwt_bearer), ("introspected", &introspected, &opaque)] {
        let status = runtime.block_on(router.clone().oneshot(request(bearer))).unwrap().status();
        assert_eq!(status, 200, "{name}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let mut group = c.benchmark_group("cache hit");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    group.bench_function(BenchmarkId::new("bare route", ""), |b| {
        b.to_async(&runtime).iter(|| bare.clone().oneshot(request(&jwt_bearer)))
    });
    group.bench_function(BenchmarkId::new("JWT (HS256) cached", ""), |b| {
        b.to_async(&runtime).iter(|| jwt.clone().oneshot(request(&jwt_bearer)))
    });
    group.bench_function(BenchmarkId::new("opaque token introspected, cached", ""), |b| {
        b.to_async(&runtime).iter(|| introspected.clone().oneshot(request(&opaque)))
    });
    group.finish();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "every measured request was a cache hit");
}

criterion_group!(benches, introspection);
criterion_main!(benches);
