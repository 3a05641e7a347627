//! The metrics (feature `metrics`) and readiness, observed with `metrics-util`'s debugging
//! recorder. Each test installs its own recorder for its thread (`with_local_recorder`) and runs
//! a current-thread runtime inside it, so tests never see each other's series.

#![cfg(feature = "metrics")]

mod harness;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use std::convert::Infallible;

use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_guard::metrics::{
    CACHE_LOOKUPS, CACHE_SIZE, DECISIONS, REVOCATION_CHECKS, VERIFICATION_DURATION,
};
use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationStore};
use tower_jwt_guard::{Algorithm, JwtAuth, TokenKind};

use harness::{now, TestKey};

const SECRET: &[u8] = b"metrics-test-secret-of-32-bytes!!";

/// Runs `test` on a current-thread runtime with a fresh debugging recorder; the recorder's
/// snapshotter is handed to it.
fn with_recorder<F, Fut>(test: F)
where
    F: FnOnce(Observed) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(test(Observed::new(snapshotter)));
    });
}

/// (name, sorted labels) → value.
type Series = BTreeMap<(String, Vec<(String, String)>), f64>;

/// What the recorder saw so far. The debugging recorder's snapshots drain counters and
/// histograms (and resets gauges to 0), so the values are gathered here: counters and histogram
/// sample counts add up, gauges keep their last value other than 0.
struct Observed {
    snapshotter: Snapshotter,
    seen: RefCell<Series>,
}

impl Observed {
    fn new(snapshotter: Snapshotter) -> Self {
        Observed { snapshotter, seen: RefCell::default() }
    }

    /// Every series so far: (name, sorted labels) → value.
    fn series(&self) -> Series {
        let mut seen = self.seen.borrow_mut();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let mut labels: Vec<(String, String)> =
                key.key().labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            labels.sort();
            let entry = seen.entry((key.key().name().to_owned(), labels)).or_insert(0.0);
            #[allow(clippy::cast_precision_loss)]
            match value {
                DebugValue::Counter(n) => *entry += n as f64,
                // A snapshot resets gauges to 0 too: 0 means "not set since".
                DebugValue::Gauge(g) if g.into_inner() != 0.0 => *entry = g.into_inner(),
                DebugValue::Gauge(_) => {}
                DebugValue::Histogram(samples) => *entry += samples.len() as f64,
            }
        }
        seen.clone()
    }

    /// The value of the series `name` with exactly `labels` (0 when absent).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels: Vec<(String, String)> =
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        labels.sort();
        self.series().get(&(name.to_owned(), labels)).copied().unwrap_or(0.0)
    }
}

type Guarded = BoxCloneService<http::Request<String>, http::Response<String>, Infallible>;

/// A service behind the layer of `auth` answering 200.
fn service(auth: &JwtAuth) -> Guarded {
    let service = ServiceBuilder::new().layer(auth.layer::<serde_json::Value>()).service_fn(
        |_request: http::Request<String>| async { Ok::<_, Infallible>(http::Response::new(String::new())) },
    );
    BoxCloneService::new(service)
}

async fn call(service: &Guarded, path: &str, token: Option<&str>) -> u16 {
    let mut request = http::Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = service.clone().oneshot(request.body(String::new()).unwrap()).await.unwrap();
    response.status().as_u16()
}

#[test]
fn each_decision_cache_lookup_and_revocation_answer_counts_in_its_series() {
    with_recorder(|metrics| async move {
        let store = MemoryRevocationStore::new();
        let key = TestKey::hmac(Algorithm::HS256, SECRET);
        let auth = JwtAuth::builder().hmac_secret(SECRET).revocation(store.clone()).build().unwrap();
        let service = service(&auth);
        let t = now();
        let good = key.sign(&json!({ "sub": "alice", "jti": "a-1", "exp": t + 600 }));
        let revoked = key.sign(&json!({ "sub": "bob", "jti": "b-1", "exp": t + 600 }));
        let expired = key.sign(&json!({ "sub": "carol", "exp": t - 600 }));
        store.revoke_token(None, "b-1", t + 600).await.unwrap();

        assert_eq!(call(&service, "/me", None).await, 401);
        assert_eq!(call(&service, "/me", Some(&good)).await, 200);
        assert_eq!(call(&service, "/me", Some(&good)).await, 200);
        assert_eq!(call(&service, "/me", Some(&revoked)).await, 401);
        assert_eq!(call(&service, "/me", Some(&expired)).await, 401);
        assert_eq!(call(&service, "/me", Some("not.a.token")).await, 401);

        let decision =
            |outcome: &str, code: &str| metrics.value(DECISIONS, &[("outcome", outcome), ("code", code)]);
        assert_eq!(decision("accepted", "OK"), 2.0);
        assert_eq!(decision("rejected", "MISSING_TOKEN"), 1.0);
        assert_eq!(decision("rejected", "TOKEN_REVOKED"), 1.0);
        assert_eq!(decision("rejected", "TOKEN_EXPIRED"), 1.0);
        assert_eq!(decision("rejected", "INVALID_TOKEN"), 1.0);
        // The audit counters and the metrics agree.
        let counts = auth.audit_counts();
        assert_eq!((counts.accepted, counts.total_rejected()), (2, 4));

        // good: miss then hit; revoked and expired: one miss each; the malformed token: a miss.
        assert_eq!(metrics.value(CACHE_LOOKUPS, &[("result", "hit")]), 1.0);
        assert_eq!(metrics.value(CACHE_LOOKUPS, &[("result", "miss")]), 4.0);
        assert_eq!(metrics.value(CACHE_SIZE, &[]), 3.0);
        assert_eq!(metrics.value(REVOCATION_CHECKS, &[("result", "valid")]), 2.0);
        assert_eq!(metrics.value(REVOCATION_CHECKS, &[("result", "revoked")]), 1.0);
        assert_eq!(metrics.value(REVOCATION_CHECKS, &[("result", "unavailable")]), 0.0);
    });
}

