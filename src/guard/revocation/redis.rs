//! [`RedisRevocationStore`]: revocations shared by every instance of a service through Redis
//! (feature `redis`), with a small local cache kept fresh by Redis pub/sub.
//!
//! - Keys are per issuer: `{prefix}revoked:jti:{len}:{issuer}{jti}` and
//!   `{prefix}revoked:sub:{len}:{issuer}{subject}`, the issuer length-prefixed so that no
//!   (issuer, id) pair is read as another.
//! - A revocation is one key with a TTL (`SET .. EXAT`, Redis ≥ 6.2) written by a Lua script
//!   that also publishes an invalidation on the store's channel, in the same atomic step.
//! - `check` answers from the local cache when it can (no allocation, no await); on a miss it
//!   asks Redis once (the token's and the subject's keys, two `GET`s sent together) and caches the answer.
//! - Every instance subscribes to the channel; a message drops the cached answer, so the next
//!   request asks Redis again. While the subscription is down (Redis unreachable, reconnecting)
//!   the local cache is not trusted at all: every check asks Redis, and fails closed
//!   ([`RevocationCheck::Unavailable`] → 503) if Redis does not answer in time.
//! - The connection reconnects by itself ([`RedisServers`]: one server, Sentinel or Cluster),
//!   so a restarted or failed-over Redis is used again without rebuilding the layer. A check or
//!   a revocation that lost its connection is tried once more on a fresh one within the same
//!   timeout (both are safe to repeat): the first request after a restart is answered.
//! - Invalidations reach every instance with every topology: a Sentinel set-up subscribes on
//!   the current primary (again after a failover), a Cluster on one of its nodes (a classic
//!   PUBLISH is broadcast to every node of a cluster).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt as _;
use quick_cache::sync::Cache;
use redis::{Client, Script};

use super::{
    scoped_key, subject_verdict, with_scoped_key, RevocationCheck, RevocationError, RevocationStore,
    DEFAULT_EXPIRY_MARGIN, DEFAULT_SUBJECT_RETENTION, MAX_ENTRY_SECS,
};
use crate::guard::observe::metrics::{RedisMetrics, RedisOperation};
use crate::guard::observe::readiness::Readiness;
use crate::guard::redis_connection::{RedisConnection, RedisServers, Retry};
use crate::primitives::abort_on_drop::AbortOnDrop;
use crate::primitives::claims::TokenFacts;
use crate::primitives::clock;
use crate::primitives::error::ConfigError;

/// Default prefix of the store's keys and channel.
pub const DEFAULT_KEY_PREFIX: &str = "tjg:";
/// Default time allowed for one Redis round trip before the check fails closed.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Default capacity of the local cache (answers for tokens, and for subjects, each).
pub const DEFAULT_LOCAL_CACHE_CAPACITY: u64 = 50_000;
/// Default lifetime of a locally cached answer, a bound on staleness should an invalidation
/// message be lost while the subscription looks healthy.
pub const DEFAULT_LOCAL_CACHE_TTL: Duration = Duration::from_secs(30);
/// Default interval of the subscription's health check: a `PING` on the pub/sub connection,
/// so that a connection that died silently (a partition, a frozen server) stops the local
/// cache within this interval plus the timeout, not after [`DEFAULT_LOCAL_CACHE_TTL`].
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Records a revocation unless a later one is there, and tells every instance.
/// KEYS[1] the key; ARGV: cutoff, keep-until (0: no expiry), channel, message.
const REVOKE_SCRIPT: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '')
local cutoff = tonumber(ARGV[1])
if current == nil or current < cutoff then
  if ARGV[2] == '0' then
    redis.call('SET', KEYS[1], ARGV[1])
  else
    redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
  end
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
";

/// Builds a [`RedisRevocationStore`].
#[must_use]
pub struct RedisRevocationStoreBuilder {
    servers: RedisServers,
    prefix: String,
    timeout: Duration,
    local_capacity: u64,
    local_ttl: Duration,
    health_check_interval: Duration,
    margin: Duration,
    subject_retention: Duration,
}

impl fmt::Debug for RedisRevocationStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: not shown.
        f.debug_struct("RedisRevocationStoreBuilder")
            .field("servers", &self.servers)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("local_capacity", &self.local_capacity)
            .field("local_ttl", &self.local_ttl)
            .field("health_check_interval", &self.health_check_interval)
            .finish_non_exhaustive()
    }
}

