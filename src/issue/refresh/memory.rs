//! [`MemoryRefreshStore`]: refresh-token families in this process's memory.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use moka::Expiry;

use super::constraint::{sender_mismatch, SenderConstraint};
use super::token::{self, Presented};
use super::{IssuedRefresh, RefreshError, RefreshPolicy, RefreshStore};
use crate::guard::revocation::MAX_ENTRY_SECS;
use crate::primitives::clock;

/// Default number of families kept.
pub const DEFAULT_FAMILY_CAPACITY: u64 = 100_000;
/// Default number of token records (current and used) kept.
pub const DEFAULT_TOKEN_CAPACITY: u64 = 1_000_000;

#[derive(Clone)]
struct Family {
    subject: Arc<str>,
    revoked: bool,
    ends: u64,
    /// The login's DPoP key and client certificate: every rotation must present them.
    constraint: Arc<SenderConstraint>,
}

#[derive(Clone, Copy)]
struct TokenRecord {
    used: bool,
    expires_at: u64,
}

/// What a rotation left for a retry of itself, during the grace period only.
#[derive(Clone)]
struct Successor {
    /// When the rotation happened.
    at: u64,
    /// The successor's record key, to check that it is still unused.
    hash: String,
    expires_at: u64,
    /// The successor, sealed under the token it replaced ([`token::seal`]).
    sealed: String,
}

trait Expires {
    fn expires_at(&self) -> u64;
}

impl Expires for Family {
    fn expires_at(&self) -> u64 {
        self.ends
    }
}

impl Expires for TokenRecord {
    fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// Each record expires at its own instant.
struct AtItsExpiry;

impl AtItsExpiry {
    fn remaining(value: &impl Expires) -> Option<Duration> {
        Some(Duration::from_secs(value.expires_at().saturating_sub(clock::now()).min(MAX_ENTRY_SECS)))
    }
}

impl<V: Expires> Expiry<String, V> for AtItsExpiry {
    fn expire_after_create(&self, _: &String, value: &V, _: Instant) -> Option<Duration> {
        Self::remaining(value)
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &V,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Self::remaining(value)
    }
}

/// Refresh-token families in memory, for a single instance (use `RedisRefreshStore` to share
/// them between instances).
///
/// Bounded: at most [`DEFAULT_FAMILY_CAPACITY`] families and [`DEFAULT_TOKEN_CAPACITY`]
/// token records by default; records disappear when they expire. When full, the least
/// recently used records are dropped: their owners log in again, and a dropped *used*
/// token replayed later is refused as unknown (without revoking its family).
///
/// Cheap to clone (an `Arc`).
///
/// ```
/// use tower_jwt_guard::refresh::{MemoryRefreshStore, RefreshError, RefreshStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// # use tower_jwt_guard::refresh::SenderConstraint;
/// let store = MemoryRefreshStore::new();
/// let bearer = SenderConstraint::none();
/// let login = store.issue("alice", &bearer).await.unwrap();
/// // Logout: the current token, with the login's (empty) constraint, names the subject.
/// assert_eq!(store.revoke(login.token.as_str(), &bearer).await.unwrap().as_deref(), Some("alice"));
/// assert_eq!(store.rotate(login.token.as_str(), &bearer).await.unwrap_err(), RefreshError::Revoked);
/// assert_eq!(store.rotate("not a token", &bearer).await.unwrap_err(), RefreshError::Invalid);
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryRefreshStore {
    inner: Arc<Inner>,
}

struct Inner {
    policy: RefreshPolicy,
    families: Cache<String, Family>,
    tokens: Cache<String, TokenRecord>,
    /// Used token's hash → its successor, for the grace period.
    successors: Cache<String, Successor>,
    /// Rotation reads and writes several records: one at a time.
    writes: Mutex<()>,
}

impl fmt::Debug for MemoryRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRefreshStore")
            .field("policy", &self.inner.policy)
            .field("families", &self.inner.families.entry_count())
            .field("tokens", &self.inner.tokens.entry_count())
            .finish()
    }
}

