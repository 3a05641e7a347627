//! How the per-request cost grows as each dimension grows alone, and what each entry of each
//! store costs in memory. Each point is one request through an axum router (the guarded route
//! of `benches/routers`), on a verified-token cache hit and uncached:
//!
//! - trusted issuers 1 → 10⁴, as a list of `Issuer`s and as a tenant pattern (`TenantKeys`,
//!   every tenant discovered from a loopback identity provider; feature `jwks`);
//! - keys in one key set 1 → 10³, static (`StaticKeys`) and in a JWKS served over loopback
//!   (`JwksKeys`, feature `jwks`);
//! - revoked `jti`s 0 → 10⁶ in the memory store, and in Redis with the local cache (feature
//!   `redis`; a private `redis-server` on an ephemeral port, or `REDIS_URL`; the series is left
//!   out with a message when neither is there);
//! - distinct tokens in the verified-token cache 10³ → 10⁶;
//! - DPoP replay entries 0 → 10⁶ in the memory replay store (ES256 proofs, one fresh proof per
//!   request, made outside the measurement).
//!
//! The memory revocation store's check is measured alone too (the `store` series). Memory per entry
//! (`scale_memory`) is counted by this bench's global allocator: the bytes live after filling a
//! store with N entries, less those live before it was made, divided by the entries it holds.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/wt/bench-target cargo bench --all-features --bench scale -- --warm-up-time 1 --measurement-time 3
//! cargo bench --all-features --bench scale -- scale_tenants   # one dimension (also: scale_memory)
//! ```
//!
//! `SCALE_TENANTS_CONTROL=1` measures one more point after the tenants series: one tenant of a
//! pattern of its own, in the process that holds the 10 000 others (group
//! `scale_tenants_control`).
//! `SCALE_REDIS_NO_FILL=1` runs the Redis series with nothing revoked in Redis: a control for
//! the machine's noise (the round trips go through two other processes on loopback).
//!
//! Every run writes `target/scale.svg` (one panel per dimension, from criterion's estimates on
//! disk, so runs of single dimensions add up) and prints the figures.

#[path = "../tests/harness/mod.rs"]
mod harness;
#[cfg(feature = "redis")]
#[path = "../tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;
mod routers;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use axum::body::Body;
use criterion::{BatchSize, BenchmarkId, Criterion};
use http::HeaderValue;
use serde_json::json;
use tower::ServiceExt as _;
use tower_jwt_guard::revocation::{
    MemoryReplayStore, MemoryRevocationStore, ReplayCheck, ReplayKey, ReplayStore as _, RevocationCheck,
    RevocationStore as _,
};
use tower_jwt_guard::{Algorithm, Dpop, Issuer, JwtAuth, TokenFacts, VerificationKey};

use harness::{b64, claims, TestKey};

/// The global allocator, counting the bytes live while [`COUNTING`] is on (and only then: the
/// timed requests pay nothing for it).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn count(bytes: usize, sign: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(sign * bytes as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size(), 1);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size(), 1);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        count(layout.size(), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size, 1);
            count(layout.size(), -1);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bytes allocated (and not freed) while `fill` runs, with what it returns.
fn live_bytes_after<T>(fill: impl FnOnce() -> T) -> (isize, T) {
    LIVE.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let kept = fill();
    COUNTING.store(false, Ordering::SeqCst);
    (LIVE.load(Ordering::SeqCst), kept)
}

/// One dimension: its name (criterion's group), its label on the plot, the sizes measured, and
/// the store whose memory per entry its panel shows.
struct Dimension {
    group: &'static str,
    label: &'static str,
    sizes: &'static [usize],
    memory: Option<&'static str>,
}

const ISSUERS: Dimension = Dimension {
    group: "scale_issuers",
    label: "trusted issuers (list)",
    sizes: &[1, 100, 10_000],
    memory: None,
};
const TENANTS: Dimension = Dimension {
    group: "scale_tenants",
    label: "tenants of one pattern (EdDSA)",
    sizes: &[1, 100, 10_000],
    memory: Some("tenant"),
};
const KEYS: Dimension = Dimension {
    group: "scale_keys",
    label: "keys in one static key set",
    sizes: &[1, 10, 100, 1_000],
    memory: None,
};
const JWKS_KEYS: Dimension = Dimension {
    group: "scale_jwks_keys",
    label: "keys in one JWKS (EdDSA)",
    sizes: &[1, 10, 100, 1_000],
    memory: None,
};
const REVOKED: Dimension = Dimension {
    group: "scale_revoked",
    label: "revoked jtis (memory store)",
    sizes: &[0, 1_000, 100_000, 1_000_000],
    memory: Some("revocation memory store"),
};
const REDIS_REVOKED: Dimension = Dimension {
    group: "scale_redis_revoked",
    label: "revoked jtis (Redis, local cache)",
    sizes: &[0, 1_000, 100_000, 1_000_000],
    memory: Some("Redis local cache"),
};
const CACHED_TOKENS: Dimension = Dimension {
    group: "scale_cached_tokens",
    label: "distinct tokens in the cache",
    sizes: &[1_000, 10_000, 100_000, 1_000_000],
    memory: Some("verified-token cache"),
};
const REPLAY: Dimension = Dimension {
    group: "scale_replay",
    label: "DPoP replay entries (ES256)",
    sizes: &[0, 1_000, 100_000, 1_000_000],
    memory: Some("DPoP replay store"),
};

