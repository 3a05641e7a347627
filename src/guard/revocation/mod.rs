//! Step 4 of the request path: has this token, or every token of its subject, been revoked?
//!
//! The layer asks its [`RevocationStore`] on every request. A store that cannot answer makes
//! the request fail closed (503 `AUTH_UNAVAILABLE`) unless fail-open was chosen explicitly
//! ([`JwtAuthBuilder::revocation_fail_open`](crate::JwtAuthBuilder::revocation_fail_open)).
//!
//! Two kinds of revocation are recorded:
//! - one token, by its `jti`, kept until the token expires ([`RevocationStore::revoke_token`]);
//! - every token of a subject issued at or before an instant, "log out everywhere"
//!   ([`RevocationStore::revoke_subject`]).
//!
//! Both are per issuer: a `jti` or a subject is unique within its issuer only (two identity
//! providers may both name a user `1`), so a revocation names the issuer (`iss`, as
//! [`AuthContext::issuer`](crate::AuthContext::issuer) gives it; `None` for tokens without
//! `iss`, the same as an empty `iss`) and revokes nothing of another issuer.
//!
//! Stores: [`MemoryRevocationStore`] (the embedded default, one process) and, with the
//! `redis` feature, `RedisRevocationStore`, shared by every instance of a service.
//!
//! ```
//! use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationCheck, RevocationStore};
//! use tower_jwt_guard::TokenFacts;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryRevocationStore::new();
//! let mut token = TokenFacts::default();
//! token.jti = Some("token-1".into());
//! token.expires_at = Some(4_000_000_000);
//! assert!(matches!(store.check(&token), RevocationCheck::Valid));
//!
//! store.revoke_token(None, "token-1", 4_000_000_000).await.unwrap();
//! assert!(matches!(store.check(&token), RevocationCheck::Revoked));
//!
//! // Per issuer: the same jti from another issuer is another token.
//! let mut other = token.clone();
//! other.issuer = Some("https://other.example.com".into());
//! assert!(matches!(store.check(&other), RevocationCheck::Valid));
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::guard::observe::readiness::Readiness;
use crate::primitives::claims::TokenFacts;

pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod replay;
#[cfg(feature = "redis")]
pub(crate) mod replay_redis;

#[cfg(feature = "redis")]
pub use self::redis::{
    RedisRevocationStore, RedisRevocationStoreBuilder, DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_KEY_PREFIX,
    DEFAULT_LOCAL_CACHE_CAPACITY, DEFAULT_LOCAL_CACHE_TTL, DEFAULT_REDIS_TIMEOUT,
};
pub use memory::{MemoryRevocationStore, DEFAULT_REVOCATION_CAPACITY};
pub use replay::{MemoryReplayStore, ReplayCheck, ReplayKey, ReplayStore, DEFAULT_REPLAY_CAPACITY};
#[cfg(feature = "redis")]
pub use replay_redis::RedisReplayStore;

/// How long a revocation is kept after the token's `exp` by default (5 minutes): the layer
/// accepts a token until `exp` plus its leeway, so the entry must outlive that.
pub const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How long a subject revocation is kept by default (24 hours): it must outlive every token
/// of the subject issued before it, so set it to at least the longest token lifetime you mint.
pub const DEFAULT_SUBJECT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The answer of a [`RevocationStore`] for one token.
#[non_exhaustive]
pub enum RevocationCheck {
    /// Not revoked.
    Valid,
    /// Revoked (by `jti`, or all tokens of the subject issued before a point in time).
    Revoked,
    /// The store cannot answer now.
    Unavailable,
    /// The store must ask a remote server.
    Pending(BoxFuture<'static, RevocationCheck>),
}

impl fmt::Debug for RevocationCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationCheck::Valid => "Valid",
            RevocationCheck::Revoked => "Revoked",
            RevocationCheck::Unavailable => "Unavailable",
            RevocationCheck::Pending(_) => "Pending",
        })
    }
}

/// Why a revocation could not be recorded.
///
/// ```
/// use tower_jwt_guard::revocation::RevocationError;
///
/// assert_eq!(RevocationError::Unavailable.to_string(), "the revocation store is unavailable");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationError {
    /// The store holds as many live revocations as it may; nothing was evicted to make room
    /// (an evicted revocation would bring a revoked token back to life).
    CapacityExceeded,
    /// The shared store cannot be reached or refused the command.
    Unavailable,
    /// This store does not record revocations (for example a read-only store).
    Unsupported,
}

impl fmt::Display for RevocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationError::CapacityExceeded => "the revocation store is full",
            RevocationError::Unavailable => "the revocation store is unavailable",
            RevocationError::Unsupported => "this revocation store does not record revocations",
        })
    }
}

impl std::error::Error for RevocationError {}

