//! [`RedisRefreshStore`]: refresh-token families in Redis, shared by every instance (feature `redis`).
//!
//! Keys (one family's keys share a hash slot through the `{family}` tag):
//! - `<prefix>refresh:{<family>}`: a hash `sub`, `rev` (revoked), `ends`, and for a
//!   sender-constrained login `jkt` and/or `x5t` (the DPoP key's and the client certificate's
//!   thumbprints), expiring with the family;
//! - `<prefix>refresh:{<family>}:<sha256>`: `c` (current) or `u` (used), one per token;
//! - `<prefix>refresh:{<family>}:<sha256>:g`: for the grace period after a rotation only, the
//!   successor's hash and expiry and the successor sealed under the rotated token.
//!
//! Rotation is one Lua script, so it is atomic: a request without the family's key or
//! certificate is refused before anything is read or written; of concurrent rotations of one
//! token, exactly one sees it current and mints the successor; the others see it used, and get
//! the same successor within the grace period, or revoke the family outside it.
//!
//! Every operation is safe to repeat, and is tried once more on a fresh connection when its
//! connection was lost: issuing writes the same records again, revoking is idempotent, and a
//! rotation repeated within the grace period is answered with the successor the first attempt
//! minted. With the grace period off, a rotation is never repeated (it would be a replay).

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::{Client, Script};

use super::constraint::{sender_mismatch, SenderConstraint};
use super::token::{self, Presented};
use super::{IssuedRefresh, RefreshError, RefreshPolicy, RefreshStore};
use crate::guard::redis_connection::{RedisConnection, RedisServers, Retry};
use crate::guard::revocation::redis::{DEFAULT_KEY_PREFIX, DEFAULT_REDIS_TIMEOUT};
use crate::primitives::clock;
use crate::primitives::error::ConfigError;

/// KEYS: family, presented token, new token, presented token's grace record.
/// ARGV: now, token ttl, grace period (s), new token's hash, new token sealed under the presented
/// one, the request's DPoP key thumbprint and client certificate thumbprint (empty: none).
/// A family bound to a key or certificate that the request does not present is refused first,
/// unchanged (`mismatch`), retries included. A used token whose grace record is there and whose
/// successor is still current gets that successor again (`again`); any other used token revokes
/// the family. The successor's key is derived from the family's (same hash slot, so a Cluster
/// serves it from the same node).
const ROTATE_SCRIPT: &str = r"
local family = redis.call('HMGET', KEYS[1], 'sub', 'rev', 'ends', 'jkt', 'x5t')
if not family[1] then return {'invalid'} end
local state = redis.call('GET', KEYS[2])
if not state then return {'invalid'} end
if family[2] == '1' then return {'revoked'} end
if (family[4] and family[4] ~= ARGV[6]) or (family[5] and family[5] ~= ARGV[7]) then
  return {'mismatch'}
end
if state == 'u' then
  local again = redis.call('GET', KEYS[4])
  if again then
    local next_hash, next_expires, sealed = string.match(again, '^([^:]+):(%d+):(.+)$')
    if next_hash and redis.call('GET', KEYS[1] .. ':' .. next_hash) == 'c' then
      return {'again', family[1], next_expires, sealed}
    end
  end
  redis.call('HSET', KEYS[1], 'rev', '1')
  return {'reused', family[1]}
end
local expires = string.format('%d', math.min(tonumber(ARGV[1]) + tonumber(ARGV[2]), tonumber(family[3])))
redis.call('SET', KEYS[2], 'u', 'EXAT', family[3])
redis.call('SET', KEYS[3], 'c', 'EXAT', expires)
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[4], ARGV[4] .. ':' .. expires .. ':' .. ARGV[5], 'EX', ARGV[3])
end
return {'rotated', family[1], expires}
";

/// KEYS: family. Revokes it if it is still there (never re-creates an expired family).
const REVOKE_FAMILY_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HGET', KEYS[1], 'rev') ~= '1' then
  redis.call('HSET', KEYS[1], 'rev', '1')
  return 1