const DIMENSIONS: [&Dimension; 8] =
    [&ISSUERS, &TENANTS, &KEYS, &JWKS_KEYS, &REVOKED, &REDIS_REVOKED, &CACHED_TOKENS, &REPLAY];

/// The memory figures' group (not a criterion group: written by [`memory`]).
const MEMORY_GROUP: &str = "scale_memory";

const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret!!";
/// Where the DPoP dimension's service says it is.
const PUBLIC_URL: &str = "https://api.example.com";

/// Whether the command line selects `group`: no filter, or one of the alternatives of the
/// filter (`a|b`) is part of its name. Criterion applies the filter, a regular expression, to the
/// benchmark ids; this skips the set-up of the dimensions it leaves out (the setting values
/// are numbers).
fn selected(group: &str) -> bool {
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-') && arg.parse::<f64>().is_err());
    filter.is_none_or(|filter| filter.split('|').any(|alternative| group.contains(alternative)))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A runtime of its own for the servers and the stores' background tasks: it keeps running
/// while the measuring thread is between requests.
fn background() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn serve(runtime: &tokio::runtime::Runtime, router: &axum::Router, bearer: &HeaderValue) {
    serve_request(runtime, router, routers::request(bearer));
}

fn serve_request(runtime: &tokio::runtime::Runtime, router: &axum::Router, request: http::Request<Body>) {
    let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
    assert_eq!(response.status(), 200);
    black_box(response);
}

fn bearer(token: String) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

fn token_claims(sub: &str) -> serde_json::Value {
    let mut token_claims = claims(sub);
    token_claims["aud"] = "bench".into();
    token_claims
}

fn group<'c>(
    c: &'c mut Criterion,
    dimension: &Dimension,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(dimension.group);
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group
}

/// Measures `router` on a cache hit and uncached, at one size of a dimension.
fn measure(
    c: &mut Criterion,
    dimension: &Dimension,
    size: usize,
    build: impl Fn(bool) -> axum::Router,
    bearer: &HeaderValue,
) {
    let runtime = runtime();
    let mut group = group(c, dimension);
    for (name, cache) in [("hit", true), ("uncached", false)] {
        let router = build(cache);
        serve(&runtime, &router, bearer);
        group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
            b.iter(|| serve(&runtime, &router, bearer))
        });
    }
    group.finish();
}

fn issuers(c: &mut Criterion) {
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    for &size in ISSUERS.sizes {
        // The token names the last issuer of the list.
        let mut token_claims = token_claims("bench");
        token_claims["iss"] = format!("https://issuer-{}.example", size - 1).into();
        let bearer = bearer(key.sign(&token_claims));
        let build = |cache: bool| {
            let mut builder = JwtAuth::builder();
            for i in 0..size {
                builder = builder.trust(
                    Issuer::new(format!("https://issuer-{i}.example"))
                        .key(key.verification_key())
                        .audience("bench"),
                );
            }
            if !cache {
                builder = builder.cache_capacity(0);
            }
            routers::guard_router_for(&builder.build().unwrap())
        };
        measure(c, &ISSUERS, size, build, &bearer);
    }
}

fn keys(c: &mut Criterion) {
    for &size in KEYS.sizes {
        // The token is signed by the last key of the set.
        let secret = |i: usize| format!("bench-secret-{i:06}-bench-secret-bench-secret");
        let signer = TestKey::hmac(Algorithm::HS256, secret(size - 1).as_bytes());
        let kid = format!("key-{}", size - 1);
        let bearer = bearer(signer.sign_with_header(json!({ "kid": kid }), &token_claims("bench")));
        let build = |cache: bool| {
            let mut builder = JwtAuth::builder().audience("bench");
            for i in 0..size {
                let key =
                    VerificationKey::hmac(Algorithm::HS256, secret(i)).unwrap().with_kid(format!("key-{i}"));
                builder = builder.key(key);
            }
            if !cache {
                builder = builder.cache_capacity(0);
            }
            routers::guard_router_for(&builder.build().unwrap())
        };
        measure(c, &KEYS, size, build, &bearer);
    }
}