impl RedisRevocationStoreBuilder {
    /// The prefix of every key and of the pub/sub channel (default `tjg:`): instances that
    /// share revocations use the same prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one Redis round trip may take before the request fails closed (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Capacity of the local cache (default 50 000 answers); 0 turns it off (every request
    /// asks Redis).
    pub fn local_cache_capacity(mut self, capacity: u64) -> Self {
        self.local_capacity = capacity;
        self
    }

    /// How long a locally cached answer is trusted at most (default 30 s): the local cache is
    /// emptied this often, a bound on staleness should an invalidation message be lost.
    pub fn local_cache_ttl(mut self, ttl: Duration) -> Self {
        self.local_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// How often the invalidation subscription is checked with a `PING` (default 1 s). A
    /// subscription whose `PING` is not answered within the timeout counts as lost: the local
    /// cache is emptied and not used until the store has subscribed again, so an invalidation
    /// that a silently dead connection would have missed cannot leave a revoked token cached.
    /// The store's Redis user needs the `PING` command (ACL `+ping`): without it the
    /// subscription is given up at every check, and the local cache stays off.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use tower_jwt_guard::revocation::RedisRevocationStore;
    ///
    /// let store = RedisRevocationStore::builder("redis://127.0.0.1:6379/")
    ///     .unwrap()
    ///     .health_check_interval(Duration::from_millis(500))
    ///     .build()
    ///     .unwrap();
    /// assert!(!store.is_subscribed()); // not yet: nothing waited for Redis
    /// # }
    /// ```
    pub fn health_check_interval(mut self, interval: Duration) -> Self {
        self.health_check_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long an entry is kept after the token's `exp` (default 5 minutes, at least the
    /// layer's leeway).
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// How long a subject revocation is kept (default 24 hours, at least the longest token lifetime).
    pub fn subject_retention(mut self, retention: Duration) -> Self {
        self.subject_retention = retention;
        self
    }

    /// Makes the store. Must run inside a Tokio runtime; does not wait for Redis: until Redis
    /// answers, checks fail closed.
    pub fn build(self) -> Result<RedisRevocationStore, ConfigError> {
        let conn = RedisConnection::new(self.servers, self.timeout)?;
        let local = Arc::new(Local {
            tokens: local_cache(self.local_capacity),
            subjects: local_cache(self.local_capacity),
            ttl: self.local_ttl,
            enabled: self.local_capacity > 0,
            live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            metrics: RedisMetrics::default(),
        });
        let channel = format!("{}revocations", self.prefix);
        let subscription = Subscription {
            conn: conn.clone(),
            channel: channel.clone(),
            local: Arc::clone(&local),
            timeout: self.timeout,
            health_check_interval: self.health_check_interval,
        };
        let subscriber = tokio::spawn(subscription.run());
        Ok(RedisRevocationStore {
            inner: Arc::new(Inner {
                conn,
                local,
                prefix: self.prefix,
                channel,
                margin: self.margin.as_secs(),
                subject_retention: self.subject_retention.as_secs(),
                script: Script::new(REVOKE_SCRIPT),
                subscriber: AbortOnDrop(subscriber),
            }),
        })
    }
}

fn local_cache<V: Clone>(capacity: u64) -> Cache<String, V> {
    Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX).max(1))
}

/// Revocations in Redis, shared by every instance of a service (feature `redis`).
///
/// Cheap to clone (an `Arc`): keep a clone for the handlers that revoke. Build it inside a
/// Tokio runtime; it connects lazily and reconnects by itself.
///
/// ```no_run
/// use tower_jwt_guard::revocation::{RedisRevocationStore, RevocationStore};
/// use tower_jwt_guard::JwtAuth;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisRevocationStore::builder("redis://127.0.0.1:6379/")?.build()?;
/// let auth = JwtAuth::builder()
///     .hmac_secret(std::env::var("JWT_SECRET")?)
///     .revocation(store.clone())
///     .build()?;
/// # let _ = auth;
/// // In a logout handler: every instance refuses this token from now on.
/// store.revoke_token(Some("https://auth.example.com"), "the-token-jti", 1_900_000_000).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRevocationStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: RedisConnection,
    local: Arc<Local>,
    prefix: String,
    channel: String,
    margin: u64,
    subject_retention: u64,
    script: Script,
    #[allow(dead_code)] // held for its Drop: stops the subscriber with the last clone
    subscriber: AbortOnDrop,
}

/// The local cache (quick_cache: lock-free reads, no allocation) and what makes it trustworthy.
struct Local {
    /// (issuer, jti) → revoked? (keyed as [`scoped_key`] writes them)
    tokens: Cache<String, bool>,
    /// (issuer, subject) → revoked at or before (`None`: not revoked)
    subjects: Cache<String, Option<u64>>,
    /// The cache is emptied this often (no clock read per request: clocks are not free).
    ttl: Duration,
    enabled: bool,
    /// Whether the invalidation subscription is up; if not, the cache is not used.
    live: AtomicBool,
    /// Bumped by every invalidation: an answer fetched across a bump is not cached.
    epoch: AtomicU64,
    metrics: RedisMetrics,
}

