//! DPoP proof replay (RFC 9449 §11.1): a proof's `jti` is accepted once, keyed by the proof
//! key's thumbprint and the `jti`, for as long as the proof itself would be accepted.
//!
//! A [`ReplayStore`] records the key and answers whether it was new. The memory store
//! ([`MemoryReplayStore`]) is bounded and forgets entries once their proof has expired; when it
//! is full of live entries it answers [`ReplayCheck::Unavailable`] (503): forgetting a live
//! entry would let its proof be replayed. Its shards and tables are chosen by a keyed hash
//! with a per-store random key (std's `RandomState`): the keys come from proofs a client
//! chooses, and must not let it aim at one shard. With the `redis` feature,
//! [`RedisReplayStore`](super::RedisReplayStore) is shared by every instance (`SET NX PX`, the
//! proof's remaining lifetime).
//! A store that cannot answer makes the request fail closed (503 `AUTH_UNAVAILABLE`).
//!
//! ```
//! use tower_jwt_guard::revocation::{MemoryReplayStore, ReplayCheck, ReplayKey, ReplayStore};
//!
//! let store = MemoryReplayStore::new();
//! let key = ReplayKey::new(&[7; 32], "proof-1");
//! assert!(matches!(store.check_and_record(&key, 4_000_000_000), ReplayCheck::Fresh));
//! assert!(matches!(store.check_and_record(&key, 4_000_000_000), ReplayCheck::Replayed));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::primitives::clock;

/// Default capacity of the [`MemoryReplayStore`] (live proofs).
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// What identifies a proof: SHA-256 of the key's thumbprint and the proof's `jti`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    /// The key of the proof `jti` signed by the key whose RFC 7638 thumbprint is `thumbprint`.
    pub fn new(thumbprint: &[u8], jti: &str) -> Self {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(&(thumbprint.len() as u64).to_be_bytes());
        ctx.update(thumbprint);
        ctx.update(jti.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        ReplayKey(key)
    }

    /// The key's bytes (the Redis store's key).
    #[cfg(feature = "redis")]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplayKey(..)")
    }
}

/// The answer of a [`ReplayStore`].
#[non_exhaustive]
pub enum ReplayCheck {
    /// First use: recorded.
    Fresh,
    /// Seen before: a replay.
    Replayed,
    /// The store cannot answer (down, or full of live entries).
    Unavailable,
    /// The store must ask a remote server.
    Pending(BoxFuture<'static, ReplayCheck>),
}

impl fmt::Debug for ReplayCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayCheck::Fresh => "Fresh",
            ReplayCheck::Replayed => "Replayed",
            ReplayCheck::Unavailable => "Unavailable",
            ReplayCheck::Pending(_) => "Pending",
        })
    }
}