/// The loopback identity provider of the `jwks` dimensions: tenants' discovery documents, and
/// JWKS documents of 1 to 1 000 Ed25519 keys.
#[cfg(feature = "jwks")]
mod idp {
    use std::collections::HashMap;
    use std::sync::Arc;

    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use axum::extract::{Path, State};
    use axum::routing::get;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    use crate::harness::b64;

    pub struct Idp {
        pub base: String,
        /// The signing keys; key `i`'s `kid` is `key-{i}`.
        pub pairs: Arc<Vec<Ed25519KeyPair>>,
    }

    struct Documents {
        base: String,
        /// JWKS documents of the first `n` keys, by `n`.
        jwks: HashMap<usize, Value>,
    }

    impl Idp {
        /// Starts on 127.0.0.1 (ephemeral port) on `runtime`, serving JWKS documents of the
        /// first `n` keys for each `n` of `sizes`.
        pub fn start(runtime: &tokio::runtime::Runtime, sizes: &[usize]) -> Idp {
            let most = sizes.iter().copied().max().unwrap_or(1);
            let pairs: Vec<Ed25519KeyPair> = (0..most).map(|_| Ed25519KeyPair::generate().unwrap()).collect();
            let jwk = |i: usize, pair: &Ed25519KeyPair| json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": format!("key-{i}"), "x": b64(pair.public_key().as_ref()) });
            let jwks = sizes
                .iter()
                .map(|&n| (n, json!({ "keys": pairs.iter().take(n).enumerate().map(|(i, p)| jwk(i, p)).collect::<Vec<_>>() })))
                .collect();
            let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let documents = Arc::new(Documents { base: base.clone(), jwks });
            let app = Router::new()
                .route("/jwks/{n}", get(jwks_of))
                .route("/t/{tenant}/.well-known/openid-configuration", get(discovery))
                .with_state(documents);
            runtime.spawn(async move { axum::serve(listener, app).await });
            Idp { base, pairs: Arc::new(pairs) }
        }

        /// The JWKS URL of the first `n` keys.
        pub fn jwks_url(&self, n: usize) -> String {
            format!("{}/jwks/{n}", self.base)
        }

        /// The tenant pattern.
        pub fn pattern(&self) -> String {
            format!("{}/t/{{tenant}}", self.base)
        }

        /// A tenant's issuer.
        pub fn tenant(&self, tenant: &str) -> String {
            format!("{}/t/{tenant}", self.base)
        }
    }

    async fn jwks_of(State(documents): State<Arc<Documents>>, Path(n): Path<usize>) -> Json<Value> {
        Json(documents.jwks.get(&n).cloned().unwrap_or_else(|| json!({ "keys": [] })))
    }

    /// Every tenant publishes the one-key JWKS.
    async fn discovery(State(documents): State<Arc<Documents>>, Path(tenant): Path<String>) -> Json<Value> {
        let base = &documents.base;
        Json(json!({ "issuer": format!("{base}/t/{tenant}"), "jwks_uri": format!("{base}/jwks/1") }))
    }
}

/// An EdDSA token signed with `pair`, naming `kid` and `iss`.
#[cfg(feature = "jwks")]
fn eddsa_token(pair: &aws_lc_rs::signature::Ed25519KeyPair, kid: &str, iss: Option<&str>) -> String {
    let header = b64(json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid }).to_string());
    let mut token_claims = token_claims("bench");
    if let Some(iss) = iss {
        token_claims["iss"] = iss.into();
    }
    let payload = b64(token_claims.to_string());
    let signature = pair.sign(format!("{header}.{payload}").as_bytes());
    format!("{header}.{payload}.{}", b64(signature.as_ref()))
}

