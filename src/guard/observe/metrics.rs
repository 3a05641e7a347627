//! Metrics (feature `metrics`): what the layer counts and times, through the [`metrics`] facade,
//! so any exporter (Prometheus, OpenTelemetry, StatsD) can publish them.
//!
//! | name | kind, unit | labels | meaning |
//! |---|---|---|---|
//! | `jwt_guard.decisions` | counter | `outcome`, `code` (+ `kind`, `issuer` where configured) | every decision of the layer: [`audit`](crate::audit)'s outcome and code |
//! | `jwt_guard.verification.duration` | histogram, s | `alg` | uncached verification of a token that verified (signature, claims), one in [`VERIFICATION_SAMPLE`] sampled |
//! | `jwt_guard.cache.lookups` | counter | `result` (`hit`, `miss`) | verified-token cache lookups |
//! | `jwt_guard.cache.size` | gauge, tokens | | tokens in the verified-token cache, after the last insert |
//! | `jwt_guard.jwks.fetches` | counter | `source`, `result` (`success`, `error`, `no_usable_keys`) | JWKS documents fetched |
//! | `jwt_guard.jwks.keys` | gauge, keys | `source` | usable keys held |
//! | `jwt_guard.jwks.age` | gauge, s | `source` | seconds since the last successful fetch (updated at least every 15 s) |
//! | `jwt_guard.jwks.refetches` | counter | `source`, `result` (`triggered`, `joined`, `rate_limited`, `queue_full`) | requests whose `kid` the keys held lack (or that found no keys): a fetch started, joined, or refused |
//! | `jwt_guard.revocation.checks` | counter | `result` (`valid`, `revoked`, `unavailable`) | revocation answers, whatever the store |
//! | `jwt_guard.revocation.redis.duration` | histogram, s | `operation` (`check`, `revoke`) | Redis round trips of the Redis revocation store |
//! | `jwt_guard.revocation.redis.subscribed` | gauge | | 1 while the Redis invalidation subscription is up, else 0 |
//!
//! Names are dot-separated in OpenTelemetry's style (a Prometheus exporter writes
//! `jwt_guard_decisions`), units go into the metrics' descriptions. **Labels take configured
//! values only**: outcome and code are fixed sets, `kind` a configured
//! [`TokenKind`](crate::TokenKind)'s name, `issuer` a configured issuer (a token whose `iss`
//! is not one of them, or that never verified, counts as `unknown`), `source` the configured
//! JWKS endpoint (without credentials or query) or OIDC issuer. Nothing from the request (a
//! `kid`, subject, `jti`, token, path) ever becomes a label, so a flood of forged tokens cannot
//! grow the number of series.
//!
//! **Cost.** Without the feature, nothing is compiled. With it, a series' handle is registered
//! with the recorder the first time it is used and kept, so a request costs an atomic load and
//! the recorder's increment per counter; without a recorder, the handles do nothing. The
//! recorder must therefore be installed **before the first request** (as every exporter's
//! set-up does): series first used before it stay silent.
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! use metrics_util::debugging::DebuggingRecorder;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_jwt_guard::JwtAuth;
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! metrics::with_local_recorder(&recorder, || {
//!     let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build().unwrap();
//!     let service = ServiceBuilder::new().layer(auth.layer::<serde_json::Value>()).service_fn(
//!         |_request: http::Request<String>| async {
//!             Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!         },
//!     );
//!     let request = http::Request::builder().uri("/me").body(String::new()).unwrap();
//!     let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//!     let response = runtime.block_on(service.oneshot(request)).unwrap();
//!     assert_eq!(response.status(), 401);
//! });
//! let decisions: Vec<String> = snapshotter
//!     .snapshot()
//!     .into_vec()
//!     .into_iter()
//!     .filter(|(key, ..)| key.key().name() == tower_jwt_guard::metrics::DECISIONS)
//!     .map(|(key, ..)| format!("{:?}", key.key().labels().map(|l| l.value()).collect::<Vec<_>>()))
//!     .collect();
//! assert_eq!(decisions, [r#"["rejected", "MISSING_TOKEN"]"#]);
//! # }
//! ```

#[cfg(feature = "metrics")]
pub use enabled::*;

#[cfg(feature = "metrics")]
mod enabled {
    use std::cell::Cell;
    use std::sync::{Arc, OnceLock};
    use std::time::Instant;

    use crate::primitives::algorithm::Algorithm;
    use metrics::{Counter, Gauge, Histogram, Label, SharedString, Unit};

    use crate::guard::observe::audit::AuditOutcome;
    use crate::guard::revocation::RevocationCheck;
    use crate::guard::verify::AlgorithmSet;
    use crate::primitives::claims::TokenFacts;
    use crate::primitives::error::ErrorKind;

    /// Every decision of the layer (counter; labels `outcome`, `code`, and `kind` / `issuer`
    /// when kinds / issuers are configured).
    pub const DECISIONS: &str = "jwt_guard.decisions";
    /// Uncached verification time of tokens that verified, sampled (histogram, seconds; label `alg`).
    pub const VERIFICATION_DURATION: &str = "jwt_guard.verification.duration";
    /// Verified-token cache lookups (counter; label `result`: `hit`, `miss`).
    pub const CACHE_LOOKUPS: &str = "jwt_guard.cache.lookups";
    /// Tokens in the verified-token cache (gauge).
    pub const CACHE_SIZE: &str = "jwt_guard.cache.size";
    /// JWKS documents fetched (counter; labels `source`, `result`: `success`, `error`, `no_usable_keys`).
    pub const JWKS_FETCHES: &str = "jwt_guard.jwks.fetches";
    /// Usable JWKS keys held (gauge; label `source`).
    pub const JWKS_KEYS: &str = "jwt_guard.jwks.keys";
    /// Seconds since the last successful JWKS fetch (gauge; label `source`).
    pub const JWKS_AGE: &str = "jwt_guard.jwks.age";
    /// Requests that needed a JWKS fetch (counter; labels `source`, `result`: `triggered`,
    /// `joined`, `rate_limited`, `queue_full`).
    pub const JWKS_REFETCHES: &str = "jwt_guard.jwks.refetches";
    /// Revocation answers (counter; label `result`: `valid`, `revoked`, `unavailable`).
    pub const REVOCATION_CHECKS: &str = "jwt_guard.revocation.checks";
    /// Redis round trips of the Redis revocation store (histogram, seconds; label `operation`).
    pub const REDIS_DURATION: &str = "jwt_guard.revocation.redis.duration";
    /// 1 while the Redis invalidation subscription is up, else 0 (gauge).
    pub const REDIS_SUBSCRIBED: &str = "jwt_guard.revocation.redis.subscribed";

    /// One uncached verification in this many is timed: two clock reads and a histogram record
    /// are a few percent of an HS256 verification, an eighth of that is lost in the noise.
    pub const VERIFICATION_SAMPLE: u32 = 8;

    /// How often, at least, the JWKS age gauge is brought up to date.
    #[cfg(feature = "jwks")]
    pub(crate) const JWKS_AGE_TICK: std::time::Duration = std::time::Duration::from_secs(15);

    /// The crate's metrics: name, unit, description.
    const DESCRIPTIONS: [(&str, Option<Unit>, &str); 11] = [
        (DECISIONS, None, "Decisions of the JWT layer, by outcome and code"),
        (
            VERIFICATION_DURATION,
            Some(Unit::Seconds),
            "Uncached verification of a token that verified (sampled)",
        ),
        (CACHE_LOOKUPS, None, "Verified-token cache lookups, by result"),
        (CACHE_SIZE, None, "Tokens in the verified-token cache"),
        (JWKS_FETCHES, None, "JWKS documents fetched, by result"),
        (JWKS_KEYS, None, "Usable JWKS keys held"),
        (JWKS_AGE, Some(Unit::Seconds), "Seconds since the last successful JWKS fetch"),
        (JWKS_REFETCHES, None, "Requests that needed a JWKS fetch: triggered, joined or refused"),
        (REVOCATION_CHECKS, None, "Revocation checks, by result"),
        (REDIS_DURATION, Some(Unit::Seconds), "Redis round trips of the revocation store"),
        (REDIS_SUBSCRIBED, None, "1 while the Redis revocation invalidation subscription is up"),
    ];

    /// Describes every metric of the crate (name, unit, description) to the recorder in use.
    /// Each series describes itself when first used; call this to publish the descriptions
    /// (a Prometheus exporter's `# HELP` lines) before that.
    pub fn describe() {
        DESCRIPTIONS.iter().for_each(|(name, ..)| describe_one(name));
    }

    fn describe_one(name: &'static str) {
        let Some((_, unit, text)) = DESCRIPTIONS.iter().find(|(known, ..)| *known == name) else { return };
        metrics::with_recorder(|recorder| match name {
            VERIFICATION_DURATION | REDIS_DURATION => {
                recorder.describe_histogram(name.into(), *unit, (*text).into())
            }
            CACHE_SIZE | JWKS_KEYS | JWKS_AGE | REDIS_SUBSCRIBED => {
                recorder.describe_gauge(name.into(), *unit, (*text).into())
            }
            _ => recorder.describe_counter(name.into(), *unit, (*text).into()),
        });
    }

    fn counter(name: &'static str, labels: Vec<Label>) -> Counter {
        describe_one(name);
        metrics::counter!(name, labels)
    }

    fn gauge(name: &'static str, labels: Vec<Label>) -> Gauge {
        describe_one(name);
        metrics::gauge!(name, labels)
    }

    fn histogram(name: &'static str, labels: Vec<Label>) -> Histogram {
        describe_one(name);
        metrics::histogram!(name, labels)
    }

    fn label(key: &'static str, value: &'static str) -> Label {
        Label::from_static_parts(key, value)
    }

    /// The label value of what is not known or not configured.
    const UNKNOWN: &str = "unknown";

    /// `jwt_guard.decisions`: one lazily registered counter per (outcome and code, kind, issuer).
    pub(crate) struct DecisionMetrics {
        kinds: Box<[Arc<str>]>,
        issuers: Box<[Arc<str>]>,
        /// The issuers' positions, past a few issuers (a tenant list of thousands): the label
        /// of a decision is found in constant time, not by a scan of the list.
        issuer_positions: Option<std::collections::HashMap<Arc<str>, usize>>,
        series: Box<[OnceLock<Counter>]>,
    }

    /// Up to this many issuers, a scan finds a decision's issuer faster than a hash.
    const SCANNED_ISSUERS: usize = 16;

    /// The outcomes and codes: accepted, anonymous, then every rejection kind.
    const CODES: usize = 2 + ErrorKind::ALL.len();

    impl Default for DecisionMetrics {
        fn default() -> Self {
            Self::new(Vec::new(), Vec::<&str>::new())
        }
    }

    impl DecisionMetrics {
        /// `kinds`: the accepted kinds' names; `issuers`: the configured issuers. Only these may
        /// become label values.
        pub(crate) fn new<'a>(kinds: Vec<Arc<str>>, issuers: impl IntoIterator<Item = &'a str>) -> Self {
            let mut unique: Vec<Arc<str>> = Vec::new();
            let mut positions = std::collections::HashMap::new();
            for issuer in issuers {
                if !positions.contains_key(issuer) {
                    let issuer: Arc<str> = issuer.into();
                    positions.insert(Arc::clone(&issuer), unique.len());
                    unique.push(issuer);
                }
            }
            let len = CODES * (kinds.len() + 1) * (unique.len() + 1);
            DecisionMetrics {
                kinds: kinds.into(),
                issuer_positions: (unique.len() > SCANNED_ISSUERS).then_some(positions),
                issuers: unique.into(),
                series: (0..len).map(|_| OnceLock::new()).collect(),
            }
        }

        /// Counts one decision. `code` is the index of the outcome and code (0 accepted, 1
        /// anonymous, 2 + the rejection kind's index in [`ErrorKind::ALL`]).
        #[inline]
        pub(crate) fn record(&self, code: usize, facts: Option<&TokenFacts>) {
            let kind = facts.and_then(|facts| facts.kind.as_ref()).map_or(0, |kind| {
                self.kinds
                    .iter()
                    .position(|known| Arc::ptr_eq(known, kind) || **known == **kind)
                    .map_or(0, |i| i + 1)
            });
            let issuer = match facts.and_then(|facts| facts.issuer.as_deref()) {
                Some(issuer) if !self.issuers.is_empty() => self.issuer_label(issuer),
                _ => 0,
            };
            let index = (code * (self.kinds.len() + 1) + kind) * (self.issuers.len() + 1) + issuer;
            if let Some(series) = self.series.get(index) {
                series.get_or_init(|| self.register(code, kind, issuer)).increment(1);
            }
        }

        /// The label index of a decision's issuer: 1 + its position, 0 for one not configured.
        pub(super) fn issuer_label(&self, issuer: &str) -> usize {
            let position = match &self.issuer_positions {
                Some(positions) => positions.get(issuer).copied(),
                None => self.issuers.iter().position(|known| &**known == issuer),
            };
            position.map_or(0, |i| i + 1)
        }

        fn register(&self, code: usize, kind: usize, issuer: usize) -> Counter {
            let (outcome, code) = match code {
                0 => (AuditOutcome::Accepted, "OK"),
                1 => (AuditOutcome::Anonymous, "ANONYMOUS"),
                n => (AuditOutcome::Rejected, ErrorKind::ALL.get(n - 2).map_or(UNKNOWN, |kind| kind.code())),
            };
            let mut labels = vec![label("outcome", outcome.as_str()), label("code", code)];
            let configured = |values: &[Arc<str>], index: usize| -> SharedString {
                match index.checked_sub(1).and_then(|i| values.get(i)) {
                    Some(value) => SharedString::from_shared(Arc::clone(value)),
                    None => SharedString::const_str(UNKNOWN),
                }
            };
            if !self.kinds.is_empty() {
                labels.push(Label::new("kind", configured(&self.kinds, kind)));
            }
            if !self.issuers.is_empty() {
                labels.push(Label::new("issuer", configured(&self.issuers, issuer)));
            }
            counter(DECISIONS, labels)
        }
    }

    /// The request path's other metrics: verification time per algorithm, revocation answers.
    #[derive(Default)]
    pub(crate) struct GuardMetrics {
        verification: [OnceLock<Histogram>; ALGORITHMS.len()],
        revocation: [OnceLock<Counter>; 3],
    }

    /// The algorithms' label values, by [`AlgorithmSet::index`].
    const ALGORITHMS: [&str; 12] = [
        "HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "EdDSA",
    ];

    /// The start of a timed (sampled) verification.
    pub(crate) struct VerificationTimer(Option<Instant>);

    thread_local! {
        /// Uncached verifications on this thread, for sampling without shared state.
        static VERIFICATIONS: Cell<u32> = const { Cell::new(0) };
    }

    impl GuardMetrics {
        /// Starts timing an uncached verification, one in [`VERIFICATION_SAMPLE`].
        #[inline]
        pub(crate) fn start_verification(&self) -> VerificationTimer {
            let count = VERIFICATIONS.with(|count| {
                let next = count.get().wrapping_add(1);
                count.set(next);
                next
            });
            VerificationTimer(count.is_multiple_of(VERIFICATION_SAMPLE).then(Instant::now))
        }

        /// A token verified with a key of `alg`: records the time, when this one was sampled.
        #[inline]
        pub(crate) fn verified(&self, timer: VerificationTimer, alg: Algorithm) {
            let (Some(start), Some(index)) = (timer.0, AlgorithmSet::index(alg)) else { return };
            let histogram = self.verification[index]
                .get_or_init(|| histogram(VERIFICATION_DURATION, vec![label("alg", ALGORITHMS[index])]));
            histogram.record(start.elapsed().as_secs_f64());
        }

        /// The revocation store's answer (a pending one counts as unavailable: it is asked only
        /// of the answers the layer acts on).
        #[inline]
        pub(crate) fn revocation(&self, answer: &RevocationCheck) {
            let (index, result) = match answer {
                RevocationCheck::Valid => (0, "valid"),
                RevocationCheck::Revoked => (1, "revoked"),
                RevocationCheck::Unavailable | RevocationCheck::Pending(_) => (2, "unavailable"),
            };
            self.revocation[index]
                .get_or_init(|| counter(REVOCATION_CHECKS, vec![label("result", result)]))
                .increment(1);
        }
    }

    /// The verified-token cache's metrics.
    #[derive(Default)]
    pub(crate) struct CacheMetrics {
        hit: OnceLock<Counter>,
        miss: OnceLock<Counter>,
        size: OnceLock<Gauge>,
    }

    impl CacheMetrics {
        #[inline]
        pub(crate) fn lookup(&self, hit: bool) {
            let (cell, result) = if hit { (&self.hit, "hit") } else { (&self.miss, "miss") };
            cell.get_or_init(|| counter(CACHE_LOOKUPS, vec![label("result", result)])).increment(1);
        }

        pub(crate) fn size(&self, len: usize) {
            #[allow(clippy::cast_precision_loss)] // a cache never holds 2^52 tokens
            self.size.get_or_init(|| gauge(CACHE_SIZE, Vec::new())).set(len as f64);
        }
    }

    /// A JWKS source's metrics, labelled with the source (its endpoint or issuer).
    #[cfg(feature = "jwks")]
    pub(crate) struct JwksMetrics {
        source: SharedString,
        refetches: [OnceLock<Counter>; 4],
        keys: OnceLock<Gauge>,
        age: OnceLock<Gauge>,
    }

    /// Why a request needed a JWKS fetch, and what it got.
    #[cfg(feature = "jwks")]
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Refetch {
        /// It started a fetch.
        Triggered,
        /// It waits for the fetch another request started.
        Joined,
        /// The unknown-kid rate limit granted none.
        RateLimited,
        /// Too many requests wait already.
        QueueFull,
    }

    #[cfg(feature = "jwks")]
    impl JwksMetrics {
        pub(crate) fn new(source: String) -> Self {
            JwksMetrics {
                source: SharedString::from_owned(source),
                refetches: Default::default(),
                keys: OnceLock::new(),
                age: OnceLock::new(),
            }
        }

        fn source(&self) -> Label {
            Label::new("source", self.source.clone())
        }

        pub(crate) fn refetch(&self, refetch: Refetch) {
            let (index, result) = match refetch {
                Refetch::Triggered => (0, "triggered"),
                Refetch::Joined => (1, "joined"),
                Refetch::RateLimited => (2, "rate_limited"),
                Refetch::QueueFull => (3, "queue_full"),
            };
            self.refetches[index]
                .get_or_init(|| counter(JWKS_REFETCHES, vec![self.source(), label("result", result)]))
                .increment(1);
        }

        /// A fetch ended with `result` (`success`, `error`, `no_usable_keys`).
        pub(crate) fn fetched(&self, result: &'static str) {
            counter(JWKS_FETCHES, vec![self.source(), label("result", result)]).increment(1);
        }

        /// The keys usable now, and the time since the last successful fetch.
        pub(crate) fn held(&self, keys: usize, age: Option<std::time::Duration>) {
            #[allow(clippy::cast_precision_loss)] // a JWKS never holds 2^52 keys
            self.keys.get_or_init(|| gauge(JWKS_KEYS, vec![self.source()])).set(keys as f64);
            if let Some(age) = age {
                self.age.get_or_init(|| gauge(JWKS_AGE, vec![self.source()])).set(age.as_secs_f64());
            }
        }
    }

    /// The Redis revocation store's metrics.
    #[cfg(feature = "redis")]
    #[derive(Default)]
    pub(crate) struct RedisMetrics {
        round_trips: [OnceLock<Histogram>; 2],
    }

    /// A Redis round trip of the revocation store.
    #[cfg(feature = "redis")]
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum RedisOperation {
        /// `GET`s of a token's and its subject's keys.
        Check,
        /// The revocation script.
        Revoke,
    }

    #[cfg(feature = "redis")]
    impl RedisMetrics {
        pub(crate) fn round_trip(&self, operation: RedisOperation, took: std::time::Duration) {
            let (index, value) = match operation {
                RedisOperation::Check => (0, "check"),
                RedisOperation::Revoke => (1, "revoke"),
            };
            self.round_trips[index]
                .get_or_init(|| histogram(REDIS_DURATION, vec![label("operation", value)]))
                .record(took.as_secs_f64());
        }

        pub(crate) fn subscribed(&self, up: bool) {
            gauge(REDIS_SUBSCRIBED, Vec::new()).set(if up { 1.0 } else { 0.0 });
        }
    }
}

/// Without the feature: the same types, doing nothing (every call compiles away).
#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::*;

#[cfg(not(feature = "metrics"))]
mod disabled {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::primitives::algorithm::Algorithm;

    use crate::guard::revocation::RevocationCheck;
    use crate::primitives::claims::TokenFacts;

    #[derive(Default)]
    pub(crate) struct DecisionMetrics {}

    impl DecisionMetrics {
        pub(crate) fn new<'a>(_kinds: Vec<Arc<str>>, _issuers: impl IntoIterator<Item = &'a str>) -> Self {
            DecisionMetrics {}
        }

        #[inline(always)]
        pub(crate) fn record(&self, _code: usize, _facts: Option<&TokenFacts>) {}
    }

    #[derive(Default)]
    pub(crate) struct GuardMetrics {}

    pub(crate) struct VerificationTimer;

    impl GuardMetrics {
        #[inline(always)]
        pub(crate) fn start_verification(&self) -> VerificationTimer {
            VerificationTimer
        }

        #[inline(always)]
        pub(crate) fn verified(&self, _timer: VerificationTimer, _alg: Algorithm) {}

        #[inline(always)]
        pub(crate) fn revocation(&self, _answer: &RevocationCheck) {}
    }

    #[derive(Default)]
    pub(crate) struct CacheMetrics {}

    impl CacheMetrics {
        #[inline(always)]
        pub(crate) fn lookup(&self, _hit: bool) {}

        #[inline(always)]
        pub(crate) fn size(&self, _len: usize) {}
    }

    #[allow(dead_code)] // only the features that have these sources use them
    pub(crate) struct JwksMetrics;

    #[allow(dead_code)]
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Refetch {
        Triggered,
        Joined,
        RateLimited,
        QueueFull,
    }

    #[allow(dead_code)]
    impl JwksMetrics {
        pub(crate) fn new(_source: String) -> Self {
            JwksMetrics
        }

        #[inline(always)]
        pub(crate) fn refetch(&self, _refetch: Refetch) {}

        #[inline(always)]
        pub(crate) fn fetched(&self, _result: &'static str) {}

        #[inline(always)]
        pub(crate) fn held(&self, _keys: usize, _age: Option<Duration>) {}
    }

    #[allow(dead_code)]
    #[derive(Default)]
    pub(crate) struct RedisMetrics {}

    #[allow(dead_code)]
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum RedisOperation {
        Check,
        Revoke,
    }

    #[allow(dead_code)]
    impl RedisMetrics {
        #[inline(always)]
        pub(crate) fn round_trip(&self, _operation: RedisOperation, _took: Duration) {}

        #[inline(always)]
        pub(crate) fn subscribed(&self, _up: bool) {}
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::enabled::DecisionMetrics;

    #[test]
    fn an_issuer_is_labelled_by_its_position_in_a_short_and_a_long_list() {
        for count in [3, 1_000] {
            let names: Vec<String> = (0..count).map(|i| format!("https://issuer-{i}.example")).collect();
            // Each name twice: a repeated issuer keeps its first position.
            let metrics = DecisionMetrics::new(Vec::new(), names.iter().chain(&names).map(String::as_str));
            for (i, name) in names.iter().enumerate() {
                assert_eq!(metrics.issuer_label(name), i + 1, "{count} issuers");
            }
            assert_eq!(metrics.issuer_label("https://other.example"), 0);
        }
    }
}
