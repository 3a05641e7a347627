//! The verified-token cache: a client reuses its token for minutes, so a service verifies the
//! same few tokens again and again. Only tokens that verified are cached, keyed by the full
//! token (an encrypted token too: a hit skips its decryption as well); an entry dies with the
//! key that verified it; time, binding and revocation are still checked on every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use quick_cache::sync::Cache;

use super::{Verified, VerifiedWith};
use crate::guard::keys::VerificationKey;
use crate::guard::observe::metrics::CacheMetrics;

/// Hit and miss counts of the verified-token cache.
///
/// ```
/// let stats = tower_jwt_guard::CacheStats::default();
/// assert_eq!(stats.hits + stats.misses, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests whose token was found verified in the cache.
    pub hits: u64,
    /// Requests whose token had to be verified.
    pub misses: u64,
    /// Tokens in the cache now.
    pub len: usize,
    /// The most tokens the cache holds.
    pub capacity: usize,
}

struct Entry<C> {
    verified: Verified<C>,
    /// The signing key, if a signature verified the token (`None`: a claims set encrypted under
    /// a static shared secret, alive as long as the cache).
    key: Option<Weak<VerificationKey>>,
}

pub(crate) struct TokenCache<C> {
    entries: Cache<Box<[u8]>, Arc<Entry<C>>>,
    capacity: usize,
    max_token_len: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    metrics: CacheMetrics,
}

impl<C> TokenCache<C> {
    pub(crate) fn new(capacity: usize, max_token_len: usize) -> Self {
        TokenCache {
            entries: Cache::new(capacity),
            capacity,
            max_token_len,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            metrics: CacheMetrics::default(),
        }
    }

    /// The verified token, if cached and its key is still in use.
    pub(crate) fn get(&self, token: &[u8]) -> Option<Verified<C>> {
        let found = self.entries.get(token).and_then(|entry| {
            if entry.key.as_ref().is_none_or(|key| key.strong_count() > 0) {
                Some(entry.verified.clone())
            } else {
                self.entries.remove(token);
                None
            }
        });
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        self.metrics.lookup(found.is_some());
        found
    }

    pub(crate) fn insert(&self, token: &str, verified: &Verified<C>, with: &VerifiedWith) {
        if token.len() <= self.max_token_len {
            let key = match with {
                VerifiedWith::Signature(key) => Some(Arc::downgrade(key)),
                #[cfg(feature = "jwe")]
                VerifiedWith::SharedSecret => None,
            };
            let entry = Entry { verified: verified.clone(), key };
            self.entries.insert(token.as_bytes().into(), Arc::new(entry));
            self.metrics.size(self.entries.len());
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            len: self.entries.len(),
            capacity: self.capacity,
        }
    }
}