#[cfg(feature = "jwks")]
fn tenants(
    c: &mut Criterion,
    background: &tokio::runtime::Runtime,
    idp: &idp::Idp,
    memory: &mut Vec<Memory>,
) {
    use tower_jwt_guard::keys::TenantKeys;

    let most = *TENANTS.sizes.last().unwrap();
    let names: Vec<String> = (0..most).map(|i| format!("tenant-{i:05}")).collect();
    let pair = &idp.pairs[0];
    let mut admitted = 0;
    let tenant_keys = TenantKeys::builder(idp.pattern())
        .allow(names.iter().cloned())
        .max_tenants(most)
        .new_tenants(most, Duration::from_secs(1))
        .build()
        .unwrap();
    let build = |cache: bool| {
        let mut builder = JwtAuth::builder()
            .trust(Issuer::tenants(tenant_keys.clone()).algorithms([Algorithm::EdDSA]).audience("bench"));
        if !cache {
            builder = builder.cache_capacity(0);
        }
        routers::guard_router_for(&builder.build().unwrap())
    };
    let warm = build(false);
    for &size in TENANTS.sizes {
        // Admit the tenants up to `size` (each one discovery and one JWKS fetch, on loopback),
        // counting the memory of the last step.
        let (bytes, ()) = live_bytes_after(|| {
            for name in &names[admitted..size] {
                let bearer = bearer(eddsa_token(pair, "key-0", Some(&idp.tenant(name))));
                let response = background.block_on(warm.clone().oneshot(routers::request(&bearer))).unwrap();
                assert_eq!(response.status(), 200, "{name}");
            }
        });
        if size - admitted >= 1_000 {
            memory.push(Memory {
                store: "tenant",
                bytes_per_entry: bytes as f64 / (size - admitted) as f64,
                entries: size - admitted,
            });
        }
        admitted = size;
        assert_eq!(tenant_keys.tenants_held(), size);
        // The token of the last tenant admitted.
        let bearer = bearer(eddsa_token(pair, "key-0", Some(&idp.tenant(&names[size - 1]))));
        measure(c, &TENANTS, size, build, &bearer);
    }
    if std::env::var_os("SCALE_TENANTS_CONTROL").is_some() {
        // A control: one tenant held by a pattern of its own, measured in this process after
        // the 10 000 tenants above were admitted (criterion group `scale_tenants_control`).
        let one = TenantKeys::builder(idp.pattern()).allow([names[0].as_str()]).build().unwrap();
        let build = |cache: bool| {
            let mut builder = JwtAuth::builder()
                .trust(Issuer::tenants(one.clone()).algorithms([Algorithm::EdDSA]).audience("bench"));
            if !cache {
                builder = builder.cache_capacity(0);
            }
            routers::guard_router_for(&builder.build().unwrap())
        };
        let bearer = bearer(eddsa_token(pair, "key-0", Some(&idp.tenant(&names[0]))));
        let router = build(false);
        let response = background.block_on(router.oneshot(routers::request(&bearer))).unwrap();
        assert_eq!(response.status(), 200);
        let control = Dimension { group: "scale_tenants_control", ..TENANTS };
        measure(c, &control, 1, build, &bearer);
    }
}

#[cfg(feature = "jwks")]
fn jwks_keys(c: &mut Criterion, background: &tokio::runtime::Runtime, idp: &idp::Idp) {
    use tower_jwt_guard::keys::JwksKeys;

    for &size in JWKS_KEYS.sizes {
        // The token is signed by the last key of the document.
        let bearer = bearer(eddsa_token(&idp.pairs[size - 1], &format!("key-{}", size - 1), None));
        let build = |cache: bool| {
            // Made on the background runtime: its refresh runs there.
            let keys = background.block_on(async { JwksKeys::builder(idp.jwks_url(size)).build().unwrap() });
            let mut builder =
                JwtAuth::builder().key_source(keys).algorithms([Algorithm::EdDSA]).audience("bench");
            if !cache {
                builder = builder.cache_capacity(0);
            }
            let router = routers::guard_router_for(&builder.build().unwrap());
            // The first request waits for the fetch.
            let response = background.block_on(router.clone().oneshot(routers::request(&bearer))).unwrap();
            assert_eq!(response.status(), 200);
            router
        };
        measure(c, &JWKS_KEYS, size, build, &bearer);
    }
}

fn live_jti_token() -> (TestKey, HeaderValue) {
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let mut token_claims = token_claims("bench");
    token_claims["jti"] = "a-live-token".into();
    let bearer = bearer(key.sign(&token_claims));
    (key, bearer)
}

fn facts(jti: &str) -> TokenFacts {
    let mut facts = TokenFacts::default();
    facts.jti = Some(jti.into());
    facts.subject = Some("bench".into());
    facts.issued_at = Some(harness::now());
    facts
}

fn revoked(c: &mut Criterion) {
    let (key, bearer) = live_jti_token();
    let runtime = runtime();
    for &size in REVOKED.sizes {
        let store = MemoryRevocationStore::with_capacity(size as u64 + 1);
        runtime.block_on(async {
            for i in 0..size {
                store.revoke_token(None, &format!("revoked-{i}"), harness::now() + 3600).await.unwrap();
            }
        });
        let build = |cache: bool| {
            let mut builder =
                JwtAuth::builder().key(key.verification_key()).audience("bench").revocation(store.clone());
            if !cache {
                builder = builder.cache_capacity(0);
            }
            routers::guard_router_for(&builder.build().unwrap())
        };
        measure(c, &REVOKED, size, build, &bearer);
        // The store's check alone: a live token, and (past 0) a revoked one.
        let live = facts("a-live-token");
        let mut group = group(c, &REVOKED);
        group.bench_with_input(BenchmarkId::new("store", size), &size, |b, _| {
            b.iter(|| assert!(matches!(store.check(black_box(&live)), RevocationCheck::Valid)))
        });
        group.finish();
        if size > 0 {
            assert!(matches!(
                store.check(&facts(&format!("revoked-{}", size - 1))),
                RevocationCheck::Revoked
            ));
        }
    }
}

