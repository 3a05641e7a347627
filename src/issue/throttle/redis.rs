//! [`RedisThrottleStore`]: counted attempts and last TOTP steps in Redis, shared by every
//! instance (feature `redis`).
//!
//! Keys (`<prefix>throttle:<throttle>:{<key>}`; the braces are a Redis Cluster hash tag, so an
//! account's keys of every throttle and its TOTP step share one slot):
//! - an attempt window: a sorted set, one member per counted attempt (its id), scored with the
//!   millisecond it was reserved at, expiring one window after its newest member;
//! - a TOTP step (`<prefix>throttle:totp:{a:…}`): the last accepted time step, as a string.
//!
//! Each operation is one command or one Lua script on one key, so it is atomic and works the
//! same on one server, a Sentinel-watched primary and a Cluster. Reserving again with the same
//! id changes nothing (`ZADD` of a member that is there), so a reservation whose reply was lost
//! is tried once more on a fresh connection; a TOTP step is not (a repeat would take its own
//! write for a replay and refuse the code: the request fails closed with 503 instead).
//!
//! The time is the instance's clock, as for a token's `exp`: keep the instances' clocks in
//! sync (NTP); an instance whose clock is minutes off counts a window minutes off.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::{Client, Script};

use super::memory::now_ms;
use super::policy::ThrottlePolicy;
use super::store::{ThrottleError, ThrottleStore};
use crate::guard::redis_connection::{Conn, RedisConnection, RedisServers, Retry};
use crate::guard::revocation::redis::{DEFAULT_KEY_PREFIX, DEFAULT_REDIS_TIMEOUT};
use crate::primitives::error::ConfigError;

/// KEYS: the window. ARGV: now (ms), window (ms), attempts, id.
/// Answers 0 when the attempt is counted, else the milliseconds until the oldest leaves.
const RESERVE_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
";

/// KEYS: the step. ARGV: step, keep (ms). 1 when the step is later than the stored one.
const ADVANCE_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Builds a [`RedisThrottleStore`].
#[must_use]
pub struct RedisThrottleStoreBuilder {
    servers: RedisServers,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisThrottleStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisThrottleStoreBuilder")
            .field("servers", &self.servers)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisThrottleStoreBuilder {
    /// The prefix of every key (default `tjg:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one Redis round trip may take (default 1 s); then
    /// [`ThrottleError::Unavailable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Makes the store (inside a Tokio runtime; it connects lazily and reconnects by itself).
    pub fn build(self) -> Result<RedisThrottleStore, ConfigError> {
        Ok(RedisThrottleStore {
            conn: RedisConnection::new(self.servers, self.timeout)?,
            prefix: self.prefix,
            reserve: Script::new(RESERVE_SCRIPT),
            advance: Script::new(ADVANCE_SCRIPT),
        })
    }
}

/// Counted attempts and last used TOTP steps in Redis (feature `redis`): every instance of a
/// service counts against one budget per key, and a TOTP code used on one is refused on all.
/// Fails closed: when Redis cannot answer, nothing is reserved
/// ([`ThrottleError::Unavailable`], answer 503). Cheap to clone.
///
/// ```no_run
/// use std::sync::Arc;
/// use tower_jwt_guard::issue::throttle::{RedisThrottleStore, Throttle, ThrottleKey, ThrottlePolicy};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(RedisThrottleStore::builder("redis://127.0.0.1:6379/")?.build()?);
/// let login = Throttle::new("login", ThrottlePolicy::default(), store);
/// let attempt = login.reserve(&[ThrottleKey::account("alice")]).await?;
/// attempt.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisThrottleStore {
    conn: RedisConnection,
    prefix: String,
    reserve: Script,
    advance: Script,
}

impl fmt::Debug for RedisThrottleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisThrottleStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisThrottleStore {
    /// Starts a builder for the Redis at `url`: one server, or a Sentinel or Cluster URL
    /// ([`RedisServers::from_url`]).
    ///
    /// ```
    /// use tower_jwt_guard::issue::throttle::RedisThrottleStore;
    /// assert!(RedisThrottleStore::builder("redis+cluster://10.0.0.1:7000,10.0.0.2:7000/").is_ok());
    /// assert!(RedisThrottleStore::builder("::").is_err());
    /// ```
    pub fn builder(url: &str) -> Result<RedisThrottleStoreBuilder, ConfigError> {
        Ok(Self::builder_with(RedisServers::from_url(url)?))
    }

    /// Starts a builder around an existing client (one server).
    pub fn builder_for(client: Client) -> RedisThrottleStoreBuilder {
        Self::builder_with(RedisServers::standalone(client))
    }

    /// Starts a builder for these servers (one, a Sentinel-watched primary, or a Cluster).
    pub fn builder_with(servers: RedisServers) -> RedisThrottleStoreBuilder {
        RedisThrottleStoreBuilder {
            servers,
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_REDIS_TIMEOUT,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}throttle:{key}", self.prefix)
    }

    async fn run<T, F, Fut>(&self, retry: Retry, op: F) -> Result<T, ThrottleError>
    where
        F: FnMut(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.conn.run(retry, op).await.map_err(|_| {
            tracing::warn!(target: "tower_jwt_guard", "throttle store: Redis unavailable");
            ThrottleError::Unavailable
        })
    }
}

impl ThrottleStore for RedisThrottleStore {
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        id: &'a str,
        policy: ThrottlePolicy,
    ) -> BoxFuture<'a, Result<(), ThrottleError>> {
        Box::pin(async move {
            let mut invocation = self.reserve.key(self.key(key));
            invocation.arg(now_ms()).arg(policy.window_ms()).arg(policy.attempts()).arg(id);
            let wait_ms: u64 = self
                .run(Retry::Safe, |mut conn| {
                    let invocation = &invocation;
                    async move { invocation.invoke_async(&mut conn).await }
                })
                .await?;
            match wait_ms {
                0 => Ok(()),
                wait => Err(ThrottleError::Limited { retry_after: Duration::from_millis(wait) }),
            }
        })
    }

    fn release<'a>(&'a self, key: &'a str, id: &'a str) -> BoxFuture<'a, Result<(), ThrottleError>> {
        Box::pin(async move {
            let command = redis::cmd("ZREM").arg(self.key(key)).arg(id).clone();
            self.run(Retry::Safe, |mut conn| {
                let command = &command;
                async move { command.query_async::<()>(&mut conn).await }
            })
            .await
        })
    }

    fn advance<'a>(
        &'a self,
        key: &'a str,
        value: u64,
        keep: Duration,
    ) -> BoxFuture<'a, Result<bool, ThrottleError>> {
        Box::pin(async move {
            let mut invocation = self.advance.key(self.key(key));
            invocation.arg(value).arg(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX).max(1));
            let stored: i64 = self
                .run(Retry::Never, |mut conn| {
                    let invocation = &invocation;
                    async move { invocation.invoke_async(&mut conn).await }
                })
                .await?;
            Ok(stored == 1)
        })
    }
}
