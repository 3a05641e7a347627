//! The introspection cache: answers remembered per layer, already decoded into `C`, so that a
//! hit costs what a verified-JWT cache hit costs. Keyed by the SHA-256 of the token: the token
//! itself is never kept. An active answer lives until the token's `exp` and at most the
//! configured TTL; an inactive one for the (short) negative TTL; the capacity is bounded.
//! What is still checked on a hit, as for a JWT: time, custom checks, bindings, revocation.

use aws_lc_rs::digest::{digest, SHA256};
use quick_cache::sync::Cache;

use crate::guard::verify::Verified;

/// The SHA-256 of a token: the cache's key, and the key of the calls in flight.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenHash([u8; 32]);

impl TokenHash {
    pub(crate) fn of(token: &str) -> Self {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        TokenHash(hash)
    }
}

/// A remembered answer.
pub(crate) enum Cached<C> {
    /// The token is active: its verified claims.
    Active(Verified<C>),
    /// The endpoint said `active: false`.
    Inactive,
}

impl<C> Clone for Cached<C> {
    fn clone(&self) -> Self {
        match self {
            Cached::Active(verified) => Cached::Active(verified.clone()),
            Cached::Inactive => Cached::Inactive,
        }
    }
}

struct Entry<C> {
    answer: Cached<C>,
    /// Served while `now < until` (seconds since the epoch).
    until: u64,
}

impl<C> Clone for Entry<C> {
    fn clone(&self) -> Self {
        Entry { answer: self.answer.clone(), until: self.until }
    }
}

pub(crate) struct IntrospectionCache<C> {
    entries: Cache<TokenHash, Entry<C>>,
}

impl<C> IntrospectionCache<C> {
    pub(crate) fn new(capacity: usize) -> Self {
        IntrospectionCache { entries: Cache::new(capacity) }
    }

    /// The answer for the token hashed to `hash`, while it may still be served.
    pub(crate) fn get(&self, hash: &TokenHash, now: u64) -> Option<Cached<C>> {
        let entry = self.entries.get(hash)?;
        if now < entry.until {
            Some(entry.answer)
        } else {
            self.entries.remove(hash);
            None
        }
    }

    /// Remembers `answer` until `until`; an answer already dead is not stored.
    pub(crate) fn insert(&self, hash: TokenHash, answer: Cached<C>, until: u64, now: u64) {
        if now < until {
            self.entries.insert(hash, Entry { answer, until });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_end_at_their_bound() {
        let cache = IntrospectionCache::<()>::new(4);
        let hash = TokenHash::of("opaque");
        assert!(TokenHash::of("opaque") == hash && TokenHash::of("opaquE") != hash);
        cache.insert(hash, Cached::Inactive, 100, 90);
        assert!(matches!(cache.get(&hash, 99), Some(Cached::Inactive)));
        assert!(cache.get(&hash, 100).is_none());
        assert!(cache.get(&hash, 99).is_none(), "an expired entry is dropped");
        cache.insert(hash, Cached::Inactive, 100, 100);
        assert!(cache.get(&hash, 0).is_none(), "a dead answer is not stored");
    }
}
