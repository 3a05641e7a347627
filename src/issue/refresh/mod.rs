//! Refresh tokens: opaque, stored only as hashes, rotated on every use, grouped in families,
//! with reuse detection (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).
//!
//! - [`RefreshStore::issue`] starts a family at login and returns its first token.
//! - [`RefreshStore::rotate`] exchanges the family's current token for a new one; the old one
//!   becomes *used*. Presenting a used token again is a replay: the whole family is revoked,
//!   including the token that replaced it ([`RefreshError::Reused`]).
//! - Except for a retry: within the [grace period](RefreshPolicy::grace_period) (default
//!   30 s) after a rotation, the old token presented again, while the token that replaced it
//!   is still unused, is answered with that same token ([`IssuedRefresh::repeated`]): a client
//!   whose response was lost is not logged out as a thief. Of several concurrent rotations of
//!   the same token, one mints the successor and the others get that same successor. Outside
//!   the grace period, or once the successor has been used, reuse detection is unchanged. The
//!   store keeps the successor only sealed under the old token (AES-256-GCM, the key derived
//!   from the old token, which the store never holds), and only for the grace period.
//! - [`RefreshStore::revoke`] (logout) revokes the family of a token, and names its subject
//!   only for the current token presented with the login's key.
//! - Sender-constrained sessions (RFC 9449 §5, RFC 8705 §4): [`issue`](RefreshStore::issue)
//!   takes the login's [`SenderConstraint`] (its DPoP key, its client certificate), and
//!   [`rotate`](RefreshStore::rotate) the refresh request's. A family bound to a key is
//!   refreshed only by that key: another key, or none, is refused
//!   ([`RefreshError::SenderMismatch`]) without rotating and without revoking (the token was
//!   not used, and whoever presented it cannot use it), with an audit event. The check comes
//!   before reuse detection and the grace period: a retry must present the key too.
//!
//! Stores: [`MemoryRefreshStore`] and, with the `redis` feature, `RedisRefreshStore`
//! (atomic rotation in a Lua script, shared by every instance of a service).
//!
//! ```
//! use tower_jwt_guard::refresh::{MemoryRefreshStore, RefreshError, RefreshStore, SenderConstraint};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryRefreshStore::new();
//! let bearer = SenderConstraint::none();
//! let first = store.issue("alice", &bearer).await.unwrap();
//!
//! let second = store.rotate(first.token.as_str(), &bearer).await.unwrap();
//! assert_eq!(second.subject, "alice");
//! assert_eq!(second.family, first.family);
//!
//! // The first token again, its successor unused: a retry, answered with the same successor.
//! let retried = store.rotate(first.token.as_str(), &bearer).await.unwrap();
//! assert_eq!(retried.token, second.token);
//! assert!(retried.repeated);
//!
//! // Once the successor is used, the first token again is a replay: the family is revoked.
//! let third = store.rotate(second.token.as_str(), &bearer).await.unwrap();
//! assert!(matches!(store.rotate(first.token.as_str(), &bearer).await, Err(RefreshError::Reused { .. })));
//! assert_eq!(store.rotate(third.token.as_str(), &bearer).await.unwrap_err(), RefreshError::Revoked);
//!
//! // A DPoP login's family: only that key refreshes it; another key, or none, leaves it as it was.
//! let key = SenderConstraint::none().with_jkt("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
//! let login = store.issue("alice", &key).await.unwrap();
//! let thief = SenderConstraint::none().with_jkt("another key's thumbprint");
//! assert_eq!(store.rotate(login.token.as_str(), &thief).await.unwrap_err(), RefreshError::SenderMismatch);
//! assert_eq!(store.rotate(login.token.as_str(), &bearer).await.unwrap_err(), RefreshError::SenderMismatch);
//! assert!(!store.rotate(login.token.as_str(), &key).await.unwrap().repeated);
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

mod constraint;
mod cookie;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod token;

#[cfg(feature = "redis")]
pub use self::redis::{RedisRefreshStore, RedisRefreshStoreBuilder};
pub use constraint::SenderConstraint;
pub use cookie::RefreshCookie;
pub use memory::{MemoryRefreshStore, DEFAULT_FAMILY_CAPACITY, DEFAULT_TOKEN_CAPACITY};
pub use token::RefreshToken;