/// Where revocations live. `check` runs on the hot path: answer from memory when possible,
/// and return [`RevocationCheck::Pending`] only when a remote server must be asked.
///
/// The revoke methods have defaults that answer [`RevocationError::Unsupported`], so a
/// read-only store needs only `check`:
///
/// ```
/// use tower_jwt_guard::revocation::{RevocationCheck, RevocationStore};
/// use tower_jwt_guard::TokenFacts;
///
/// /// Refuses every token of one subject.
/// struct Banned(&'static str);
///
/// impl RevocationStore for Banned {
///     fn check(&self, token: &TokenFacts) -> RevocationCheck {
///         if token.subject.as_deref() == Some(self.0) { RevocationCheck::Revoked } else { RevocationCheck::Valid }
///     }
/// }
/// ```
pub trait RevocationStore: Send + Sync + 'static {
    /// Whether the token described by `token` is revoked.
    fn check(&self, token: &TokenFacts) -> RevocationCheck;

    /// How long after a token's `exp` its revocation is kept, when the store forgets entries.
    ///
    /// The layer accepts a token until `exp` plus its leeway, so a store that forgot sooner
    /// would let a revoked token back in: building a configuration whose leeway is longer than
    /// this margin fails. `None` (the default): the store keeps revocations long enough.
    fn retention_margin(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether this store can answer checks now (see [`readiness`](crate::readiness)): a shared
    /// store whose link is down (the Redis store's invalidation subscription) is not ready. The
    /// default: ready. It must answer from memory, without waiting.
    fn readiness(&self) -> Readiness {
        Readiness::Ready
    }

    /// Revokes the token of `issuer` (its `iss`; `None` for tokens without one) whose `jti` is
    /// `jti` until it expires (`expires_at`, seconds since the epoch, the token's `exp`;
    /// `u64::MAX` for a token without `exp`). Tokens of other issuers are not affected.
    ///
    /// A token that has already expired (beyond the store's margin) needs no entry: nothing
    /// is recorded and the call succeeds.
    fn revoke_token<'a>(
        &'a self,
        issuer: Option<&'a str>,
        jti: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let _ = (issuer, jti, expires_at);
        Box::pin(async { Err(RevocationError::Unsupported) })
    }

    /// Revokes every token of `issuer`'s `subject` issued (`iat`) at or before
    /// `issued_at_or_before` (seconds since the epoch). A token of that subject without `iat`
    /// is revoked too. Revoking again with an earlier instant keeps the later one. The same
    /// subject of another issuer is not affected.
    fn revoke_subject<'a>(
        &'a self,
        issuer: Option<&'a str>,
        subject: &'a str,
        issued_at_or_before: u64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let _ = (issuer, subject, issued_at_or_before);
        Box::pin(async { Err(RevocationError::Unsupported) })
    }
}

/// Until when (seconds since the epoch) a store keeps "every token of a subject issued at or
/// before `cutoff`": its retention, plus the margin that covers the layer's leeway.
pub(crate) fn subject_kept_until(cutoff: u64, retention: u64, margin: u64) -> u64 {
    cutoff.saturating_add(retention).saturating_add(margin)
}

/// Stores are shared between the layer and the handlers that revoke: an `Arc` of a store is a store.
impl<S: RevocationStore + ?Sized> RevocationStore for std::sync::Arc<S> {
    fn check(&self, token: &TokenFacts) -> RevocationCheck {
        (**self).check(token)
    }

    fn retention_margin(&self) -> Option<std::time::Duration> {
        (**self).retention_margin()
    }

    fn readiness(&self) -> Readiness {
        (**self).readiness()
    }

    fn revoke_token<'a>(
        &'a self,
        issuer: Option<&'a str>,
        jti: &'a str,
        expires_at: u64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        (**self).revoke_token(issuer, jti, expires_at)
    }

    fn revoke_subject<'a>(
        &'a self,
        issuer: Option<&'a str>,
        subject: &'a str,
        issued_at_or_before: u64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        (**self).revoke_subject(issuer, subject, issued_at_or_before)
    }
}

/// The key of a revocation within a store: the issuer, length-prefixed, then the `jti` or
/// subject (`{len}:{issuer}{id}`), so that no pair reads as another (`("a:", "b")` is
/// `2:a:b`, `("a", ":b")` is `1:a:b`). No issuer is the empty issuer.
pub(crate) fn scoped_key(issuer: Option<&str>, id: &str) -> String {
    let issuer = issuer.unwrap_or("");
    format!("{}:{issuer}{id}", issuer.len())
}

/// [`scoped_key`] handed to `read`, built on the stack when it fits: `check` runs on every
/// request and must not allocate.
pub(crate) fn with_scoped_key<R>(issuer: Option<&str>, id: &str, read: impl FnOnce(&str) -> R) -> R {
    use std::io::Write as _;
    let issuer_text = issuer.unwrap_or("");
    let mut buf = [0u8; 256];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    if write!(cursor, "{}:{issuer_text}{id}", issuer_text.len()).is_ok() {
        let len = usize::try_from(cursor.position()).unwrap_or(0);
        if let Ok(key) = std::str::from_utf8(&buf[..len]) {
            return read(key);
        }
    }
    read(&scoped_key(issuer, id))
}

/// The answer for a subject revoked for tokens issued at or before `revoked_before`.
pub(crate) fn subject_verdict(issued_at: Option<u64>, revoked_at_or_before: Option<u64>) -> bool {
    match (revoked_at_or_before, issued_at) {
        (None, _) => false,
        (Some(cutoff), Some(iat)) => iat <= cutoff,
        // No `iat`: it cannot be shown to be newer than the revocation.
        (Some(_), None) => true,
    }
}

/// The longest lifetime an entry is given (far below the limits of timers and of Redis).
pub(crate) const MAX_ENTRY_SECS: u64 = 50 * 365 * 24 * 60 * 60;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_keys_are_unambiguous_and_the_same_on_the_stack() {
        assert_eq!(scoped_key(Some("a:"), "b"), "2:a:b");
        assert_eq!(scoped_key(Some("a"), ":b"), "1:a:b");
        assert_eq!(scoped_key(None, "1"), "0:1");
        assert_ne!(scoped_key(Some("https://a"), "1"), scoped_key(Some("https://b"), "1"));
        let long = "x".repeat(300);
        for (issuer, id) in
            [(Some("https://a"), "1"), (None, "j"), (Some(long.as_str()), "j"), (Some("é"), "ü")]
        {
            assert_eq!(with_scoped_key(issuer, id, str::to_owned), scoped_key(issuer, id));
        }
    }
}