#[cfg(feature = "redis")]
fn redis_revoked(c: &mut Criterion, background: &tokio::runtime::Runtime) {
    use tower_jwt_guard::revocation::RedisRevocationStore;

    let Some(redis) = redis_server::Redis::for_test("scale bench (Redis series)") else { return };
    let url = redis.url();
    let prefix = redis_server::unique_prefix("scale");
    let (key, bearer) = live_jti_token();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut filled = 0;
    for &size in REDIS_REVOKED.sizes {
        // The revocations as the store writes them (`{prefix}revoked:jti:{scoped key}`, no
        // issuer), 10 000 a pipeline.
        background.block_on(async {
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let clients: String = redis::cmd("INFO").arg("clients").query_async(&mut conn).await.unwrap();
            let clients = clients.lines().find(|line| line.starts_with("connected_clients")).unwrap_or("");
            println!("Redis before {size} revocations: {}", clients.trim());
            if std::env::var_os("SCALE_REDIS_NO_FILL").is_some() {
                filled = size;
            }
            while filled < size {
                let mut pipe = redis::pipe();
                for i in filled..size.min(filled + 10_000) {
                    pipe.cmd("SET")
                        .arg(format!("{prefix}revoked:jti:0:revoked-{i}"))
                        .arg(0)
                        .arg("EX")
                        .arg(3600)
                        .ignore();
                }
                let () = pipe.query_async(&mut conn).await.unwrap();
                filled = size.min(filled + 10_000);
            }
        });
        let store = |local_capacity: u64| {
            let store = background.block_on(async {
                RedisRevocationStore::builder(&url)
                    .unwrap()
                    .key_prefix(&prefix)
                    .local_cache_capacity(local_capacity)
                    .build()
                    .unwrap()
            });
            while !store.is_subscribed() {
                std::thread::sleep(Duration::from_millis(10));
            }
            if size > 0 && std::env::var_os("SCALE_REDIS_NO_FILL").is_none() {
                // The store reads what was written.
                let check = store.check(&facts(&format!("revoked-{}", size - 1)));
                let RevocationCheck::Pending(answer) = check else { panic!("a local cache miss asks Redis") };
                assert!(matches!(background.block_on(answer), RevocationCheck::Revoked));
            }
            store
        };
        // Hit: the verified-token cache and the local cache answer. Uncached: the token is
        // verified and its revocation asked of Redis (local cache off) on every request.
        let (cached, asking) = (store(50_000), store(0));
        let build = |cache: bool| {
            let mut builder = JwtAuth::builder().key(key.verification_key()).audience("bench");
            builder = if cache {
                builder.revocation(cached.clone())
            } else {
                builder.revocation(asking.clone()).cache_capacity(0)
            };
            routers::guard_router_for(&builder.build().unwrap())
        };
        measure(c, &REDIS_REVOKED, size, build, &bearer);
    }
}

fn cached_tokens(c: &mut Criterion) {
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let runtime = runtime();
    let mut group = group(c, &CACHED_TOKENS);
    for &size in CACHED_TOKENS.sizes {
        // Room for every token (the cache holds a little less than its capacity): each request
        // measured is a hit.
        let auth = JwtAuth::builder()
            .key(key.verification_key())
            .audience("bench")
            .cache_capacity(size + size / 4)
            .build()
            .unwrap();
        let layer = auth.layer::<routers::BenchClaims>();
        let router = axum::Router::new()
            .route("/me", axum::routing::get(routers::guarded))
            .route_layer(layer.clone())
            .with_state(());
        let bearers: Vec<HeaderValue> =
            (0..size).map(|i| bearer(key.sign(&token_claims(&format!("user-{i}"))))).collect();
        for bearer in &bearers {
            serve(&runtime, &router, bearer);
        }
        // Hits spread over the whole cache, not one hot entry. The requests are made just
        // before they are served, 32 at a time (outside the measurement), as a server's
        // request has just been read from its socket: what waits on memory is the cache entry.
        let mut next = 0usize;
        group.bench_with_input(BenchmarkId::new("hit", size), &size, |b, _| {
            b.iter_batched(
                || {
                    next = (next + 7919) % size;
                    routers::request(&bearers[next])
                },
                |request| serve_request(&runtime, &router, request),
                BatchSize::NumIterations(32),
            )
        });
        if let Some(stats) = layer.cache_stats() {
            println!(
                "{size} tokens: the cache holds {} (capacity {}); {} hits, {} misses in all",
                stats.len, stats.capacity, stats.hits, stats.misses
            );
        }
    }
    group.finish();
}

