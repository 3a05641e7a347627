//! DPoP proof replay (RFC 9449 §11.1): a proof's `jti` is accepted once, keyed by the proof
//! key's thumbprint and the `jti`, for as long as the proof itself would be accepted.
//!
//! A [`ReplayStore`] records the key and answers whether it was new. The memory store
//! ([`MemoryReplayStore`]) is bounded and forgets entries once their proof has expired; when it
//! is full of live entries it answers [`ReplayCheck::Unavailable`] (503): forgetting a live
//! entry would let its proof be replayed. With the `redis` feature,
//! [`RedisReplayStore`](super::RedisReplayStore) is shared by every instance (`SET NX EXAT`).
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
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::guard::clock;

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

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
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

/// The keys are SHA-256 outputs: their first bytes are already a good hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 ^= value as u64;
    }
}

struct Shard {
    /// First 128 bits of the key → expiry.
    entries: HashMap<u128, u64, BuildHasherDefault<KeyHasher>>,
    swept_at: u64,
}

/// The in-process [`ReplayStore`]: sharded, bounded, entries dropped once expired.
pub struct MemoryReplayStore {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
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
        let shards =
            (0..SHARDS).map(|_| Mutex::new(Shard { entries: HashMap::default(), swept_at: 0 })).collect();
        MemoryReplayStore { shards, shard_capacity }
    }

    /// How many proofs are remembered (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map_or(0, |shard| shard.entries.len())).sum()
    }

    /// Whether no proof is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayStore for MemoryReplayStore {
    fn check_and_record(&self, key: &ReplayKey, expires_at: u64) -> ReplayCheck {
        let id = u128::from_le_bytes(key.0[..16].try_into().unwrap_or_default());
        let Ok(mut shard) = self.shards[(key.0[16] as usize) % SHARDS].lock() else {
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

    #[test]
    fn keys_differ_by_thumbprint_and_jti() {
        assert_ne!(ReplayKey::new(&[1; 32], "a"), ReplayKey::new(&[2; 32], "a"));
        assert_ne!(ReplayKey::new(&[1; 32], "a"), ReplayKey::new(&[1; 32], "b"));
    }
}
