//! [`MemoryRevocationStore`]: revocations kept in this process, bounded, each entry gone
//! when the token it revokes has expired.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use moka::Expiry;

use super::{
    scoped_key, subject_verdict, with_scoped_key, RevocationCheck, RevocationError, RevocationStore,
    DEFAULT_EXPIRY_MARGIN, DEFAULT_SUBJECT_RETENTION, MAX_ENTRY_SECS,
};
use crate::primitives::claims::TokenFacts;
use crate::primitives::clock;

/// Default number of live token revocations (and, separately, subject revocations) kept.
pub const DEFAULT_REVOCATION_CAPACITY: u64 = 100_000;

/// The caches are keyed by issuer and `jti` (or subject): see [`super::scoped_key`].
///
/// An entry of the store: the instant (seconds since the epoch) it may be forgotten, and for
/// a subject the `iat` at or before which its tokens are refused.
#[derive(Clone, Copy)]
struct Entry {
    keep_until: u64,
    cutoff: u64,
}

/// Each entry expires at its own `keep_until` (moka's per-entry expiry).
struct KeepUntil;

impl KeepUntil {
    fn remaining(entry: &Entry) -> Option<Duration> {
        let secs = entry.keep_until.saturating_sub(clock::now()).min(MAX_ENTRY_SECS);
        Some(Duration::from_secs(secs))
    }
}

impl Expiry<String, Entry> for KeepUntil {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Self::remaining(entry)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Self::remaining(entry)
    }
}

/// Revocations in this process's memory: the embedded default.
///
/// Bounded: at most `capacity` live token revocations and as many subject revocations. Each
/// entry is dropped once the token it revokes has expired (plus a margin covering the layer's
/// leeway), so the store does not grow with time. A live revocation is never evicted to make
/// room: when the store is full, revoking fails with [`RevocationError::CapacityExceeded`].
///
/// Cheap to clone (an `Arc`): keep one clone for the handlers that revoke and give one to
/// [`JwtAuthBuilder::revocation`](crate::JwtAuthBuilder::revocation).
///
/// ```
/// use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationCheck, RevocationStore};
/// use tower_jwt_guard::{JwtAuth, TokenFacts};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryRevocationStore::new();
/// let auth = JwtAuth::builder()
///     .hmac_secret([7u8; 32])
///     .revocation(store.clone())
///     .build()?;
/// # let _ = auth;
///
/// // Later, "log out everywhere" for alice: every token issued up to now is refused.
/// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
/// store.revoke_subject(None, "alice", now).await?;
///
/// let mut old = TokenFacts::default();
/// old.subject = Some("alice".into());
/// old.issued_at = Some(now - 60);
/// assert!(matches!(store.check(&old), RevocationCheck::Revoked));
///
/// let mut newer = old.clone();
/// newer.issued_at = Some(now + 1);
/// assert!(matches!(store.check(&newer), RevocationCheck::Valid));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryRevocationStore {
    inner: Arc<Inner>,
}

struct Inner {
    tokens: Cache<String, Entry>,
    subjects: Cache<String, Entry>,
    capacity: u64,
    margin: u64,
    subject_retention: u64,
    /// Revocations are rare: they are serialised so the capacity check is exact.
    writes: Mutex<()>,
    /// Whether anything was ever recorded: until then `check` answers without a lookup.
    recorded: AtomicBool,
}