/// Default lifetime of one refresh token if it is not used (14 days).
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// Default lifetime of a family, from login, however often it is refreshed (30 days).
pub const DEFAULT_FAMILY_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Default grace period after a rotation in which a retry gets the same successor (30 s, as
/// Okta's default): long enough for a client to retry a refresh whose response was lost on a
/// mobile network, short enough that a stolen token replayed later is still detected. A thief
/// who wins the race within the grace period shares the successor with the client, and the
/// next use of it by the other one (normally minutes later, at the next refresh) is a replay.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);

/// The lifetimes of refresh tokens and their families.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_guard::refresh::RefreshPolicy;
///
/// let policy = RefreshPolicy::default()
///     .token_ttl(Duration::from_secs(24 * 3600))
///     .family_lifetime(Duration::from_secs(7 * 24 * 3600))
///     .grace_period(Duration::from_secs(10));
/// assert_eq!(policy.family_lifetime_secs(), 7 * 24 * 3600);
/// assert_eq!(policy.grace_period_secs(), 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    token_ttl: u64,
    family_lifetime: u64,
    grace: u64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            token_ttl: DEFAULT_REFRESH_TTL.as_secs(),
            family_lifetime: DEFAULT_FAMILY_LIFETIME.as_secs(),
            grace: DEFAULT_GRACE_PERIOD.as_secs(),
        }
    }
}

impl RefreshPolicy {
    /// How long a token stays usable if it is not used (default 14 days).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl.as_secs().max(1);
        self
    }

    /// How long a family lives from login, however often it is refreshed (default 30 days);
    /// afterwards the user logs in again.
    pub fn family_lifetime(mut self, lifetime: Duration) -> Self {
        self.family_lifetime = lifetime.as_secs().max(1);
        self
    }

    /// How long after a rotation the old token, presented again while its successor is unused,
    /// gets that same successor instead of revoking the family (default 30 s, whole seconds;
    /// zero turns it off: every second use is a replay). Keep it short: it is the time in
    /// which a replay is taken for a retry.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace.as_secs();
        self
    }

    /// The grace period in seconds.
    pub fn grace_period_secs(&self) -> u64 {
        self.grace
    }

    /// The token lifetime in seconds.
    pub fn token_ttl_secs(&self) -> u64 {
        self.token_ttl
    }

    /// The family lifetime in seconds.
    pub fn family_lifetime_secs(&self) -> u64 {
        self.family_lifetime
    }

    /// When a token minted at `now` in a family ending at `family_ends` expires.
    pub(crate) fn token_expiry(&self, now: u64, family_ends: u64) -> u64 {
        now.saturating_add(self.token_ttl).min(family_ends)
    }
}

/// A refresh token handed out by [`RefreshStore::issue`] or [`RefreshStore::rotate`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedRefresh {
    /// The opaque value for the client.
    pub token: RefreshToken,
    /// The subject the family was issued to.
    pub subject: String,
    /// The family's id (not secret; useful in audit logs).
    pub family: String,
    /// When this token expires, seconds since the epoch (for the cookie's `Max-Age`).
    pub expires_at: u64,
    /// `true` when a retry within the grace period was handed the successor that an earlier
    /// rotation of the same token minted (worth an audit event, not an alarm).
    pub repeated: bool,
}

