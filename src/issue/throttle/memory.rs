//! [`MemoryThrottleStore`]: counted attempts and last TOTP steps in this process's memory.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use moka::Expiry;

use super::policy::ThrottlePolicy;
use super::store::{ThrottleError, ThrottleStore};

/// Default number of keys kept (attempt windows, and TOTP steps, each).
pub const DEFAULT_THROTTLE_CAPACITY: u64 = 200_000;

/// The attempts counted under one key: (reserved at, ms since the epoch; id).
#[derive(Clone)]
struct Window {
    keep: Duration,
    entries: Arc<[(u64, Arc<str>)]>,
}

#[derive(Clone, Copy)]
struct Step {
    value: u64,
    keep: Duration,
}

/// An entry is kept for its own duration after its last write: a window as long as its newest
/// attempt counts, a step as long as it was asked to be.
trait Keep {
    fn keep(&self) -> Duration;
}

impl Keep for Window {
    fn keep(&self) -> Duration {
        self.keep
    }
}

impl Keep for Step {
    fn keep(&self) -> Duration {
        self.keep
    }
}

struct KeepAfterWrite;

impl<V: Keep> Expiry<String, V> for KeepAfterWrite {
    fn expire_after_create(&self, _: &String, value: &V, _: Instant) -> Option<Duration> {
        Some(value.keep())
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &V,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.keep())
    }
}

/// Counted attempts and last used TOTP steps in memory, for a single instance (use
/// `RedisThrottleStore` to share them between instances: otherwise each instance gives an
/// attacker a budget of its own).
///
/// Bounded: at most [`DEFAULT_THROTTLE_CAPACITY`] keys of each kind by default; a key is
/// forgotten when its window has passed. When full, the least recently used keys are dropped:
/// a flood of more distinct accounts and networks than the capacity (between two attempts on
/// one key) makes it forget that key's count. Size the capacity for the keys one window sees.
/// Cheap to clone.
///
/// Every operation on a key is atomic (moka's per-key `and_compute_with`).
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_guard::issue::throttle::{MemoryThrottleStore, Throttle, ThrottleKey, ThrottlePolicy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = Arc::new(MemoryThrottleStore::with_capacity(10_000));
/// let mfa = Throttle::new("mfa", ThrottlePolicy::default(), store);
/// let alice = [ThrottleKey::account("alice")];
/// // 30 attempts at once: 5 are reserved, whatever the interleaving.
/// let attempts = futures_util::future::join_all((0..30).map(|_| mfa.reserve(&alice))).await;
/// assert_eq!(attempts.iter().filter(|a| a.is_ok()).count(), 5);
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryThrottleStore {
    windows: Cache<String, Window>,
    steps: Cache<String, Step>,
}

impl fmt::Debug for MemoryThrottleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryThrottleStore")
            .field("windows", &self.windows.entry_count())
            .field("steps", &self.steps.entry_count())
            .finish()
    }
}