#[test]
fn uncached_verifications_are_timed_per_algorithm_one_in_eight() {
    with_recorder(|metrics| async move {
        let key = TestKey::hmac(Algorithm::HS256, SECRET);
        let auth = JwtAuth::builder().hmac_secret(SECRET).cache_capacity(0).build().unwrap();
        let service = service(&auth);
        let token = key.sign(&json!({ "sub": "alice", "exp": now() + 600 }));
        let sample = tower_jwt_guard::metrics::VERIFICATION_SAMPLE;
        for _ in 0..sample * 4 {
            assert_eq!(call(&service, "/me", Some(&token)).await, 200);
        }
        assert_eq!(metrics.value(VERIFICATION_DURATION, &[("alg", "HS256")]), 4.0);
    });
}

/// Distinct values of each label key over every series.
fn label_values(metrics: &Observed) -> BTreeMap<String, BTreeSet<String>> {
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((_, labels), _) in metrics.series() {
        for (key, value) in labels {
            values.entry(key).or_default().insert(value);
        }
    }
    values
}

#[test]
fn a_flood_of_random_kids_issuers_and_paths_adds_no_label_values() {
    with_recorder(|metrics| async move {
        let key = TestKey::hmac(Algorithm::HS256, SECRET);
        let auth = JwtAuth::builder()
            .key(key.verification_key())
            .issuer("https://a.example")
            .issuer("https://b.example")
            .accept(TokenKind::new("user", "at+jwt"))
            .build()
            .unwrap();
        let service = service(&auth);
        let t = now();
        for i in 0..300 {
            let kid = format!("kid-{i}");
            let issuer = format!("https://evil-{i}.example");
            let path = format!("/x/{i}?q={i}");
            let claims =
                json!({ "sub": format!("user-{i}"), "jti": format!("j-{i}"), "iss": issuer, "exp": t + 60 });
            let forged = key.sign_with_header(json!({ "kid": kid, "typ": "at+jwt" }), &claims);
            call(&service, &path, Some(&forged)).await;
            // Signed with the key, refused for its issuer.
            let signed = key.sign_with_header(json!({ "typ": "at+jwt" }), &claims);
            call(&service, &path, Some(&signed)).await;
            call(&service, &path, Some(&format!("garbage-{i}"))).await;
        }
        let good = key.sign_with_header(
            json!({ "typ": "at+jwt" }),
            &json!({ "sub": "alice", "iss": "https://b.example", "exp": t + 60 }),
        );
        assert_eq!(call(&service, "/me", Some(&good)).await, 200);

        let values = label_values(&metrics);
        let expected_issuers: BTreeSet<String> =
            ["https://a.example", "https://b.example", "unknown"].into_iter().map(String::from).collect();
        assert!(values["issuer"].is_subset(&expected_issuers), "{values:?}");
        assert!(values["issuer"].contains("https://b.example"), "{values:?}");
        assert!(values["kind"].iter().all(|kind| kind == "user" || kind == "unknown"), "{values:?}");
        // Every label value comes from a fixed or configured set: a handful each.
        for (label, set) in &values {
            assert!(set.len() <= 16, "{label}: {set:?}");
        }
        let all = metrics.series();
        assert!(all.len() < 30, "{} series: {all:?}", all.len());
    });
}

#[cfg(feature = "jwks")]
#[path = "common/jwks_server.rs"]
mod jwks_server;

