//! [`RedisReplayStore`]: DPoP proof replay shared by every instance of a service through Redis
//! (feature `redis`).
//!
//! One key per proof, `SET <prefix>dpop:<key> 1 NX EXAT <proof expiry>`: Redis answers `OK`
//! to the first instance that records a proof and nothing to every later one, atomically. There
//! is no local cache (a proof is used once: a cache would never hit). Every failure — Redis
//! unreachable, a timeout, an unexpected answer — is [`ReplayCheck::Unavailable`]: the request
//! fails closed (503), since a proof that cannot be recorded could be replayed elsewhere.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::redis::{DEFAULT_KEY_PREFIX, DEFAULT_REDIS_TIMEOUT};
use super::replay::{ReplayCheck, ReplayKey, ReplayStore};
use crate::error::ConfigError;
use crate::guard::redis_connection::{RedisConnection, RedisServers, Retry};

/// DPoP proofs seen, in Redis (feature `redis`). Cheap to clone; build it inside a Tokio runtime.
///
/// ```no_run
/// use tower_jwt_guard::binding::Dpop;
/// use tower_jwt_guard::revocation::RedisReplayStore;
///
/// # async fn run() -> Result<(), tower_jwt_guard::ConfigError> {
/// let store = RedisReplayStore::new("redis://127.0.0.1:6379/")?;
/// let dpop = Dpop::allowed().public_url("https://api.example.com").replay_store(store);
/// # let _ = dpop;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisReplayStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: RedisConnection,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// A store at `url` (standalone, Sentinel or Cluster: [`RedisServers::from_url`]) with the
    /// default key prefix (`tjg:`) and timeout (1 s).
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        RedisReplayStore::with_options(url, DEFAULT_KEY_PREFIX, DEFAULT_REDIS_TIMEOUT)
    }

    /// A store at `url`: keys under `prefix` (instances that share proofs use the same), each
    /// Redis round trip at most `timeout` before the request fails closed.
    pub fn with_options(url: &str, prefix: &str, timeout: Duration) -> Result<Self, ConfigError> {
        RedisReplayStore::with_servers(RedisServers::from_url(url)?, prefix, timeout)
    }

    /// A store on `servers` (any topology), as [`with_options`](Self::with_options).
    pub fn with_servers(servers: RedisServers, prefix: &str, timeout: Duration) -> Result<Self, ConfigError> {
        let conn = RedisConnection::new(servers, timeout)?;
        Ok(RedisReplayStore { inner: Arc::new(Inner { conn, prefix: prefix.to_owned(), timeout }) })
    }

    /// The Redis key of a proof.
    pub fn key(&self, key: &ReplayKey) -> String {
        let mut out = String::with_capacity(self.inner.prefix.len() + 5 + 43);
        out.push_str(&self.inner.prefix);
        out.push_str("dpop:");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(key.as_bytes(), &mut out);
        out
    }
}

impl ReplayStore for RedisReplayStore {
    fn check_and_record(&self, key: &ReplayKey, expires_at: u64) -> ReplayCheck {
        let redis_key = self.key(key);
        let inner = Arc::clone(&self.inner);
        ReplayCheck::Pending(Box::pin(async move {
            let mut command = redis::cmd("SET");
            command.arg(&redis_key).arg(1).arg("NX").arg("EXAT").arg(expires_at.max(1));
            // Never repeated: a SET that took effect before its connection dropped would read as
            // a replay the second time.
            let answer = inner
                .conn
                .run(Retry::Never, |mut conn| {
                    let command = &command;
                    async move { command.query_async::<Option<String>>(&mut conn).await }
                })
                .await;
            match answer {
                Ok(Some(ok)) if ok == "OK" => ReplayCheck::Fresh,
                Ok(None) => ReplayCheck::Replayed,
                Ok(Some(_)) | Err(_) => {
                    tracing::warn!(target: "tower_jwt_guard", "DPoP replay store (Redis) unavailable: request refused");
                    ReplayCheck::Unavailable
                }
            }
        }))
    }
}