impl Default for MemoryThrottleStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryThrottleStore {
    /// A store of [`DEFAULT_THROTTLE_CAPACITY`] keys.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_THROTTLE_CAPACITY)
    }

    /// A store of at most `keys` attempt windows and `keys` TOTP steps.
    pub fn with_capacity(keys: u64) -> Self {
        MemoryThrottleStore {
            windows: Cache::builder()
                .max_capacity(keys)
                .eviction_policy(EvictionPolicy::lru())
                .expire_after(KeepAfterWrite)
                .build(),
            steps: Cache::builder()
                .max_capacity(keys)
                .eviction_policy(EvictionPolicy::lru())
                .expire_after(KeepAfterWrite)
                .build(),
        }
    }

    fn reserve_now(&self, key: &str, id: &str, policy: ThrottlePolicy) -> Result<(), ThrottleError> {
        let now = now_ms();
        let window = policy.window_ms();
        let mut refused = None;
        self.windows.entry(key.to_owned()).and_compute_with(|current| {
            let mut entries: Vec<(u64, Arc<str>)> = current
                .map(|entry| {
                    entry
                        .into_value()
                        .entries
                        .iter()
                        .filter(|(at, _)| at.saturating_add(window) > now)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if entries.len() >= usize::try_from(policy.attempts()).unwrap_or(usize::MAX) {
                let oldest = entries.iter().map(|(at, _)| *at).min().unwrap_or(now);
                refused = Some(oldest.saturating_add(window).saturating_sub(now));
                return Op::Nop;
            }
            entries.push((now, id.into()));
            Op::Put(Window { keep: policy.window(), entries: entries.into() })
        });
        match refused {
            Some(wait_ms) => {
                Err(ThrottleError::Limited { retry_after: Duration::from_millis(wait_ms.max(1)) })
            }
            None => Ok(()),
        }
    }

    fn release_now(&self, key: &str, id: &str) {
        self.windows.entry(key.to_owned()).and_compute_with(|current| {
            let Some(entry) = current else { return Op::Nop };
            let window = entry.into_value();
            let entries: Vec<(u64, Arc<str>)> =
                window.entries.iter().filter(|(_, other)| &**other != id).cloned().collect();
            if entries.is_empty() {
                Op::Remove
            } else if entries.len() == window.entries.len() {
                Op::Nop
            } else {
                Op::Put(Window { keep: window.keep, entries: entries.into() })
            }
        });
    }

    fn advance_now(&self, key: &str, value: u64, keep: Duration) -> bool {
        let mut stored = false;
        self.steps.entry(key.to_owned()).and_compute_with(|current| match current {
            Some(entry) if entry.value().value >= value => Op::Nop,
            _ => {
                stored = true;
                Op::Put(Step { value, keep })
            }
        });
        stored
    }
}

impl ThrottleStore for MemoryThrottleStore {
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        id: &'a str,
        policy: ThrottlePolicy,
    ) -> BoxFuture<'a, Result<(), ThrottleError>> {
        let result = self.reserve_now(key, id, policy);
        Box::pin(async move { result })
    }

    fn release<'a>(&'a self, key: &'a str, id: &'a str) -> BoxFuture<'a, Result<(), ThrottleError>> {
        self.release_now(key, id);
        Box::pin(async { Ok(()) })
    }

    fn advance<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, ThrottleError>> {
        let stored = self.advance_now(key, value, keep);
        Box::pin(async move { Ok(stored) })
    }
}

/// Milliseconds since the Unix epoch (the Redis store uses the same clock, so that instances
/// agree on a window as they agree on a token's `exp`).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_window_frees_its_oldest_slot_first() {
        let store = MemoryThrottleStore::new();
        let policy = ThrottlePolicy::new(2, Duration::from_secs(1));
        store.reserve("k", "1", policy).await.unwrap();
        store.reserve("k", "2", policy).await.unwrap();
        let Err(ThrottleError::Limited { retry_after }) = store.reserve("k", "3", policy).await else {
            panic!()
        };
        assert!(retry_after <= Duration::from_secs(1));
        // Releasing one frees one slot; releasing it again, or an unknown id, changes nothing.
        store.release("k", "1").await.unwrap();
        store.release("k", "1").await.unwrap();
        store.release("other", "1").await.unwrap();
        store.reserve("k", "3", policy).await.unwrap();
        assert!(store.reserve("k", "4", policy).await.is_err());
        // Once the window has passed, the key has its budget again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        store.reserve("k", "5", policy).await.unwrap();
        store.reserve("k", "6", policy).await.unwrap();
    }

    /// Threads racing for one key's last slots: never more than the policy's attempts.
    #[test]
    fn concurrent_reservations_never_exceed_the_budget() {
        let store = MemoryThrottleStore::new();
        let policy = ThrottlePolicy::new(5, Duration::from_secs(60));
        let reserved = std::sync::atomic::AtomicUsize::new(0);
        let stepped = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let (store, reserved, stepped) = (&store, &reserved, &stepped);
                scope.spawn(move || {
                    for i in 0..10 {
                        let id = format!("{thread}-{i}");
                        if store.reserve_now("k", &id, policy).is_ok() {
                            reserved.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        if store.advance_now("t", 7, Duration::from_secs(60)) {
                            stepped.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(reserved.into_inner(), 5);
        assert_eq!(stepped.into_inner(), 1);
    }

    #[tokio::test]
    async fn steps_only_advance() {
        let store = MemoryThrottleStore::new();
        let keep = Duration::from_secs(60);
        assert!(store.advance("t", 10, keep).await.unwrap());
        assert!(!store.advance("t", 10, keep).await.unwrap());
        assert!(!store.advance("t", 9, keep).await.unwrap());
        assert!(store.advance("t", 11, keep).await.unwrap());
        assert!(store.advance("u", 1, keep).await.unwrap());
    }
}
