//! The cost of the metrics (feature `metrics`) on a request: a cache hit and an uncached HS256
//! verification, without a recorder (the handles do nothing) and with the Prometheus recorder
//! installed (what a deployment runs).
//!
//! `cargo bench --bench metrics` (add `-- --quick` for a fast look).

#[path = "../tests/harness/mod.rs"]
mod harness;
mod routers;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use routers::{guard_router, key_and_bearer, request};
use tower::ServiceExt as _;
use tower_jwt_guard::Algorithm;

fn metrics_cost(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (key, bearer) = key_and_bearer(Algorithm::HS256);
    let mut group = c.benchmark_group("metrics");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));

    for recorder in [false, true] {
        // The recorder is this thread's for the rest of the iteration (criterion runs here), and
        // the routers are built and first used under it, as in a service.
        let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let _guard = recorder.then(|| metrics::set_default_local_recorder(&prometheus));
        let label = if recorder { "prometheus recorder" } else { "no recorder" };
        let cached = guard_router(&key, true);
        let uncached = guard_router(&key, false);
        for router in [&cached, &uncached] {
            let status = runtime.block_on(router.clone().oneshot(request(&bearer))).unwrap().status();
            assert_eq!(status, 200);
        }
        group.bench_function(BenchmarkId::new("cache hit", label), |b| {
            b.to_async(&runtime).iter(|| cached.clone().oneshot(request(&bearer)))
        });
        group.bench_function(BenchmarkId::new("HS256 uncached", label), |b| {
            b.to_async(&runtime).iter(|| uncached.clone().oneshot(request(&bearer)))
        });
        // What the layer adds per cache hit, alone: two lazily registered counters (the
        // decision, the cache lookup), each an atomic load and the recorder's increment.
        let decision = std::sync::OnceLock::new();
        let lookup = std::sync::OnceLock::new();
        group.bench_function(BenchmarkId::new("two counter handles", label), |b| {
            b.iter(|| {
                decision
                    .get_or_init(
                        || metrics::counter!("bench.decisions", "outcome" => "accepted", "code" => "OK"),
                    )
                    .increment(1);
                lookup.get_or_init(|| metrics::counter!("bench.lookups", "result" => "hit")).increment(1);
            })
        });
        if recorder {
            assert!(prometheus.handle().render().contains("jwt_guard_decisions"), "the recorder saw nothing");
        }
    }
    group.finish();
}

criterion_group!(benches, metrics_cost);
criterion_main!(benches);
