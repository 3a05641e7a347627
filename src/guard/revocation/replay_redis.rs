//! [`RedisReplayStore`]: DPoP proof replay shared by every instance of a service through Redis
//! (feature `redis`).
//!
//! One key per proof, `SET <prefix>dpop:<key> 1 NX EX <the proof's remaining lifetime>`: Redis
//! answers `OK` to the first instance that records a proof and nothing to every later one,
//! atomically. The lifetime is relative, counted by this instance's clock (the one that judged
//! the proof's `iat`): a Redis clock ahead of ours cannot expire the entry early and let the
//! proof be replayed, as an absolute `EXAT` would. There
//! is no local cache (a proof is used once: a cache would never hit). Every failure — Redis
//! unreachable, a timeout, an unexpected answer — is [`ReplayCheck::Unavailable`]: the request
//! fails closed (503), since a proof that cannot be recorded could be replayed elsewhere.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::redis::{DEFAULT_KEY_PREFIX, DEFAULT_REDIS_TIMEOUT};
use super::replay::{ReplayCheck, ReplayKey, ReplayStore};
use crate::guard::redis_connection::{RedisConnection, RedisServers, Retry};
use crate::primitives::error::ConfigError;

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
    /// The clock the remaining lifetime is counted with (a test moves it).
    now: fn() -> u64,
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
        let inner = Inner { conn, prefix: prefix.to_owned(), timeout, now: crate::primitives::clock::now };
        Ok(RedisReplayStore { inner: Arc::new(inner) })
    }

    /// The Redis key of a proof.
    fn key(&self, key: &ReplayKey) -> String {
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
        // At least a second: an entry must outlive the request that records it.
        let remaining = expires_at.saturating_sub((self.inner.now)()).max(1);
        let inner = Arc::clone(&self.inner);
        ReplayCheck::Pending(Box::pin(async move {
            let mut command = redis::cmd("SET");
            command.arg(&redis_key).arg(1).arg("NX").arg("EX").arg(remaining);
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

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use super::*;

    /// A private `redis-server` on a free loopback port, killed on drop.
    struct Server(Child, u16);

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn redis_server() -> Option<Server> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            assert!(std::env::var("REQUIRE_REDIS").map_or(true, |v| v != "1"), "redis-server not found");
            eprintln!("skipped: redis-server not found");
            return None;
        };
        let server = Server(child, port);
        let start = Instant::now();
        while TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// This instance's clock an hour behind Redis's: the entry must still live for the proof's
    /// remaining lifetime (an absolute `EXAT` would be in Redis's past: gone at once, replayable).
    #[tokio::test]
    async fn a_redis_clock_ahead_of_ours_does_not_shorten_an_entry() {
        let Some(server) = redis_server() else { return };
        let url = format!("redis://127.0.0.1:{}/", server.1);
        let mut store = RedisReplayStore::with_options(&url, "skew:", Duration::from_secs(2)).unwrap();
        fn an_hour_ago() -> u64 {
            crate::primitives::clock::now() - 3600
        }
        Arc::get_mut(&mut store.inner).unwrap().now = an_hour_ago;
        let key = ReplayKey::new(&[9; 32], "proof");
        let expires_at = an_hour_ago() + 60;
        let answer = |check: ReplayCheck| async move {
            match check {
                ReplayCheck::Pending(future) => future.await,
                other => other,
            }
        };
        assert!(matches!(answer(store.check_and_record(&key, expires_at)).await, ReplayCheck::Fresh));
        assert!(matches!(answer(store.check_and_record(&key, expires_at)).await, ReplayCheck::Replayed));
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let ttl: i64 = redis::cmd("TTL").arg(store.key(&key)).query_async(&mut conn).await.unwrap();
        assert!((55..=61).contains(&ttl), "TTL {ttl}");
    }
}