impl fmt::Debug for MemoryRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRevocationStore")
            .field("tokens", &self.inner.tokens.entry_count())
            .field("subjects", &self.inner.subjects.entry_count())
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryRevocationStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRevocationStore {
    /// A store with the default capacity, margin and subject retention.
    pub fn new() -> Self {
        Self::with_settings(DEFAULT_REVOCATION_CAPACITY, DEFAULT_EXPIRY_MARGIN, DEFAULT_SUBJECT_RETENTION)
    }

    /// A store keeping at most `capacity` live token revocations (and as many subject revocations).
    ///
    /// ```
    /// use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationError, RevocationStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryRevocationStore::with_capacity(1);
    /// store.revoke_token(None, "a", 4_000_000_000).await.unwrap();
    /// assert_eq!(store.revoke_token(None, "b", 4_000_000_000).await, Err(RevocationError::CapacityExceeded));
    /// # }
    /// ```
    pub fn with_capacity(capacity: u64) -> Self {
        Self::with_settings(capacity, DEFAULT_EXPIRY_MARGIN, DEFAULT_SUBJECT_RETENTION)
    }

    /// How long an entry is kept after the token's `exp` (default 5 minutes); it must be at
    /// least the layer's leeway, or a revoked token would pass again during the leeway.
    /// A setting for a new store: it returns a fresh, empty store.
    pub fn expiry_margin(self, margin: Duration) -> Self {
        let inner = &self.inner;
        Self::with_settings(inner.capacity, margin, Duration::from_secs(inner.subject_retention))
    }

    /// How long a subject revocation is kept (default 24 hours): at least the lifetime of
    /// the longest-lived token you mint.
    /// A setting for a new store: it returns a fresh, empty store.
    pub fn subject_retention(self, retention: Duration) -> Self {
        let inner = &self.inner;
        Self::with_settings(inner.capacity, Duration::from_secs(inner.margin), retention)
    }

    fn with_settings(capacity: u64, margin: Duration, subject_retention: Duration) -> Self {
        let cache = || {
            Cache::builder()
                .max_capacity(capacity)
                .eviction_policy(EvictionPolicy::lru())
                .expire_after(KeepUntil)
                .build()
        };
        MemoryRevocationStore {
            inner: Arc::new(Inner {
                tokens: cache(),
                subjects: cache(),
                capacity,
                margin: margin.as_secs(),
                subject_retention: subject_retention.as_secs(),
                writes: Mutex::new(()),
                recorded: AtomicBool::new(false),
            }),
        }
    }

    /// The number of live entries (token and subject revocations), after dropping expired ones.
    ///
    /// ```
    /// use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = MemoryRevocationStore::new();
    /// store.revoke_token(None, "expired long ago", 1_000).await.unwrap();
    /// assert_eq!(store.len(), 0);
    /// store.revoke_token(None, "live", 4_000_000_000).await.unwrap();
    /// assert_eq!(store.len(), 1);
    /// # }
    /// ```
    pub fn len(&self) -> u64 {
        self.inner.tokens.run_pending_tasks();
        self.inner.subjects.run_pending_tasks();
        self.inner.tokens.entry_count() + self.inner.subjects.entry_count()
    }

    /// Whether the store holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `entry` under `key`, keeping the later cutoff of an existing entry.
    fn record(&self, cache: &Cache<String, Entry>, key: &str, entry: Entry) -> Result<(), RevocationError> {
        if entry.keep_until <= clock::now() {
            return Ok(());
        }
        let _serialised = self.inner.writes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match cache.get(key) {
            Some(existing) if existing.cutoff >= entry.cutoff && existing.keep_until >= entry.keep_until => {
                Ok(())
            }
            existing => {
                if existing.is_none() {
                    cache.run_pending_tasks();
                    if cache.entry_count() >= self.inner.capacity {
                        tracing::warn!(
                            target: "tower_jwt_guard",
                            capacity = self.inner.capacity,
                            "revocation store full: revocation refused"
                        );
                        return Err(RevocationError::CapacityExceeded);
                    }
                }
                let merged = existing.map_or(entry, |old| Entry {
                    keep_until: old.keep_until.max(entry.keep_until),
                    cutoff: old.cutoff.max(entry.cutoff),
                });
                self.inner.recorded.store(true, Ordering::SeqCst);
                cache.insert(key.to_owned(), merged);
                Ok(())
            }
        }
    }
}