impl fmt::Debug for RedisRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocationStore")
            .field("prefix", &self.inner.prefix)
            .field("subscribed", &self.inner.local.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RedisRevocationStore {
    /// Starts a builder for the Redis at `url`: `redis://[user:password@]host:port/db`, or a
    /// Sentinel or Cluster URL ([`RedisServers::from_url`]).
    ///
    /// ```
    /// use tower_jwt_guard::revocation::RedisRevocationStore;
    ///
    /// assert!(RedisRevocationStore::builder("redis://127.0.0.1:6379/").is_ok());
    /// assert!(RedisRevocationStore::builder("not a url").is_err());
    /// ```
    pub fn builder(url: &str) -> Result<RedisRevocationStoreBuilder, ConfigError> {
        Ok(Self::builder_with(RedisServers::from_url(url)?))
    }

    /// Starts a builder around an existing client (one server).
    pub fn builder_for(client: Client) -> RedisRevocationStoreBuilder {
        Self::builder_with(RedisServers::standalone(client))
    }

    /// Starts a builder for these servers (one, a Sentinel-watched primary, or a Cluster).
    pub fn builder_with(servers: RedisServers) -> RedisRevocationStoreBuilder {
        RedisRevocationStoreBuilder {
            servers,
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_REDIS_TIMEOUT,
            local_capacity: DEFAULT_LOCAL_CACHE_CAPACITY,
            local_ttl: DEFAULT_LOCAL_CACHE_TTL,
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
            margin: DEFAULT_EXPIRY_MARGIN,
            subject_retention: DEFAULT_SUBJECT_RETENTION,
        }
    }

    /// Whether the invalidation subscription is up (the local cache is in use).
    pub fn is_subscribed(&self) -> bool {
        self.inner.local.live.load(Ordering::Acquire)
    }

    async fn record(
        &self,
        key: String,
        cutoff: u64,
        keep_until: u64,
        message: String,
    ) -> Result<(), RevocationError> {
        let now = clock::now();
        if keep_until <= now {
            return Ok(());
        }
        let expiry = if keep_until - now > MAX_ENTRY_SECS { 0 } else { keep_until };
        let mut invocation = self.inner.script.key(&key);
        invocation.arg(cutoff).arg(expiry).arg(&self.inner.channel).arg(&message);
        // Idempotent (a later cutoff wins; a second message drops nothing more): safe to repeat.
        // With `wait_for_replicas`, acknowledged only once the replicas have it.
        let started = std::time::Instant::now();
        let reply = self
            .inner
            .conn
            .run_replicated(Retry::Safe, &key, |mut conn| {
                let invocation = &invocation;
                async move { invocation.invoke_async::<i64>(&mut conn).await }
            })
            .await;
        self.inner.local.metrics.round_trip(RedisOperation::Revoke, started.elapsed());
        // This instance reads its own writes at once, without waiting for its own message
        // (and, should the command have timed out after all, a needless drop is harmless).
        self.inner.local.invalidate(message.as_bytes());
        match reply {
            Ok(_) => Ok(()),
            _ => {
                tracing::warn!(target: "tower_jwt_guard", "revocation could not be recorded: Redis unavailable");
                Err(RevocationError::Unavailable)
            }
        }
    }
}

impl RevocationStore for RedisRevocationStore {
    fn retention_margin(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.inner.margin))
    }

    /// Ready while the invalidation subscription is up: without it the store cannot trust its
    /// local cache, and Redis itself is most likely unreachable (every check would fail closed).
    fn readiness(&self) -> Readiness {
        if self.is_subscribed() {
            Readiness::Ready
        } else {
            Readiness::not_ready("the Redis invalidation subscription is down")
        }
    }

    fn check(&self, token: &TokenFacts) -> RevocationCheck {
        if token.jti.is_none() && token.subject.is_none() {
            return RevocationCheck::Valid;
        }
        let local = &self.inner.local;
        let issuer = token.issuer.as_deref();
        if local.enabled && local.live.load(Ordering::Acquire) {
            let revoked = match &token.jti {
                None => Some(false),
                Some(jti) => with_scoped_key(issuer, jti, |key| local.tokens.get(key)),
            };
            let cutoff = match &token.subject {
                None => Some(None),
                Some(subject) => with_scoped_key(issuer, subject, |key| local.subjects.get(key)),
            };
            match (revoked, cutoff) {
                (Some(true), _) => return RevocationCheck::Revoked,
                (_, Some(cutoff)) if subject_verdict(token.issued_at, cutoff) => {
                    return RevocationCheck::Revoked
                }
                (Some(false), Some(_)) => return RevocationCheck::Valid,
                _ => {}
            }
        }
        let inner = Arc::clone(&self.inner);
        let jti = token.jti.as_deref().map(|jti| scoped_key(issuer, jti));
        let subject = token.subject.as_deref().map(|subject| scoped_key(issuer, subject));
        let issued_at = token.issued_at;
        RevocationCheck::Pending(Box::pin(async move { inner.fetch(jti, subject, issued_at).await }))
    }

    fn revoke_token<'a>(
        &'a self,
        issuer: Option<&'a str>,
        jti: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let keep_until = expires_at.saturating_add(self.inner.margin);
        let scoped = scoped_key(issuer, jti);
        Box::pin(self.record(self.inner.token_key(&scoped), 0, keep_until, format!("j{scoped}")))
    }

    fn revoke_subject<'a>(
        &'a self,
        issuer: Option<&'a str>,
        subject: &'a str,
        issued_at_or_before: u64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let keep_until =
            super::subject_kept_until(issued_at_or_before, self.inner.subject_retention, self.inner.margin);
        let scoped = scoped_key(issuer, subject);
        Box::pin(self.record(
            self.inner.subject_key(&scoped),
            issued_at_or_before,
            keep_until,
            format!("s{scoped}"),
        ))
    }
}