/// A DPoP client: its ES256 key, the proofs' header, and its access token (HS256, `cnf.jkt`).
struct DpopClient {
    pair: EcdsaKeyPair,
    header: String,
    token: String,
    ath: String,
}

impl DpopClient {
    fn new(key: &TestKey) -> DpopClient {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let jkt = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()));
        let header = b64(json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": { "kty": "EC", "crv": "P-256", "x": x, "y": y } }).to_string());
        let mut token_claims = token_claims("bench");
        token_claims["cnf"] = json!({ "jkt": jkt });
        let token = key.sign(&token_claims);
        let ath = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()));
        DpopClient { pair, header, token, ath }
    }

    /// A request with a fresh proof.
    fn request(&self) -> http::Request<Body> {
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let proof_claims = json!({ "jti": b64(jti), "htm": "GET", "htu": format!("{PUBLIC_URL}/me"), "iat": harness::now(), "ath": self.ath });
        let input = format!("{}.{}", self.header, b64(proof_claims.to_string()));
        let signature = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        http::Request::get("/me")
            .header("authorization", format!("DPoP {}", self.token))
            .header("dpop", format!("{input}.{}", b64(signature.as_ref())))
            .body(Body::empty())
            .unwrap()
    }
}

/// Fills `store` with `count` live entries (other proofs of other keys).
fn fill_replay(store: &MemoryReplayStore, from: usize, to: usize) {
    let until = harness::now() + 3600;
    for i in from..to {
        let fresh = store.check_and_record(&ReplayKey::new(&[1; 32], &format!("proof-{i}")), until);
        assert!(matches!(fresh, ReplayCheck::Fresh));
    }
}