impl IssuedRefresh {
    /// Seconds from `now` until the token expires.
    ///
    /// ```
    /// # use tower_jwt_guard::refresh::{MemoryRefreshStore, RefreshStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use tower_jwt_guard::refresh::SenderConstraint;
    /// let issued = MemoryRefreshStore::new().issue("alice", &SenderConstraint::none()).await.unwrap();
    /// assert!(issued.expires_in(issued.expires_at - 10) == 10);
    /// # }
    /// ```
    pub fn expires_in(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

/// Why a refresh token was refused.
///
/// ```
/// use tower_jwt_guard::refresh::RefreshError;
///
/// let err = RefreshError::Reused { subject: "alice".into() };
/// assert_eq!(err.to_string(), "refresh token reused: its family is revoked");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshError {
    /// Unknown, malformed or expired.
    Invalid,
    /// Its family was revoked (logout, or an earlier replay).
    Revoked,
    /// It had already been used: a replay. Its whole family is now revoked. `subject` lets the
    /// application also revoke the subject's access tokens.
    Reused {
        /// The family's subject.
        subject: String,
    },
    /// The store cannot be reached: fail closed.
    Unavailable,
    /// Its family is bound to a DPoP key or a client certificate, and the refresh request
    /// presented another one, or none. Nothing changed: the token is still current for the
    /// key that holds it (RFC 9449 §5, RFC 8705 §4). A token endpoint answers `invalid_grant`.
    SenderMismatch,
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefreshError::Invalid => "invalid refresh token",
            RefreshError::Revoked => "refresh token revoked",
            RefreshError::Reused { .. } => "refresh token reused: its family is revoked",
            RefreshError::Unavailable => "the refresh token store is unavailable",
            RefreshError::SenderMismatch => "refresh token bound to another key",
        })
    }
}

impl std::error::Error for RefreshError {}

/// Where refresh-token families live.
pub trait RefreshStore: Send + Sync + 'static {
    /// Starts a new family for `subject` (at login), bound to the login's `constraint` (its
    /// DPoP key, its client certificate; [`SenderConstraint::none`] for a bearer login), and
    /// returns its first token.
    fn issue<'a>(
        &'a self,
        subject: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<IssuedRefresh, RefreshError>>;

    /// Exchanges the current token of a family for a new one, for a request that presents
    /// `constraint` (the key of its DPoP proof, its client certificate). Atomic: a family bound
    /// to a constraint that `constraint` does not meet is refused first
    /// ([`RefreshError::SenderMismatch`]), unchanged; of concurrent rotations of one token
    /// exactly one mints a successor; within the grace period the others get that same
    /// successor, outside it they are replays. A used token revokes its family
    /// ([`RefreshError::Reused`]) unless it is a retry within the grace period
    /// ([`RefreshPolicy::grace_period`]).
    fn rotate<'a>(
        &'a self,
        presented: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<IssuedRefresh, RefreshError>>;

    /// Revokes the family of `presented` (logout). Ending a session is always allowed to whoever
    /// holds one of its refresh tokens, current or used, with or without the login's key.
    ///
    /// Names the family's subject (`Ok(Some)`), so that the caller can end its access tokens too
    /// (for example with
    /// [`RevocationStore::revoke_subject`](crate::guard::revocation::RevocationStore::revoke_subject),
    /// which reaches the subject's other sessions), only when `presented` is the family's
    /// *current* token and `constraint` (the request's DPoP key and client certificate) meets the
    /// family's, checked atomically with the revocation. A used token (an old cookie, a thief's
    /// copy) or a request without the key ends the family and nothing more: `Ok(None)`, as for
    /// a value that is not a known token.
    fn revoke<'a>(
        &'a self,
        presented: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<Option<String>, RefreshError>>;

    /// Revokes every family of `subject` ("log out everywhere"; pair it with
    /// [`RevocationStore::revoke_subject`](crate::guard::revocation::RevocationStore::revoke_subject)
    /// for the access tokens). Returns how many live families were revoked.
    fn revoke_subject<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<u64, RefreshError>>;
}

/// Stores are shared between handlers: an `Arc` of a store is a store.
impl<S: RefreshStore + ?Sized> RefreshStore for std::sync::Arc<S> {
    fn issue<'a>(
        &'a self,
        subject: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<IssuedRefresh, RefreshError>> {
        (**self).issue(subject, constraint)
    }

    fn rotate<'a>(
        &'a self,
        presented: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<IssuedRefresh, RefreshError>> {
        (**self).rotate(presented, constraint)
    }

    fn revoke<'a>(
        &'a self,
        presented: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<Option<String>, RefreshError>> {
        (**self).revoke(presented, constraint)
    }

    fn revoke_subject<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<u64, RefreshError>> {
        (**self).revoke_subject(subject)
    }
}
