//! The tenants held: each accepted tenant's [`JwksKeys`] (made on its first token), the tenants
//! whose discovery failed (refused for a while), and the admission limit on new tenants.
//!
//! The bounds, and where each is enforced:
//! - a tenant refused by the allow-list or the predicate is never looked up: no fetch, no entry;
//! - at most `max_held` tenants' key sources are held (quick_cache, one shard: the least used
//!   are evicted first; an evicted source's background refresh ends with it, and the tokens its
//!   keys verified leave the verified-token cache);
//! - at most `new_tenants` tenants are admitted per `interval` (each admission is one discovery
//!   and one JWKS fetch); a tenant beyond it is answered 503 without any fetch;
//! - a tenant whose discovery or first fetch failed is dropped and remembered for `failure_ttl`
//!   (at most `max_held` such tenants): its tokens are answered at once, without a fetch (401
//!   when the provider said the tenant does not exist, 503 when it could not be reached);
//! - each held tenant's source keeps its own limits (unknown-`kid` refetch interval, cap on
//!   waiting requests, timeout, size cap).
//!
//! Every tenant's source uses the HTTP client of the first one built (the tenants are configured
//! alike, and reached with the pattern's scheme): one TLS configuration and one connection pool
//! to the provider for all tenants, not one per tenant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, UnitWeighter};

use super::pattern::Pattern;
use crate::guard::keys::{JwksError, JwksKeys, JwksKeysBuilder, KeyLookup, KeySource};
use crate::primitives::algorithm::Algorithm;

/// Which tenants are accepted.
pub(super) enum Allow {
    /// These tenants, sorted.
    List(Box<[Box<str>]>),
    /// The tenants for which the predicate holds.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Allow {
    fn allows(&self, tenant: &str) -> bool {
        match self {
            Allow::List(tenants) => tenants.binary_search_by(|held| (**held).cmp(tenant)).is_ok(),
            Allow::Predicate(allows) => allows(tenant),
        }
    }
}

/// How each tenant's source is configured beyond [`JwksKeys::discover`].
pub(super) type Configure = Arc<dyn Fn(JwksKeysBuilder) -> JwksKeysBuilder + Send + Sync>;

/// The limits of a [`Registry`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_held: usize,
    pub(super) new_tenants: usize,
    pub(super) interval: Duration,
    pub(super) failure_ttl: Duration,
}

/// A tenant whose discovery failed: refused until `until`.
#[derive(Clone, Copy)]
pub(super) struct Failure {
    until: Instant,
    /// The provider answered that the tenant does not exist (4xx, another issuer, no JWKS).
    definitive: bool,
}

impl Failure {
    fn answer(self) -> KeyLookup {
        if self.definitive {
            KeyLookup::Unknown
        } else {
            KeyLookup::Unavailable
        }
    }
}

/// The admission window: tenants admitted since `started`.
#[derive(Default)]
struct Window {
    started: Option<Instant>,
    admitted: usize,
}

type Held<V> = Cache<Box<str>, V, UnitWeighter, DefaultHashBuilder, DefaultLifecycle<Box<str>, V>>;

/// One bounded cache: a single shard, so `capacity` bounds the entries exactly.
fn bounded<V: Clone>(capacity: usize) -> Held<V> {
    let capacity = capacity.max(1);
    let options = OptionsBuilder::new()
        .shards(1)
        .estimated_items_capacity(capacity)
        .weight_capacity(capacity as u64)
        .build()
        .unwrap_or_else(|_| unreachable!("positive capacities are valid"));
    Cache::with_options(options, UnitWeighter, DefaultHashBuilder::default(), DefaultLifecycle::default())
}

/// The counters of a [`Registry`].
#[derive(Default)]
pub(super) struct Counters {
    pub(super) admitted: AtomicU64,
    pub(super) rate_limited: AtomicU64,
    pub(super) failed: AtomicU64,
}

pub(super) struct Registry {
    pub(super) pattern: Pattern,
    allow: Allow,
    pub(super) limits: Limits,
    configure: Option<Configure>,
    pub(super) held: Held<JwksKeys>,
    pub(super) failed: Held<Failure>,
    window: Mutex<Window>,
    /// The HTTP client every tenant's source shares (the first source's).
    client: OnceLock<reqwest::Client>,
    pub(super) counters: Counters,
}

