//! [`ThrottleStore`]: where a throttle's counted attempts and the last used TOTP steps live,
//! and [`ThrottleError`].

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::policy::ThrottlePolicy;

/// Why an attempt was not reserved.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_guard::issue::throttle::ThrottleError;
///
/// let limited = ThrottleError::Limited { retry_after: Duration::from_secs(90) };
/// assert_eq!(limited.retry_after(), Some(Duration::from_secs(90)));
/// assert_eq!(limited.to_string(), "too many attempts");
/// assert_eq!(ThrottleError::Unavailable.retry_after(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleError {
    /// The key has all the attempts its policy allows: try again after `retry_after`
    /// (answer 429 with `Retry-After`).
    Limited {
        /// When the oldest counted attempt leaves the window (at least one second).
        retry_after: Duration,
    },
    /// The shared store cannot be reached: fail closed (answer 503), never let the attempt
    /// through uncounted.
    Unavailable,
}

impl ThrottleError {
    /// The wait of a [`Limited`](ThrottleError::Limited) answer.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ThrottleError::Limited { retry_after } => Some(*retry_after),
            ThrottleError::Unavailable => None,
        }
    }

    /// The value of a `Retry-After` header: whole seconds, rounded up, at least 1.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jwt_guard::issue::throttle::ThrottleError;
    ///
    /// let limited = ThrottleError::Limited { retry_after: Duration::from_millis(1500) };
    /// assert_eq!(limited.retry_after_secs(), Some(2));
    /// ```
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after()
            .map(|wait| wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0)).max(1))
    }
}

impl fmt::Display for ThrottleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThrottleError::Limited { .. } => "too many attempts",
            ThrottleError::Unavailable => "the throttle store is unavailable",
        })
    }
}

impl std::error::Error for ThrottleError {}

/// Where counted attempts and the last used TOTP steps live: [`MemoryThrottleStore`]
/// (one process) or, with the `redis` feature, `RedisThrottleStore` (every instance). Each
/// operation is atomic on its key, so concurrent attempts never both take the last slot.
///
/// Applications use it through [`Throttle`] and [`TotpSteps`]; implement it for another
/// shared store.
///
/// [`MemoryThrottleStore`]: super::MemoryThrottleStore
/// [`Throttle`]: super::Throttle
/// [`TotpSteps`]: super::TotpSteps
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_guard::issue::throttle::{MemoryThrottleStore, ThrottleError, ThrottlePolicy, ThrottleStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryThrottleStore::new();
/// let policy = ThrottlePolicy::new(1, Duration::from_secs(60));
/// store.reserve("login:{a:1}", "id-1", policy).await.unwrap();
/// assert!(matches!(store.reserve("login:{a:1}", "id-2", policy).await, Err(ThrottleError::Limited { .. })));
/// store.release("login:{a:1}", "id-1").await.unwrap();
/// store.reserve("login:{a:1}", "id-2", policy).await.unwrap();
///
/// assert!(store.advance("totp:{a:1}", 42, Duration::from_secs(600)).await.unwrap());
/// assert!(!store.advance("totp:{a:1}", 42, Duration::from_secs(600)).await.unwrap());
/// # }
/// ```
pub trait ThrottleStore: Send + Sync + 'static {
    /// Counts attempt `id` under `key` if fewer than `policy.attempts()` are counted in the
    /// last `policy.window()`; otherwise [`ThrottleError::Limited`] with the wait until the
    /// oldest leaves the window. Atomic.
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        id: &'a str,
        policy: ThrottlePolicy,
    ) -> BoxFuture<'a, Result<(), ThrottleError>>;

    /// Stops counting attempt `id` under `key` (a success, or a request that was not an
    /// attempt). Releasing an unknown id does nothing.
    fn release<'a>(&'a self, key: &'a str, id: &'a str) -> BoxFuture<'a, Result<(), ThrottleError>>;

    /// Stores `value` under `key` if it is greater than the value there (or there is none), and
    /// keeps it for `keep`; `Ok(true)` when it was stored. Atomic: of concurrent calls with one
    /// value, exactly one gets `true`.
    fn advance<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, ThrottleError>>;
}

/// Stores are shared between handlers: an `Arc` of a store is a store.
impl<S: ThrottleStore + ?Sized> ThrottleStore for std::sync::Arc<S> {
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        id: &'a str,
        policy: ThrottlePolicy,
    ) -> BoxFuture<'a, Result<(), ThrottleError>> {
        (**self).reserve(key, id, policy)
    }

    fn release<'a>(&'a self, key: &'a str, id: &'a str) -> BoxFuture<'a, Result<(), ThrottleError>> {
        (**self).release(key, id)
    }

    fn advance<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, ThrottleError>> {
        (**self).advance(key, value, keep)
    }
}