end
return 0
";

/// KEYS: family, presented token. ARGV: the request's DPoP key thumbprint and client
/// certificate thumbprint (empty: none). Revokes the family when the token is one of its own;
/// names the subject only when the token is the current one and the request meets the family's
/// constraint (the same fields the rotation checks).
const REVOKE_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local state = redis.call('GET', KEYS[2])
if not state then return false end
redis.call('HSET', KEYS[1], 'rev', '1')
if state ~= 'c' then return false end
local family = redis.call('HMGET', KEYS[1], 'sub', 'jkt', 'x5t')
if (family[2] and family[2] ~= ARGV[1]) or (family[3] and family[3] ~= ARGV[2]) then
  return false
end
return family[1]
";

/// Builds a [`RedisRefreshStore`].
#[must_use]
pub struct RedisRefreshStoreBuilder {
    servers: RedisServers,
    policy: RefreshPolicy,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisRefreshStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshStoreBuilder")
            .field("servers", &self.servers)
            .field("policy", &self.policy)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisRefreshStoreBuilder {
    /// Token and family lifetimes, and the grace period.
    pub fn policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The prefix of every key (default `tjg:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one Redis round trip may take (default 1 s); then [`RefreshError::Unavailable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes the store (inside a Tokio runtime; it connects lazily and reconnects by itself).
    pub fn build(self) -> Result<RedisRefreshStore, ConfigError> {
        Ok(RedisRefreshStore {
            conn: RedisConnection::new(self.servers, self.timeout)?,
            policy: self.policy,
            prefix: self.prefix,
            rotate: Script::new(ROTATE_SCRIPT),
            revoke: Script::new(REVOKE_SCRIPT),
            revoke_family: Script::new(REVOKE_FAMILY_SCRIPT),
        })
    }
}

/// Refresh-token families in Redis (feature `redis`): rotate on one instance, detect the
/// replay on any other. Requires Redis ≥ 6.2. Cheap to clone.
///
/// ```no_run
/// use tower_jwt_guard::refresh::{RedisRefreshStore, RefreshStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// # use tower_jwt_guard::refresh::SenderConstraint;
/// let store = RedisRefreshStore::builder("redis://127.0.0.1:6379/")?.build()?;
/// // A DPoP login's family: refreshed only with a proof by that key.
/// let key = SenderConstraint::none().with_jkt("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
/// let login = store.issue("alice", &key).await?;
/// let next = store.rotate(login.token.as_str(), &key).await?;
/// # let _ = next;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRefreshStore {
    conn: RedisConnection,
    policy: RefreshPolicy,
    prefix: String,
    rotate: Script,
    revoke: Script,
    revoke_family: Script,
}

impl fmt::Debug for RedisRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshStore")
            .field("policy", &self.policy)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRefreshStore {
    /// Starts a builder for the Redis at `url`: one server, or a Sentinel or Cluster URL
    /// ([`RedisServers::from_url`]).
    ///
    /// ```
    /// use tower_jwt_guard::refresh::RedisRefreshStore;
    /// assert!(RedisRefreshStore::builder("redis://127.0.0.1:6379/").is_ok());
    /// assert!(RedisRefreshStore::builder("::").is_err());
    /// ```
    pub fn builder(url: &str) -> Result<RedisRefreshStoreBuilder, ConfigError> {
        Ok(Self::builder_with(RedisServers::from_url(url)?))
    }

    /// Starts a builder around an existing client (one server).
    pub fn builder_for(client: Client) -> RedisRefreshStoreBuilder {
        Self::builder_with(RedisServers::standalone(client))
    }

    /// Starts a builder for these servers (one, a Sentinel-watched primary, or a Cluster).
    pub fn builder_with(servers: RedisServers) -> RedisRefreshStoreBuilder {
        RedisRefreshStoreBuilder {
            servers,
            policy: RefreshPolicy::default(),
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_REDIS_TIMEOUT,
        }
    }

    fn family_key(&self, family: &str) -> String {
        format!("{}refresh:{{{family}}}", self.prefix)
    }

    /// The set of a subject's families (for "log out everywhere").
    fn subject_key(&self, subject: &str) -> String {
        format!("{}refresh-subject:{subject}", self.prefix)
    }

    fn token_key(&self, family: &str, hash: &str) -> String {
        format!("{}refresh:{{{family}}}:{hash}", self.prefix)
    }

    /// Runs one operation within the timeout (tried once more on a lost connection when
    /// `retry` allows); a failure is [`RefreshError::Unavailable`].
    async fn run<T, F, Fut>(&self, retry: Retry, op: F) -> Result<T, RefreshError>
    where
        F: FnMut(crate::guard::redis_connection::Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.conn.run(retry, op).await.map_err(|_| {
            tracing::warn!(target: "tower_jwt_guard", "refresh token store: Redis unavailable");
            RefreshError::Unavailable
        })
    }

    /// [`run`](Self::run) for a write that must survive a failover (see
    /// [`RedisServers::wait_for_replicas`]): `key` names the primary that must have replicated it.
    async fn run_replicated<T, F, Fut>(&self, retry: Retry, key: &str, op: F) -> Result<T, RefreshError>
    where
        F: FnMut(crate::guard::redis_connection::Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.conn.run_replicated(retry, key, op).await.map_err(|_| {
            tracing::warn!(target: "tower_jwt_guard", "refresh token store: Redis unavailable");
            RefreshError::Unavailable
        })
    }

    async fn issue_now(
        &self,
        subject: &str,
        constraint: &SenderConstraint,
    ) -> Result<IssuedRefresh, RefreshError> {
        let now = clock::now();
        let ends = now.saturating_add(self.policy.family_lifetime_secs());
        let expires_at = self.policy.token_expiry(now, ends);
        let family = token::new_family();
        let minted = token::mint(&family);
        let family_key = self.family_key(&family);
        let ends_text = ends.to_string();
        let mut fields = vec![("sub", subject), ("rev", "0"), ("ends", ends_text.as_str())];
        // Written only when there is one: an unconstrained family has neither field.
        fields.extend(constraint.jkt().map(|jkt| ("jkt", jkt)));
        fields.extend(constraint.certificate().map(|x5t| ("x5t", x5t)));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(&family_key, &fields)
            .ignore()
            .expire_at(&family_key, ends as i64)
            .ignore()
            .cmd("SET")
            .arg(self.token_key(&family, &minted.hash))
            .arg("c")
            .arg("EXAT")
            .arg(expires_at)
            .ignore();
        self.run_replicated(Retry::Safe, &family_key, |mut conn| {
            let pipe = &pipe;
            async move { pipe.query_async::<()>(&mut conn).await }
        })
        .await?;
        // The subject's index of families, kept as long as its newest family (not in the
        // transaction above: with Redis Cluster it lives in another slot).
        let subject_key = self.subject_key(subject);
        let mut index = redis::pipe();
        index.sadd(&subject_key, &family).ignore().expire_at(&subject_key, ends as i64).ignore();
        self.run(Retry::Safe, |mut conn| {
            let index = &index;
            async move { index.query_async::<()>(&mut conn).await }
        })
        .await?;
        Ok(IssuedRefresh {
            token: minted.token,
            subject: subject.to_owned(),
            family,
            expires_at,
            repeated: false,
        })
    }

    async fn rotate_now(
        &self,
        presented: &Presented<'_>,
        constraint: &SenderConstraint,
    ) -> Result<IssuedRefresh, RefreshError> {
        let minted = token::mint(presented.family);
        let grace = self.policy.grace_period_secs();
        let presented_key = self.token_key(presented.family, &presented.hash);
        let mut invocation = self.rotate.key(self.family_key(presented.family));
        invocation
            .key(&presented_key)
            .key(self.token_key(presented.family, &minted.hash))
            .key(format!("{presented_key}:g"))
            .arg(clock::now())
            .arg(self.policy.token_ttl_secs())
            .arg(grace)
            .arg(&minted.hash)
            .arg(if grace > 0 { token::seal(&minted.token, presented) } else { String::new() })
            .arg(constraint.jkt().unwrap_or_default())
            .arg(constraint.certificate().unwrap_or_default());
        // A repeat after a lost reply finds its own rotation done and, within the grace
        // period, gets the same successor back; without a grace period it would be a replay.
        let retry = if grace > 0 { Retry::Safe } else { Retry::Never };
        let family_key = self.family_key(presented.family);
        let reply: Vec<String> = self
            .run_replicated(retry, &family_key, |mut conn| {
                let invocation = &invocation;
                async move { invocation.invoke_async(&mut conn).await }
            })
            .await?;
        let rotated = |token, subject: &String, expires_at: &String, repeated| {
            Ok(IssuedRefresh {
                token,
                subject: subject.clone(),
                family: presented.family.to_owned(),
                expires_at: expires_at.parse().map_err(|_| RefreshError::Unavailable)?,
                repeated,
            })
        };
        match reply.as_slice() {
            [outcome, subject, expires_at] if outcome == "rotated" => {
                rotated(minted.token, subject, expires_at, false)
            }
            [outcome, subject, expires_at, sealed] if outcome == "again" => {
                match token::unseal(sealed, presented) {
                    Some(successor) => rotated(successor, subject, expires_at, true),
                    None => Err(RefreshError::Invalid),
                }
            }
            [outcome, subject] if outcome == "reused" => {
                tracing::warn!(target: "tower_jwt_guard", "refresh token reused: family revoked");
                Err(RefreshError::Reused { subject: subject.clone() })
            }
            [outcome] if outcome == "revoked" => Err(RefreshError::Revoked),
            [outcome] if outcome == "mismatch" => Err(sender_mismatch(presented.family)),
            _ => Err(RefreshError::Invalid),
        }
    }
}

impl RefreshStore for RedisRefreshStore {
    fn issue<'a>(
        &'a self,
        subject: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<IssuedRefresh, RefreshError>> {
        Box::pin(self.issue_now(subject, constraint))
    }

