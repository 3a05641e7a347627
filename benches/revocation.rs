//! The hot-path cost of the revocation check (`RevocationStore::check`), per request:
//! the memory store (empty, and holding 10 000 live revocations) and the Redis store answering
//! from its local cache. The Redis case starts a private `redis-server` on a free loopback port
//! when one is on the PATH (or uses `REDIS_URL`), and is left out otherwise.
//!
//! `cargo bench --bench revocation --features redis`

#[path = "../tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationCheck, RevocationStore};
use tower_jwt_guard::TokenFacts;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn facts(jti: &str) -> TokenFacts {
    let now = now();
    let mut facts = TokenFacts::default();
    facts.subject = Some("alice".into());
    facts.jti = Some(jti.into());
    facts.issued_at = Some(now);
    facts.expires_at = Some(now + 900);
    facts
}

fn assert_valid(answer: RevocationCheck) {
    assert!(matches!(answer, RevocationCheck::Valid), "{answer:?}");
}

fn revocation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("revocation check");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    let token = facts("a-live-token");

    let empty = MemoryRevocationStore::new();
    assert_valid(empty.check(&token));
    group.bench_function("memory, nothing revoked", |b| b.iter(|| black_box(empty.check(black_box(&token)))));

    let busy = MemoryRevocationStore::new();
    runtime.block_on(async {
        for i in 0..10_000 {
            busy.revoke_token(None, &format!("revoked-{i}"), now() + 900).await.unwrap();
        }
    });
    assert_valid(busy.check(&token));
    group.bench_function("memory, 10 000 live revocations", |b| {
        b.iter(|| black_box(busy.check(black_box(&token))))
    });

    #[cfg(feature = "redis")]
    redis_local_cache(&mut group, &runtime, &token);
    group.finish();
}

#[cfg(feature = "redis")]
fn redis_local_cache(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    token: &TokenFacts,
) {
    use tower_jwt_guard::revocation::RedisRevocationStore;
    let Some(redis) = redis_server::Redis::for_test("revocation bench") else { return };
    let _guard = runtime.enter();
    let store = RedisRevocationStore::builder(&redis.url()).unwrap().key_prefix("bench:").build().unwrap();
    // The first check asks Redis; later ones answer from the local cache (once subscribed).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match store.check(token) {
            RevocationCheck::Valid => break,
            RevocationCheck::Pending(answer) => assert_valid(runtime.block_on(answer)),
            other => panic!("{other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "the local cache never answered");
        runtime.block_on(tokio::time::sleep(Duration::from_millis(20)));
    }
    group.bench_function("redis, local-cache hit", |b| b.iter(|| black_box(store.check(black_box(token)))));
    drop(redis);
}

criterion_group!(benches, revocation);
criterion_main!(benches);