impl Inner {
    /// The Redis key of a token revocation, from its [`scoped_key`].
    fn token_key(&self, scoped: &str) -> String {
        format!("{}revoked:jti:{scoped}", self.prefix)
    }

    /// The Redis key of a subject revocation, from its [`scoped_key`].
    fn subject_key(&self, scoped: &str) -> String {
        format!("{}revoked:sub:{scoped}", self.prefix)
    }

    /// One round trip: both keys at once; the answer is cached unless an invalidation came
    /// in meanwhile. `jti` and `subject` are [`scoped_key`]s.
    async fn fetch(
        &self,
        jti: Option<String>,
        subject: Option<String>,
        issued_at: Option<u64>,
    ) -> RevocationCheck {
        let epoch = self.local.epoch.load(Ordering::SeqCst);
        // Two GETs at once on the multiplexed connection (one round trip), not one MGET: the
        // keys are in different slots, and redis-rs's split of a multi-slot MGET fails while
        // a Cluster fails over or a replica rejoins.
        let keys =
            (jti.as_ref().map(|jti| self.token_key(jti)), subject.as_ref().map(|s| self.subject_key(s)));
        let started = std::time::Instant::now();
        let reply = self
            .conn
            .run(Retry::Safe, |conn| {
                let keys = &keys;
                async move {
                    let get = |key: &Option<String>| {
                        let mut conn = conn.clone();
                        let key = key.clone();
                        async move {
                            match key {
                                Some(key) => {
                                    redis::cmd("GET").arg(key).query_async::<Option<String>>(&mut conn).await
                                }
                                None => Ok(None),
                            }
                        }
                    };
                    futures_util::future::try_join(get(&keys.0), get(&keys.1)).await
                }
            })
            .await;
        self.local.metrics.round_trip(RedisOperation::Check, started.elapsed());
        let Ok((token_value, subject_value)) = reply else {
            // Per request: `debug`, or an outage would flood the logs; the lost subscription
            // is reported once as a warning.
            tracing::debug!(target: "tower_jwt_guard", "revocation check failed: Redis unavailable");
            return RevocationCheck::Unavailable;
        };
        // A token key that exists revokes, whatever it holds; a subject key that is not a
        // number (written by something else) revokes every token of the subject: fail closed.
        let revoked = jti.as_ref().map(|_| token_value.is_some());
        let cutoff = subject.as_ref().map(|_| subject_value.map(|value| value.parse().unwrap_or(u64::MAX)));
        self.remember(epoch, jti, revoked, subject, cutoff);
        if revoked == Some(true) || subject_verdict(issued_at, cutoff.flatten()) {
            RevocationCheck::Revoked
        } else {
            RevocationCheck::Valid
        }
    }