    fn rotate<'a>(
        &'a self,
        presented: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<IssuedRefresh, RefreshError>> {
        Box::pin(async move {
            let presented = token::parse(presented).ok_or(RefreshError::Invalid)?;
            self.rotate_now(&presented, constraint).await
        })
    }

    fn revoke<'a>(
        &'a self,
        presented: &'a str,
        constraint: &'a SenderConstraint,
    ) -> BoxFuture<'a, Result<Option<String>, RefreshError>> {
        Box::pin(async move {
            let Some(presented) = token::parse(presented) else { return Ok(None) };
            let family_key = self.family_key(presented.family);
            let mut invocation = self.revoke.key(&family_key);
            invocation
                .key(self.token_key(presented.family, &presented.hash))
                .arg(constraint.jkt().unwrap_or_default())
                .arg(constraint.certificate().unwrap_or_default());
            let subject: Option<String> = self
                .run_replicated(Retry::Safe, &family_key, |mut conn| {
                    let invocation = &invocation;
                    async move { invocation.invoke_async(&mut conn).await }
                })
                .await?;
            Ok(subject)
        })
    }

    fn revoke_subject<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<u64, RefreshError>> {
        Box::pin(async move {
            let members = redis::cmd("SMEMBERS").arg(self.subject_key(subject)).clone();
            let families: Vec<String> = self
                .run(Retry::Safe, |mut conn| {
                    let members = &members;
                    async move { members.query_async(&mut conn).await }
                })
                .await?;
            let mut revoked = 0;
            for family in &families {
                let family_key = self.family_key(family);
                let invocation = self.revoke_family.key(&family_key);
                let done: i64 = self
                    .run_replicated(Retry::Safe, &family_key, |mut conn| {
                        let invocation = &invocation;
                        async move { invocation.invoke_async(&mut conn).await }
                    })
                    .await?;
                revoked += u64::from(done == 1);
            }
            Ok(revoked)
        })
    }
}