impl Default for MemoryRefreshStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRefreshStore {
    /// A store with the default lifetimes and capacities.
    pub fn new() -> Self {
        Self::with_policy(RefreshPolicy::default())
    }

    /// A store with these lifetimes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jwt_guard::refresh::{MemoryRefreshStore, RefreshPolicy};
    ///
    /// let store = MemoryRefreshStore::with_policy(RefreshPolicy::default().token_ttl(Duration::from_secs(3600)));
    /// # let _ = store;
    /// ```
    pub fn with_policy(policy: RefreshPolicy) -> Self {
        Self::with_capacity(policy, DEFAULT_FAMILY_CAPACITY, DEFAULT_TOKEN_CAPACITY)
    }

    /// A store with these lifetimes and capacities.
    pub fn with_capacity(policy: RefreshPolicy, families: u64, tokens: u64) -> Self {
        MemoryRefreshStore {
            inner: Arc::new(Inner {
                policy,
                families: Cache::builder()
                    .max_capacity(families)
                    .eviction_policy(EvictionPolicy::lru())
                    .expire_after(AtItsExpiry)
                    .build(),
                tokens: Cache::builder()
                    .max_capacity(tokens)
                    .eviction_policy(EvictionPolicy::lru())
                    .expire_after(AtItsExpiry)
                    .build(),
                successors: Cache::builder()
                    .max_capacity(tokens)
                    .time_to_live(Duration::from_secs(policy.grace_period_secs().max(1)))
                    .build(),
                writes: Mutex::new(()),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner.writes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live family and token record of a presented value.
    fn find(&self, presented: &Presented<'_>, now: u64) -> Option<(Family, TokenRecord)> {
        let family = self.inner.families.get(presented.family).filter(|f| f.ends > now)?;
        let record = self.inner.tokens.get(&presented.hash).filter(|t| t.expires_at > now)?;
        Some((family, record))
    }

    fn issue_now(&self, subject: &str, constraint: &SenderConstraint) -> IssuedRefresh {
        let now = clock::now();
        let ends = now.saturating_add(self.inner.policy.family_lifetime_secs());
        let family_id = token::new_family();
        let minted = token::mint(&family_id);
        let expires_at = self.inner.policy.token_expiry(now, ends);
        let _serialised = self.lock();
        self.inner.families.insert(
            family_id.clone(),
            Family {
                subject: subject.into(),
                revoked: false,
                ends,
                constraint: Arc::new(constraint.clone()),
            },
        );
        self.inner.tokens.insert(minted.hash, TokenRecord { used: false, expires_at });
        IssuedRefresh {
            token: minted.token,
            subject: subject.to_owned(),
            family: family_id,
            expires_at,
            repeated: false,
        }
    }

    fn rotate_now(
        &self,
        presented: &str,
        constraint: &SenderConstraint,
    ) -> Result<IssuedRefresh, RefreshError> {
        let presented = token::parse(presented).ok_or(RefreshError::Invalid)?;
        let now = clock::now();
        let _serialised = self.lock();
        let (family, record) = self.find(&presented, now).ok_or(RefreshError::Invalid)?;
        if family.revoked {
            return Err(RefreshError::Revoked);
        }
        // Before reuse detection and the grace period: whoever lacks the key changes nothing.
        if !family.constraint.admits(constraint) {
            return Err(sender_mismatch(presented.family));
        }
        if record.used {
            if let Some(again) = self.retried(&presented, now) {
                return Ok(IssuedRefresh {
                    token: again.0,
                    subject: family.subject.to_string(),
                    family: presented.family.to_owned(),
                    expires_at: again.1,
                    repeated: true,
                });
            }
            self.inner
                .families
                .insert(presented.family.to_owned(), Family { revoked: true, ..family.clone() });
            return Err(RefreshError::Reused { subject: family.subject.to_string() });
        }
        // Used records are kept as long as the family, to recognise a replay.
        self.inner.tokens.insert(presented.hash.clone(), TokenRecord { used: true, expires_at: family.ends });
        let minted = token::mint(presented.family);
        let expires_at = self.inner.policy.token_expiry(now, family.ends);
        if self.inner.policy.grace_period_secs() > 0 {
            let sealed = token::seal(&minted.token, &presented);
            let successor = Successor { at: now, hash: minted.hash.clone(), expires_at, sealed };
            self.inner.successors.insert(presented.hash.clone(), successor);
        }
        self.inner.tokens.insert(minted.hash, TokenRecord { used: false, expires_at });
        Ok(IssuedRefresh {
            token: minted.token,
            subject: family.subject.to_string(),
            family: presented.family.to_owned(),
            expires_at,
            repeated: false,
        })
    }

    /// The successor of a used token, if this is a retry: within the grace period, and the
    /// successor still unused.
    fn retried(&self, presented: &Presented<'_>, now: u64) -> Option<(super::RefreshToken, u64)> {
        let successor = self.inner.successors.get(&presented.hash)?;
        if now.saturating_sub(successor.at) > self.inner.policy.grace_period_secs() {
            return None;
        }
        let record = self.inner.tokens.get(&successor.hash)?;
        if record.used || record.expires_at <= now {
            return None;
        }
        Some((token::unseal(&successor.sealed, presented)?, successor.expires_at))
    }

    /// A walk over the families: a rare operation, not worth an index.
    fn revoke_subject_now(&self, subject: &str) -> u64 {
        let now = clock::now();
        let _serialised = self.lock();
        let targets: Vec<(Arc<String>, Family)> = self
            .inner
            .families
            .iter()
            .filter(|(_, family)| &*family.subject == subject && !family.revoked && family.ends > now)
            .collect();
        for (id, family) in &targets {
            self.inner.families.insert(String::clone(id), Family { revoked: true, ..family.clone() });
        }
        targets.len() as u64
    }

    fn revoke_now(&self, presented: &str, constraint: &SenderConstraint) -> Option<String> {
        let presented = token::parse(presented)?;
        let _serialised = self.lock();
        let (family, record) = self.find(&presented, clock::now())?;
        // Any token of the family ends it; only its current one, with the login's key, names
        // the subject (whose every access token the caller may then revoke).
        let subject =
            (!record.used && family.constraint.admits(constraint)).then(|| family.subject.to_string());
        self.inner.families.insert(presented.family.to_owned(), Family { revoked: true, ..family });
        subject
    }
}

impl RefreshStore for MemoryRefreshStore {
    fn issue<'a>(
        &'a self,
        subject: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<IssuedRefresh, RefreshError>> {
        let issued = self.issue_now(subject, constraint);
        Box::pin(async move { Ok(issued) })
    }

    fn rotate<'a>(
        &'a self,
        presented: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<IssuedRefresh, RefreshError>> {
        let rotated = self.rotate_now(presented, constraint);
        Box::pin(async move { rotated })
    }

    fn revoke<'a>(
        &'a self,
        presented: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<Option<String>, RefreshError>> {
        let revoked = self.revoke_now(presented, constraint);
        Box::pin(async move { Ok(revoked) })
    }

    fn revoke_subject<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<u64, RefreshError>> {
        let revoked = self.revoke_subject_now(subject);
        Box::pin(async move { Ok(revoked) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(jkt: &str) -> SenderConstraint {
        SenderConstraint::none().with_jkt(jkt)
    }

    #[tokio::test]
    async fn revoke_ends_the_family_but_names_the_subject_only_for_the_current_token_and_key() {
        let store = MemoryRefreshStore::new();
        // Without the key: the family ends, the subject is not named.
        let login = store.issue("alice", &key("k1")).await.unwrap();
        assert_eq!(store.revoke(login.token.as_str(), &SenderConstraint::none()).await.unwrap(), None);
        assert_eq!(store.rotate(login.token.as_str(), &key("k1")).await.unwrap_err(), RefreshError::Revoked);
        // Another key: the same.
        let login = store.issue("alice", &key("k1")).await.unwrap();
        assert_eq!(store.revoke(login.token.as_str(), &key("k2")).await.unwrap(), None);
        assert_eq!(store.rotate(login.token.as_str(), &key("k1")).await.unwrap_err(), RefreshError::Revoked);
        // An old, rotated token (even with the key): the family ends, the subject is not named.
        let login = store.issue("alice", &key("k1")).await.unwrap();
        let next = store.rotate(login.token.as_str(), &key("k1")).await.unwrap();
        assert_eq!(store.revoke(login.token.as_str(), &key("k1")).await.unwrap(), None);
        assert_eq!(store.rotate(next.token.as_str(), &key("k1")).await.unwrap_err(), RefreshError::Revoked);
        // The current token with the key names the subject.
        let login = store.issue("alice", &key("k1")).await.unwrap();
        assert_eq!(store.revoke(login.token.as_str(), &key("k1")).await.unwrap().as_deref(), Some("alice"));
        // A bearer family's current token names it without any key.
        let login = store.issue("bob", &SenderConstraint::none()).await.unwrap();
        assert_eq!(
            store.revoke(login.token.as_str(), &SenderConstraint::none()).await.unwrap().as_deref(),
            Some("bob")
        );
        assert_eq!(store.revoke("not a token", &SenderConstraint::none()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_bound_family_refuses_another_key_or_none_without_rotating() {
        let store = MemoryRefreshStore::new();
        let login = store.issue("alice", &key("k1")).await.unwrap();
        for presented in [key("k2"), SenderConstraint::none(), SenderConstraint::none().with_certificate("c")]
        {
            assert_eq!(
                store.rotate(login.token.as_str(), &presented).await.unwrap_err(),
                RefreshError::SenderMismatch
            );
        }
        // Not rotated, not revoked: the key that holds it still refreshes, once.
        let next = store.rotate(login.token.as_str(), &key("k1")).await.unwrap();
        assert!(!next.repeated);
        // The grace-period retry asks for the key too, and a thief's copy of the spent token
        // (without the key) neither gets the successor nor revokes the family.
        assert_eq!(
            store.rotate(login.token.as_str(), &key("k2")).await.unwrap_err(),
            RefreshError::SenderMismatch
        );
        let retried = store.rotate(login.token.as_str(), &key("k1")).await.unwrap();
        assert_eq!((retried.token.as_str(), retried.repeated), (next.token.as_str(), true));
        // The constraint lasts through rotations, and reuse detection still works for the key.
        let third = store.rotate(next.token.as_str(), &key("k1")).await.unwrap();
        assert_eq!(
            store.rotate(third.token.as_str(), &key("k2")).await.unwrap_err(),
            RefreshError::SenderMismatch
        );
        store.rotate(third.token.as_str(), &key("k1")).await.unwrap();
        let replay = store.rotate(next.token.as_str(), &key("k1")).await;
        assert!(matches!(replay, Err(RefreshError::Reused { .. })), "{replay:?}");
    }

    #[tokio::test]
    async fn a_certificate_bound_family_needs_the_certificate() {
        let store = MemoryRefreshStore::new();
        let bound = SenderConstraint::none().with_certificate("x5t");
        let login = store.issue("alice", &bound).await.unwrap();
        let other = SenderConstraint::none().with_certificate("other");
        assert_eq!(
            store.rotate(login.token.as_str(), &other).await.unwrap_err(),
            RefreshError::SenderMismatch
        );
        assert!(store.rotate(login.token.as_str(), &bound.clone().with_jkt("any")).await.is_ok());
    }

    #[tokio::test]
    async fn an_unbound_family_takes_any_request() {
        let store = MemoryRefreshStore::new();
        let login = store.issue("alice", &SenderConstraint::none()).await.unwrap();
        let next = store.rotate(login.token.as_str(), &key("k")).await.unwrap();
        assert!(store.rotate(next.token.as_str(), &SenderConstraint::none()).await.is_ok());
    }
}