/// Where used DPoP proofs are remembered.
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` until `expires_at` (seconds since the epoch) and says whether it is new.
    /// Answer from memory when possible; [`ReplayCheck::Pending`] only for a remote store.
    fn check_and_record(&self, key: &ReplayKey, expires_at: u64) -> ReplayCheck;
}

impl<S: ReplayStore + ?Sized> ReplayStore for std::sync::Arc<S> {
    fn check_and_record(&self, key: &ReplayKey, expires_at: u64) -> ReplayCheck {
        (**self).check_and_record(key, expires_at)
    }
}

const SHARDS: usize = 16;

struct Shard {
    /// First 128 bits of the key → expiry, hashed with the store's random key.
    entries: HashMap<u128, u64, RandomState>,
    swept_at: u64,
}

/// The in-process [`ReplayStore`]: sharded, bounded, entries dropped once expired.
pub struct MemoryReplayStore {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
    /// The per-store random key of the shard choice: nobody can aim at one shard.
    hasher: RandomState,
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore").field("capacity", &(self.shard_capacity * SHARDS)).finish()
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        MemoryReplayStore::new()
    }
}

impl MemoryReplayStore {
    /// A store of [`DEFAULT_REPLAY_CAPACITY`] live proofs.
    pub fn new() -> Self {
        MemoryReplayStore::with_capacity(DEFAULT_REPLAY_CAPACITY)
    }

    /// A store of about `capacity` live proofs: beyond, new proofs are refused (503) until
    /// older ones expire.
    pub fn with_capacity(capacity: usize) -> Self {
        let shard_capacity = capacity.div_ceil(SHARDS).max(1);
        let hasher = RandomState::new();
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(Shard { entries: HashMap::with_hasher(hasher.clone()), swept_at: 0 }))
            .collect();
        MemoryReplayStore { shards, shard_capacity, hasher }
    }

    /// How many proofs are remembered (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map_or(0, |shard| shard.entries.len())).sum()
    }

    /// Whether no proof is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard of a key: a keyed hash, unpredictable without the store's random key.
    fn shard_of(&self, id: u128) -> usize {
        (self.hasher.hash_one(id) % SHARDS as u64) as usize
    }
}

impl ReplayStore for MemoryReplayStore {
    fn check_and_record(&self, key: &ReplayKey, expires_at: u64) -> ReplayCheck {
        let id = u128::from_le_bytes(key.0[..16].try_into().unwrap_or_default());
        let Ok(mut shard) = self.shards[self.shard_of(id)].lock() else {
            return ReplayCheck::Unavailable;
        };
        let now = clock::fast_now();
        if let Some(&until) = shard.entries.get(&id) {
            if until >= now {
                return ReplayCheck::Replayed;
            }
        }
        // Expired entries go once a second, or when the shard is full.
        if shard.entries.len() >= self.shard_capacity || (shard.swept_at < now && shard.entries.len() > 1024)
        {
            shard.entries.retain(|_, until| *until >= now);
            shard.swept_at = now;
            if shard.entries.len() >= self.shard_capacity {
                return ReplayCheck::Unavailable;
            }
        }
        shard.entries.insert(id, expires_at);
        ReplayCheck::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_store_refuses_rather_than_forgets() {
        let store = MemoryReplayStore::with_capacity(SHARDS);
        let far = clock::now() + 3600;
        let mut refused = 0;
        for i in 0..200 {
            match store.check_and_record(&ReplayKey::new(&[1; 32], &i.to_string()), far) {
                ReplayCheck::Fresh => {}
                ReplayCheck::Unavailable => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(refused > 0);
        // Expired entries make room.
        let store = MemoryReplayStore::with_capacity(SHARDS);
        for i in 0..200 {
            let answer = store.check_and_record(&ReplayKey::new(&[1; 32], &i.to_string()), 1);
            assert!(matches!(answer, ReplayCheck::Fresh), "{i}");
        }
    }

    /// Keys ground to one shard of the old, public choice (the 17th byte of the key) spread over
    /// the shards, and two stores choose differently for the same keys.
    #[test]
    fn an_attacker_cannot_aim_at_one_shard() {
        let id = |key: &ReplayKey| u128::from_le_bytes(key.0[..16].try_into().unwrap());
        let aimed: Vec<ReplayKey> = (0..)
            .map(|i: u32| ReplayKey::new(&[3; 32], &i.to_string()))
            .filter(|key| (key.0[16] as usize).is_multiple_of(SHARDS))
            .take(64)
            .collect();
        let (one, two) = (MemoryReplayStore::new(), MemoryReplayStore::new());
        let shards = |store: &MemoryReplayStore| -> Vec<usize> {
            aimed.iter().map(|key| store.shard_of(id(key))).collect()
        };
        let (first, second) = (shards(&one), shards(&two));
        let mut used = first.clone();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() > SHARDS / 2, "64 aimed keys fell in {} shards", used.len());
        assert_ne!(first, second, "two stores chose the same shards");
    }

    #[test]
    fn keys_differ_by_thumbprint_and_jti() {
        assert_ne!(ReplayKey::new(&[1; 32], "a"), ReplayKey::new(&[2; 32], "a"));
        assert_ne!(ReplayKey::new(&[1; 32], "a"), ReplayKey::new(&[1; 32], "b"));
    }
}