    fn remember(
        &self,
        epoch: u64,
        jti: Option<String>,
        revoked: Option<bool>,
        subject: Option<String>,
        cutoff: Option<Option<u64>>,
    ) {
        let local = &self.local;
        let unchanged = || local.live.load(Ordering::Acquire) && local.epoch.load(Ordering::SeqCst) == epoch;
        if !local.enabled || !unchanged() {
            return;
        }
        if let (Some(jti), Some(revoked)) = (&jti, revoked) {
            local.tokens.insert(jti.clone(), revoked);
        }
        if let (Some(subject), Some(cutoff)) = (&subject, cutoff) {
            local.subjects.insert(subject.clone(), cutoff);
        }
        // An invalidation that raced with the inserts: drop what was just cached.
        if !unchanged() {
            if let Some(jti) = &jti {
                local.tokens.remove(jti.as_str());
            }
            if let Some(subject) = &subject {
                local.subjects.remove(subject.as_str());
            }
        }
    }
}

impl Local {
    fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.tokens.clear();
        self.subjects.clear();
    }

    fn invalidate(&self, message: &[u8]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match message.split_first().map(|(kind, rest)| (kind, std::str::from_utf8(rest))) {
            Some((b'j', Ok(jti))) => drop(self.tokens.remove(jti)),
            Some((b's', Ok(subject))) => drop(self.subjects.remove(subject)),
            _ => self.forget_all(),
        }
    }
}

/// The invalidation subscription of one store.
struct Subscription {
    conn: RedisConnection,
    channel: String,
    local: Arc<Local>,
    timeout: Duration,
    health_check_interval: Duration,
}

impl Subscription {
    /// Keeps a subscription to the invalidation channel, reconnecting with a capped backoff.
    /// The local cache is trusted only while subscribed, and emptied on every (re)subscription
    /// since messages may have been missed.
    async fn run(self) {
        const FIRST_DELAY: Duration = Duration::from_millis(50);
        let max_delay = Duration::from_secs(1);
        let mut delay = FIRST_DELAY;
        let local = &self.local;
        local.metrics.subscribed(false);
        // With Sentinel: a new primary announced makes the subscription move to it (the old
        // primary may live on, cut off from the Sentinels, and never see a message again).
        let mut switches = self.conn.primary_switches();
        loop {
            if let Some(switches) = &mut switches {
                switches.borrow_and_update();
            }
            let connected = tokio::time::timeout(self.timeout, async {
                let mut pubsub = self.conn.pubsub().await?;
                pubsub.subscribe(&self.channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            })
            .await;
            if let Ok(Ok(pubsub)) = connected {
                local.forget_all();
                local.live.store(true, Ordering::Release);
                local.metrics.subscribed(true);
                tracing::debug!(target: "tower_jwt_guard", "revocation invalidations: subscribed");
                let subscribed_at = tokio::time::Instant::now();
                let lost = self.listen(pubsub, switches.as_mut()).await;
                // A subscription that lived a while starts the backoff again; one that fails at
                // once (a health check Redis refuses, say: an ACL without +ping) keeps backing off.
                if subscribed_at.elapsed() > max_delay + self.health_check_interval {
                    delay = FIRST_DELAY;
                }
                local.live.store(false, Ordering::Release);
                local.metrics.subscribed(false);
                local.forget_all();
                tracing::warn!(target: "tower_jwt_guard", "revocation invalidations: {lost}, reconnecting");
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max_delay);
        }
    }

    /// Applies invalidations until the subscription is lost; says how it was lost. Messages are
    /// applied while a health check waits for its answer.
    async fn listen(
        &self,
        pubsub: redis::aio::PubSub,
        mut switches: Option<&mut tokio::sync::watch::Receiver<u64>>,
    ) -> &'static str {
        let local = &self.local;
        let (sink, mut messages) = pubsub.split();
        let start = tokio::time::Instant::now();
        let mut sweep = tokio::time::interval_at(start + local.ttl, local.ttl);
        let mut health =
            tokio::time::interval_at(start + self.health_check_interval, self.health_check_interval);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut check: Option<BoxFuture<'static, bool>> = None;
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => local.invalidate(message.get_payload_bytes()),
                    None => return "subscription lost",
                },
                Ok(()) = async { switches.as_mut().expect("guarded by is_some").changed().await }, if switches.is_some() => {
                    return "the Sentinels announced a new primary";
                }
                _ = sweep.tick() => local.forget_all(),
                _ = health.tick(), if check.is_none() => {
                    let (mut sink, timeout) = (sink.clone(), self.timeout);
                    check = Some(Box::pin(async move {
                        matches!(tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await, Ok(Ok(_)))
                    }));
                }
                answered = async { check.as_mut().expect("guarded by is_some").await }, if check.is_some() => {
                    check = None;
                    if !answered {
                        return "subscription health check failed";
                    }
                }
            }
        }
    }
}