#[cfg(feature = "jwks")]
#[test]
fn jwks_fetches_refetches_and_readiness_follow_the_endpoint() {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use tower_jwt_guard::keys::JwksKeys;
    use tower_jwt_guard::metrics::{JWKS_AGE, JWKS_FETCHES, JWKS_KEYS, JWKS_REFETCHES};

    with_recorder(|metrics| async move {
        let server = jwks_server::JwksServer::start().await; // answers 503 until told otherwise
        let source_label = server.jwks_url();
        let keys = JwksKeys::builder(server.jwks_url())
            .retry_interval(Duration::from_millis(50), Duration::from_millis(200))
            .build()
            .unwrap();
        let auth = JwtAuth::builder().key_source(keys).algorithms([Algorithm::EdDSA]).build().unwrap();

        // Down at start: not ready, and the failed fetches are counted.
        let report = auth.readiness();
        assert!(!report.is_ready());
        assert_eq!(report.reasons().next().map(|(part, _)| part), Some("keys"));
        let fetches =
            |result: &str| metrics.value(JWKS_FETCHES, &[("source", &source_label), ("result", result)]);
        eventually("a failed fetch", || fetches("error") >= 1.0).await;
        assert!(!auth.readiness().is_ready());

        // Up: ready once the keys are in.
        let pair = Ed25519KeyPair::generate().unwrap();
        let x = B64.encode(pair.public_key().as_ref());
        server.serve(vec![json!({ "kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": x })]);
        eventually("readiness", || auth.readiness().is_ready()).await;
        assert!(fetches("success") >= 1.0);
        assert_eq!(metrics.value(JWKS_KEYS, &[("source", &source_label)]), 1.0);
        assert!(metrics.value(JWKS_AGE, &[("source", &source_label)]) < 60.0);

        // An unknown kid triggers one refetch; the next ones in the interval are refused.
        let sign = |kid: &str| {
            let header = B64.encode(format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#));
            let claims = B64.encode(format!(r#"{{"sub":"alice","exp":{}}}"#, now() + 60));
            let signature = pair.sign(format!("{header}.{claims}").as_bytes());
            format!("{header}.{claims}.{}", B64.encode(signature.as_ref()))
        };
        let service = service(&auth);
        assert_eq!(call(&service, "/me", Some(&sign("k1"))).await, 200);
        assert_eq!(call(&service, "/me", Some(&sign("unknown-1"))).await, 401);
        assert_eq!(call(&service, "/me", Some(&sign("unknown-2"))).await, 401);
        let refetch =
            |result: &str| metrics.value(JWKS_REFETCHES, &[("source", &source_label), ("result", result)]);
        assert_eq!(refetch("triggered"), 1.0);
        assert_eq!(refetch("rate_limited"), 1.0);
        let decision = metrics.value(DECISIONS, &[("outcome", "accepted"), ("code", "OK")]);
        assert_eq!(decision, 1.0);
    });
}

#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
#[allow(dead_code)] // the part this file uses
mod redis_server;

#[cfg(feature = "redis")]
#[test]
fn redis_readiness_and_subscription_follow_the_server() {
    use tower_jwt_guard::metrics::{REDIS_DURATION, REDIS_SUBSCRIBED};
    use tower_jwt_guard::revocation::RedisRevocationStore;

    let Some(mut redis) =
        redis_server::Redis::local_for_test("redis_readiness_and_subscription_follow_the_server")
    else {
        return;
    };
    redis.stop();
    with_recorder(|metrics| async move {
        let store = RedisRevocationStore::builder(&redis.url())
            .unwrap()
            .key_prefix(redis_server::unique_prefix("metrics"))
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let auth = JwtAuth::builder().hmac_secret(SECRET).revocation(store.clone()).build().unwrap();
        let service = service(&auth);
        let key = TestKey::hmac(Algorithm::HS256, SECRET);
        let token = key.sign(&json!({ "sub": "alice", "jti": "r-1", "exp": now() + 600 }));

        // Down at start: not ready, checks fail closed and count as unavailable.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let report = auth.readiness();
        assert_eq!(report.reasons().next().map(|(part, _)| part), Some("revocation"), "{report:?}");
        assert_eq!(metrics.value(REDIS_SUBSCRIBED, &[]), 0.0);
        assert_eq!(call(&service, "/me", Some(&token)).await, 503);
        assert_eq!(metrics.value(REVOCATION_CHECKS, &[("result", "unavailable")]), 1.0);

        // Up: ready, subscribed, and the round trips are timed.
        redis.restart();
        eventually("readiness", || auth.readiness().is_ready()).await;
        assert_eq!(metrics.value(REDIS_SUBSCRIBED, &[]), 1.0);
        // The command connection reconnects on use: the first request after the restart may fail.
        let start = std::time::Instant::now();
        while call(&service, "/me", Some(&token)).await != 200 {
            assert!(start.elapsed() < Duration::from_secs(10), "no 200 after Redis came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(metrics.value(REVOCATION_CHECKS, &[("result", "valid")]), 1.0);
        assert!(metrics.value(REDIS_DURATION, &[("operation", "check")]) >= 2.0);
    });
}

/// Polls `done` until it holds (at most 10 s).
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