impl RevocationStore for MemoryRevocationStore {
    fn retention_margin(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.inner.margin))
    }

    fn check(&self, token: &TokenFacts) -> RevocationCheck {
        if !self.inner.recorded.load(Ordering::Acquire) {
            return RevocationCheck::Valid;
        }
        let issuer = token.issuer.as_deref();
        if let Some(jti) = &token.jti {
            if with_scoped_key(issuer, jti, |key| self.inner.tokens.contains_key(key)) {
                return RevocationCheck::Revoked;
            }
        }
        if let Some(subject) = &token.subject {
            // `contains_key` first: it does not record a read, and most subjects are not revoked.
            let subjects = &self.inner.subjects;
            let cutoff = with_scoped_key(issuer, subject, |key| {
                if subjects.contains_key(key) {
                    subjects.get(key).map(|entry| entry.cutoff)
                } else {
                    None
                }
            });
            if subject_verdict(token.issued_at, cutoff) {
                return RevocationCheck::Revoked;
            }
        }
        RevocationCheck::Valid
    }

    fn revoke_token<'a>(
        &'a self,
        issuer: Option<&'a str>,
        jti: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let entry = Entry { keep_until: expires_at.saturating_add(self.inner.margin), cutoff: 0 };
        let result = self.record(&self.inner.tokens, &scoped_key(issuer, jti), entry);
        Box::pin(async move { result })
    }

    fn revoke_subject<'a>(
        &'a self,
        issuer: Option<&'a str>,
        subject: &'a str,
        issued_at_or_before: u64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let keep_until =
            super::subject_kept_until(issued_at_or_before, self.inner.subject_retention, self.inner.margin);
        let entry = Entry { keep_until, cutoff: issued_at_or_before };
        let result = self.record(&self.inner.subjects, &scoped_key(issuer, subject), entry);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(jti: &str, subject: &str, iat: Option<u64>) -> TokenFacts {
        TokenFacts {
            jti: Some(jti.into()),
            subject: Some(subject.into()),
            issued_at: iat,
            ..Default::default()
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        futures_util::FutureExt::now_or_never(future).expect("memory store answers at once")
    }

    #[test]
    fn a_later_subject_revocation_wins_over_an_earlier_one() {
        let store = MemoryRevocationStore::new();
        let now = clock::now();
        block_on(store.revoke_subject(None, "alice", now)).unwrap();
        block_on(store.revoke_subject(None, "alice", now - 100)).unwrap();
        assert!(matches!(store.check(&facts("x", "alice", Some(now))), RevocationCheck::Revoked));
        assert!(matches!(store.check(&facts("x", "alice", Some(now + 1))), RevocationCheck::Valid));
        assert!(matches!(store.check(&facts("x", "alice", None)), RevocationCheck::Revoked));
        assert!(matches!(store.check(&facts("x", "bob", None)), RevocationCheck::Valid));
    }

    #[test]
    fn the_margin_keeps_a_just_expired_token_revoked() {
        let store = MemoryRevocationStore::new().expiry_margin(Duration::from_secs(60));
        let now = clock::now();
        block_on(store.revoke_token(None, "j", now - 10)).unwrap();
        assert!(matches!(store.check(&facts("j", "s", Some(now))), RevocationCheck::Revoked));
        let store = store.expiry_margin(Duration::ZERO);
        block_on(store.revoke_token(None, "j", now - 10)).unwrap();
        assert!(store.is_empty());
    }

    #[test]
    fn revocations_are_per_issuer() {
        let store = MemoryRevocationStore::new();
        let now = clock::now();
        let of = |issuer: Option<&str>, jti: &str, subject: &str| TokenFacts {
            issuer: issuer.map(str::to_owned),
            ..facts(jti, subject, Some(now))
        };
        block_on(store.revoke_token(Some("https://a"), "1", now + 60)).unwrap();
        assert!(matches!(store.check(&of(Some("https://a"), "1", "x")), RevocationCheck::Revoked));
        assert!(matches!(store.check(&of(Some("https://b"), "1", "x")), RevocationCheck::Valid));
        assert!(matches!(store.check(&of(None, "1", "x")), RevocationCheck::Valid));
        block_on(store.revoke_subject(Some("https://b"), "alice", now)).unwrap();
        assert!(matches!(store.check(&of(Some("https://b"), "2", "alice")), RevocationCheck::Revoked));
        assert!(matches!(store.check(&of(Some("https://a"), "2", "alice")), RevocationCheck::Valid));
        // A length prefix keeps ("https://a", "1") apart from ("https://a1", "")-like pairs.
        block_on(store.revoke_token(Some("a:"), "b", now + 60)).unwrap();
        assert!(matches!(store.check(&of(Some("a"), ":b", "x")), RevocationCheck::Valid));
    }
}