fn replay(c: &mut Criterion) {
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let client = DpopClient::new(&key);
    let runtime = runtime();
    for &size in REPLAY.sizes {
        // Room for the requests measured too.
        let store = std::sync::Arc::new(MemoryReplayStore::with_capacity(size + 2_000_000));
        fill_replay(&store, 0, size);
        let build = |cache: bool| {
            let policy = Dpop::allowed().public_url(PUBLIC_URL).replay_store(std::sync::Arc::clone(&store));
            let mut builder = JwtAuth::builder().key(key.verification_key()).audience("bench").dpop(policy);
            if !cache {
                builder = builder.cache_capacity(0);
            }
            routers::guard_router_for(&builder.build().unwrap())
        };
        let mut group = group(c, &REPLAY);
        for (name, cache) in [("hit", true), ("uncached", false)] {
            let router = build(cache);
            serve_request(&runtime, &router, client.request());
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter_batched(
                    || client.request(),
                    |request| serve_request(&runtime, &router, request),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

/// The memory of one store: bytes per entry, measured with `entries` entries.
struct Memory {
    store: &'static str,
    bytes_per_entry: f64,
    entries: usize,
}

/// Bytes per entry of each store, filled with `N` entries.
fn memory(#[allow(unused_variables)] background: &tokio::runtime::Runtime, memory: &mut Vec<Memory>) {
    const N: usize = 100_000;
    let runtime = runtime();
    let mut push = |store: &'static str, bytes: isize, entries: usize| {
        memory.push(Memory { store, bytes_per_entry: bytes as f64 / entries.max(1) as f64, entries });
    };

    // Verified-token cache: N distinct tokens (HS256, the bench's claims: about 180 bytes).
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let bearers: Vec<HeaderValue> =
        (0..N).map(|i| bearer(key.sign(&token_claims(&format!("user-{i:07}"))))).collect();
    println!("verified-token cache: tokens of {} bytes", bearers[0].len() - "Bearer ".len());
    let (bytes, (layer, router)) = live_bytes_after(|| {
        let auth = JwtAuth::builder()
            .key(key.verification_key())
            .audience("bench")
            .cache_capacity(N)
            .build()
            .unwrap();
        let layer = auth.layer::<routers::BenchClaims>();
        let router = axum::Router::new()
            .route("/me", axum::routing::get(routers::guarded))
            .route_layer(layer.clone())
            .with_state(());
        for bearer in &bearers {
            serve(&runtime, &router, bearer);
        }
        (layer, router)
    });
    let held = layer.cache_stats().map_or(N, |stats| stats.len);
    push("verified-token cache", bytes, held);
    drop((layer, router, bearers));

    // Revocation memory store: N token revocations.
    let (bytes, store) = live_bytes_after(|| {
        let store = MemoryRevocationStore::with_capacity(N as u64);
        runtime.block_on(async {
            for i in 0..N {
                store.revoke_token(None, &format!("revoked-{i:07}"), harness::now() + 3600).await.unwrap();
            }
        });
        let _ = store.len();
        store
    });
    push("revocation memory store", bytes, store.len() as usize);
    drop(store);

    // DPoP replay store: N proofs.
    let (bytes, store) = live_bytes_after(|| {
        let store = MemoryReplayStore::with_capacity(2 * N);
        fill_replay(&store, 0, N);
        store
    });
    push("DPoP replay store", bytes, store.len());
    drop(store);

    // Redis local cache: the answers for N tokens (each asked of Redis once).
    #[cfg(feature = "redis")]
    if let Some(redis) = redis_server::Redis::for_test("scale bench (Redis local cache memory)") {
        use tower_jwt_guard::revocation::RedisRevocationStore;
        let url = redis.url();
        let prefix = redis_server::unique_prefix("scale-memory");
        let (bytes, store) = live_bytes_after(|| {
            let store = background.block_on(async {
                RedisRevocationStore::builder(&url)
                    .unwrap()
                    .key_prefix(&prefix)
                    .local_cache_capacity(N as u64)
                    .build()
                    .unwrap()
            });
            while !store.is_subscribed() {
                std::thread::sleep(Duration::from_millis(10));
            }
            for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
                let answers = chunk.iter().map(|i| {
                    let mut facts = TokenFacts::default();
                    facts.jti = Some(format!("live-{i:07}"));
                    match store.check(&facts) {
                        RevocationCheck::Pending(answer) => answer,
                        other => panic!("a first check asks Redis, got {other:?}"),
                    }
                });
                let answers: Vec<_> = answers.collect();
                for answer in background.block_on(futures_util::future::join_all(answers)) {
                    assert!(matches!(answer, RevocationCheck::Valid));
                }
            }
            store
        });
        // Every answer is cached: a second check answers at once.
        let mut facts = TokenFacts::default();
        facts.jti = Some(format!("live-{:07}", N - 1));
        assert!(matches!(store.check(&facts), RevocationCheck::Valid));
        push("Redis local cache", bytes, N);
        drop(store);
    }
}

fn memory_path() -> PathBuf {
    target().join("criterion").join(MEMORY_GROUP).join("memory.json")
}

fn save_memory(memory: &[Memory]) {
    let mut saved = load_memory();
    for entry in memory {
        saved[entry.store] = json!({ "bytes_per_entry": entry.bytes_per_entry, "entries": entry.entries });
    }
    let path = memory_path();
    let _ = std::fs::create_dir_all(path.parent().unwrap());
    let _ = std::fs::write(path, serde_json::to_vec_pretty(&saved).unwrap());
}

fn load_memory() -> serde_json::Value {
    std::fs::read(memory_path())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| json!({}))
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// The mean time of one measurement of this run, in nanoseconds, from criterion's estimates.
fn estimate(group: &str, function: &str, size: usize) -> Option<f64> {
    let path = target()
        .join("criterion")
        .join(group)
        .join(function)
        .join(size.to_string())
        .join("new/estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}

/// The series of a panel: the function measured, its label and its colour.
const SERIES: [(&str, &str, &str); 3] = [
    ("hit", "cache hit", "#1f77b4"),
    ("uncached", "uncached", "#d62728"),
    ("store", "the store's check alone", "#2ca02c"),
];

/// A line of a panel: its colour and its points (size, µs).
type Line = (&'static str, Vec<(usize, f64)>);

/// One panel per dimension, four a row: time per request (µs) against the size (log scale), a
/// line for a cache hit, one uncached, and one for the store alone where measured; the memory
/// per entry of the dimension's store under its title.
fn plot(dimensions: &[&Dimension]) -> String {
    const PANEL_W: f64 = 300.0;
    const PANEL_H: f64 = 250.0;
    const LEFT: f64 = 50.0;
    const COLUMNS: usize = 4;
    let memory = load_memory();
    let rows = dimensions.len().div_ceil(COLUMNS);
    let width = PANEL_W * COLUMNS as f64 + 20.0;
    let height = PANEL_H * rows as f64 + 70.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="18" font-size="14">tower-jwt-guard: time per request (µs) as each dimension grows alone (HS256 unless said, axum, in process)</text>"#
    );
    for (panel, dimension) in dimensions.iter().enumerate() {
        let x0 = (panel % COLUMNS) as f64 * PANEL_W + LEFT;
        let top_y = (panel / COLUMNS) as f64 * PANEL_H + 60.0;
        let (w, h) = (PANEL_W - LEFT - 20.0, PANEL_H - 75.0);
        let lines: Vec<Line> = SERIES
            .iter()
            .map(|&(function, _, colour)| {
                let points = dimension
                    .sizes
                    .iter()
                    .filter_map(|&size| {
                        estimate(dimension.group, function, size).map(|ns| (size, ns / 1000.0))
                    })
                    .collect();
                (colour, points)
            })
            .collect();
        let top = lines.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)).fold(0.0, f64::max) * 1.15;
        let top = if top > 0.0 { top } else { 1.0 };
        let log = |size: usize| ((size.max(1)) as f64).log10();
        let (min, max) = (log(dimension.sizes[0]), log(*dimension.sizes.last().unwrap()));
        let x = |size: usize| x0 + if max > min { (log(size) - min) / (max - min) * w } else { w / 2.0 };
        let y = |value: f64| top_y + h - value / top * h;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="12">{}</text>"#,
            x0 - 30.0,
            top_y - 22.0,
            dimension.label
        );
        if let Some(store) = dimension.memory {
            if let Some(bytes) = memory[store]["bytes_per_entry"].as_f64() {
                let _ = writeln!(
                    svg,
                    r##"<text x="{}" y="{}" fill="#555">memory: {bytes:.0} bytes per {}</text>"##,
                    x0 - 30.0,
                    top_y - 8.0,
                    if store == "tenant" { "tenant" } else { "entry" }
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<path d="M{x0},{top_y} V{} H{}" fill="none" stroke="black"/>"#,
            top_y + h,
            x0 + w
        );
        for tick in 0..=4 {
            let value = top * f64::from(tick) / 4.0;
            let (label_x, label_y, line_y, right) = (x0 - 4.0, y(value) + 4.0, y(value), x0 + w);
            let _ = writeln!(
                svg,
                r##"<text x="{label_x}" y="{label_y}" text-anchor="end">{value:.1}</text><line x1="{x0}" x2="{right}" y1="{line_y}" y2="{line_y}" stroke="#ddd"/>"##
            );
        }
        for &size in dimension.sizes {
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle">{size}</text>"#,
                x(size),
                top_y + h + 14.0
            );
        }
        for (colour, points) in &lines {
            if points.is_empty() {
                continue;
            }
            let line: Vec<String> =
                points.iter().map(|&(size, value)| format!("{:.1},{:.1}", x(size), y(value))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                line.join(" ")
            );
            for &(size, value) in points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    x(size),
                    y(value)
                );
            }
        }
    }
    let legend_y = height - 15.0;
    for (i, (_, label, colour)) in SERIES.iter().enumerate() {
        let x = 20.0 + 170.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" x2="{}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{label}</text>"#,
            x + 20.0,
            x + 25.0,
            legend_y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let background = background();
    let mut measured = Vec::new();
    #[cfg(feature = "jwks")]
    let idp = (selected(TENANTS.group) || selected(JWKS_KEYS.group))
        .then(|| idp::Idp::start(&background, JWKS_KEYS.sizes));
    if selected(ISSUERS.group) {
        issuers(&mut c);
    }
    #[cfg(feature = "jwks")]
    if let Some(idp) = &idp {
        if selected(TENANTS.group) {
            tenants(&mut c, &background, idp, &mut measured);
        }
        if selected(JWKS_KEYS.group) {
            jwks_keys(&mut c, &background, idp);
        }
    }
    if selected(KEYS.group) {
        keys(&mut c);
    }
    if selected(REVOKED.group) {
        revoked(&mut c);
    }
    #[cfg(feature = "redis")]
    if selected(REDIS_REVOKED.group) {
        redis_revoked(&mut c, &background);
    }
    if selected(CACHED_TOKENS.group) {
        cached_tokens(&mut c);
    }
    if selected(REPLAY.group) {
        replay(&mut c);
    }
    if selected(MEMORY_GROUP) {
        memory(&background, &mut measured);
    }
    c.final_summary();
    save_memory(&measured);
    for dimension in DIMENSIONS {
        for (function, _, _) in SERIES {
            let figures: Vec<String> = dimension
                .sizes
                .iter()
                .filter_map(|&size| {
                    estimate(dimension.group, function, size).map(|ns| format!("{size}: {ns:.0} ns"))
                })
                .collect();
            if !figures.is_empty() {
                println!("{} ({function}): {}", dimension.label, figures.join(", "));
            }
        }
    }
    for (store, figures) in load_memory().as_object().into_iter().flatten() {
        println!(
            "memory, {store}: {:.0} bytes per entry (measured with {} entries)",
            figures["bytes_per_entry"].as_f64().unwrap_or(0.0),
            figures["entries"]
        );
    }
    let path = target().join("scale.svg");
    match std::fs::write(&path, plot(&DIMENSIONS)) {
        Ok(()) => println!("plot: {}", path.display()),
        Err(error) => eprintln!("plot not written to {}: {error}", path.display()),
    }
}