impl Registry {
    pub(super) fn new(pattern: Pattern, allow: Allow, limits: Limits, configure: Option<Configure>) -> Self {
        Registry {
            pattern,
            allow,
            limits,
            configure,
            held: bounded(limits.max_held),
            failed: bounded(limits.max_held),
            window: Mutex::new(Window::default()),
            client: OnceLock::new(),
            counters: Counters::default(),
        }
    }

    /// The tenant of `iss`, when `iss` matches the pattern and the tenant is accepted.
    pub(super) fn tenant<'i>(&self, iss: &'i str) -> Option<&'i str> {
        self.pattern.tenant(iss).filter(|tenant| self.allow.allows(tenant))
    }

    /// The key for a token of `iss`: from the tenant's source, made now if the limits allow.
    pub(super) fn lookup(self: &Arc<Self>, iss: &str, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let Some(tenant) = self.tenant(iss) else { return KeyLookup::Unknown };
        if let Some(keys) = self.held.get(tenant) {
            return self.answer(tenant, keys, kid, alg);
        }
        if let Some(failure) = self.failed.get(tenant) {
            if Instant::now() < failure.until {
                return failure.answer();
            }
            self.failed.remove(tenant);
        }
        match self.admit(iss, tenant) {
            Ok(keys) => self.answer(tenant, keys, kid, alg),
            Err(answer) => answer,
        }
    }

    /// Makes the source of a tenant not held, within the admission limit.
    fn admit(&self, iss: &str, tenant: &str) -> Result<JwksKeys, KeyLookup> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        // Another request admitted it while this one waited for the lock.
        if let Some(keys) = self.held.get(tenant) {
            return Ok(keys);
        }
        let now = Instant::now();
        if window.started.is_none_or(|started| now.duration_since(started) >= self.limits.interval) {
            *window = Window { started: Some(now), admitted: 0 };
        }
        if window.admitted >= self.limits.new_tenants {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target: "tower_jwt_guard", tenant, "new tenant refused: too many new tenants in this interval");
            return Err(KeyLookup::Unavailable);
        }
        window.admitted += 1;
        self.counters.admitted.fetch_add(1, Ordering::Relaxed);
        let builder = JwksKeys::discover(iss);
        let mut builder = match &self.configure {
            Some(configure) => configure(builder),
            None => builder,
        };
        if let Some(client) = self.client.get() {
            builder = builder.http_client(client.clone());
        }
        match builder.build() {
            Ok(keys) => {
                self.client.get_or_init(|| keys.http_client());
                self.held.insert(tenant.into(), keys.clone());
                Ok(keys)
            }
            Err(err) => {
                tracing::warn!(target: "tower_jwt_guard", tenant, error = %err, "the tenant's key source could not be set up");
                let failure = Failure { until: now + self.limits.failure_ttl, definitive: true };
                self.failed.insert(tenant.into(), failure);
                Err(failure.answer())
            }
        }
    }

    /// The tenant's source's answer; a failed discovery turns the tenant into a refused one.
    fn answer(
        self: &Arc<Self>,
        tenant: &str,
        keys: JwksKeys,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> KeyLookup {
        match keys.lookup(kid, alg) {
            KeyLookup::Pending(fetch) => {
                let registry = Arc::clone(self);
                let tenant: Box<str> = tenant.into();
                KeyLookup::Pending(Box::pin(async move {
                    match fetch.await {
                        KeyLookup::Unavailable => registry.settle(&tenant, &keys),
                        answer => answer,
                    }
                }))
            }
            KeyLookup::Unavailable => self.settle(tenant, &keys),
            answer => answer,
        }
    }

    /// A tenant whose source holds no keys after a failed fetch (and none running) is dropped and
    /// refused for `failure_ttl`, so its tokens cost no more fetches; otherwise 503 for now.
    fn settle(&self, tenant: &str, keys: &JwksKeys) -> KeyLookup {
        let Some(err) = keys.failure_without_keys() else { return KeyLookup::Unavailable };
        let definitive = match &err {
            JwksError::Status(status) => (400..500).contains(status) && !matches!(status, 408 | 429),
            JwksError::IssuerMismatch { .. } | JwksError::Discovery(_) | JwksError::Malformed(_) => true,
            _ => false,
        };
        let failure = Failure { until: Instant::now() + self.limits.failure_ttl, definitive };
        self.held.remove_if(tenant, |held| held.same_source(keys));
        self.failed.insert(tenant.into(), failure);
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            target: "tower_jwt_guard",
            tenant,
            error = %err,
            failure_ttl = ?self.limits.failure_ttl,
            "tenant discovery failed; the tenant's tokens are refused without a fetch until the failure expires"
        );
        failure.answer()
    }
}
