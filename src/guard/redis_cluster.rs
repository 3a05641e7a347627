//! The Redis Cluster connection of one store (feature `redis`): a redis-rs
//! [`ClusterConnection`], replaced by a fresh one when it keeps failing.
//!
//! Why replace it: redis-rs follows `MOVED` and refreshes its slot map on redirections, but a
//! node that dies or freezes is not always left behind:
//! - a command to a frozen primary (SIGSTOP, a partition without a reset) times out, and redis-rs
//!   retries it on the same node: its slot map is never refreshed, and once the store's deadline
//!   has dropped the command, nothing at all is learnt from it;
//! - a killed primary's connection is repaired in the background, forever, while the node is
//!   in the (never refreshed) slot map: here it is given up after a few attempts
//!   (`max_connection_attempts`).
//!
//! So a store could fail closed long after the cluster had promoted a replica. The rule here:
//! after [`FAILURES_BEFORE_REBUILD`] failed operations in a row (lost connection, cluster error,
//! timeout), a new `ClusterConnection` is built in the background (a fresh slot map, connections
//! only to the nodes in it); the old one keeps serving until the new one is ready, then is
//! dropped with its connections and repair loops. A build asks every seed node at once and
//! starts from the first that answers `cluster_state:ok`: a dead or frozen seed costs nothing,
//! and a node cut off from the majority (which says `fail`) is not trusted with the slot map. Builds are spaced by a backoff
//! (100 ms, doubling, at most 1 s) while failures go on, and the backoff starts again after a
//! success. A store thus answers again within about a second of the cluster's own failover.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{self, BoxFuture};
use redis::aio::PubSub;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionInfo, RedisError, RedisResult};
use tokio::time::Instant;

/// Failed operations in a row after which the connection is rebuilt.
pub(crate) const FAILURES_BEFORE_REBUILD: u32 = 2;
/// Attempts to repair the connection to one node before it is dropped.
const CONNECTION_ATTEMPTS: NonZeroUsize = NonZeroUsize::new(5).expect("not zero");
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A cluster connection that rebuilds itself; shared by the clones of one store's connection.
pub(crate) struct ClusterLink {
    seeds: Vec<ConnectionInfo>,
    timeout: Duration,
    /// Bounds one build (the seeds' connections and the slot map).
    build_limit: Duration,
    current: Mutex<Option<ClusterConnection>>,
    /// Woken when a build ends, built or not.
    built: tokio::sync::Notify,
    failures: AtomicU32,
    rebuilds: Mutex<Rebuilds>,
    next_subscriber: AtomicUsize,
}

struct Rebuilds {
    building: bool,
    not_before: Instant,
    backoff: Duration,
}

impl ClusterLink {
    /// Checks the client's settings; connects on first use.
    pub(crate) fn new(seeds: Vec<ConnectionInfo>, timeout: Duration) -> RedisResult<Arc<Self>> {
        client(seeds.clone(), timeout)?;
        Ok(Arc::new(ClusterLink {
            seeds,
            timeout,
            // The probe of the seeds, then a frozen primary still in the slot map costs one
            // timeout to connect and one for its `PING`.
            build_limit: timeout * 4 + Duration::from_millis(100),
            current: Mutex::new(None),
            built: tokio::sync::Notify::new(),
            failures: AtomicU32::new(0),
            rebuilds: Mutex::new(Rebuilds {
                building: false,
                not_before: Instant::now(),
                backoff: FIRST_BACKOFF,
            }),
            next_subscriber: AtomicUsize::new(0),
        }))
    }

    /// The seed nodes it was made from.
    pub(crate) fn seeds(&self) -> &[ConnectionInfo] {
        &self.seeds
    }

    /// The current connection; when there is none, or `fresh` is asked while a rebuild runs
    /// (an operation tried again after a failure), waits for the build (the caller's deadline
    /// bounds the wait).
    pub(crate) async fn connection(self: &Arc<Self>, fresh: bool) -> redis::RedisResult<ClusterConnection> {
        let built = self.built.notified();
        tokio::pin!(built);
        built.as_mut().enable();
        let current = lock(&self.current).clone();
        match current {
            Some(conn) if !(fresh && lock(&self.rebuilds).building) => return Ok(conn),
            Some(_) => {}
            None => {
                if !self.rebuild() {
                    return Err(not_connected());
                }
            }
        }
        built.await;
        lock(&self.current).clone().ok_or_else(not_connected)
    }

    /// An operation succeeded: the failure count and the backoff start again.
    pub(crate) fn succeeded(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            lock(&self.rebuilds).backoff = FIRST_BACKOFF;
        }
    }

    /// An operation failed with a lost connection, a cluster error or a timeout.
    pub(crate) fn failed(self: &Arc<Self>) {
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= FAILURES_BEFORE_REBUILD {
            self.rebuild();
        }
    }

    /// Starts a build in the background unless one runs or the backoff forbids it; whether a
    /// build is running now.
    fn rebuild(self: &Arc<Self>) -> bool {
        {
            let mut rebuilds = lock(&self.rebuilds);
            if rebuilds.building {
                return true;
            }
            let now = Instant::now();
            if now < rebuilds.not_before {
                return false;
            }
            rebuilds.building = true;
            rebuilds.not_before = now + rebuilds.backoff;
            rebuilds.backoff = (rebuilds.backoff * 2).min(MAX_BACKOFF);
        }
        let link = Arc::clone(self);
        tokio::spawn(async move {
            match tokio::time::timeout(link.build_limit, link.build()).await {
                Ok(Ok(conn)) => {
                    // The old connection goes with its last clone (requests in flight hold one).
                    *lock(&link.current) = Some(conn);
                    tracing::debug!(target: "tower_jwt_guard", "Redis Cluster connection rebuilt");
                }
                _ => {
                    tracing::debug!(target: "tower_jwt_guard", "Redis Cluster connection could not be rebuilt")
                }
            }
            lock(&link.rebuilds).building = false;
            link.built.notify_waiters();
        });
        true
    }

    /// A new connection, from the first seed that answers `cluster_state:ok`.
    async fn build(&self) -> RedisResult<ClusterConnection> {
        let probes = self.seeds.iter().map(|seed| -> BoxFuture<'_, RedisResult<ConnectionInfo>> {
            Box::pin(async move {
                let client = Client::open(seed.clone())?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
                match redis::cmd("CLUSTER").arg("INFO").query_async::<String>(&mut conn).await {
                    Ok(info) if info.lines().any(|line| line.trim() == "cluster_state:ok") => {
                        Ok(seed.clone())
                    }
                    Ok(_) => Err(RedisError::from(std::io::Error::other("cluster_state is not ok"))),
                    // A user without `CLUSTER INFO` (ACL): the seed answers, that is all we learn.
                    Err(err) if err.code() == Some("NOPERM") => Ok(seed.clone()),
                    Err(err) => Err(err),
                }
            })
        });
        let (seed, _slower) = future::select_ok(probes).await?;
        client(vec![seed], self.timeout)?.get_async_connection().await
    }

    /// A new pub/sub connection to one of the seed nodes in turn (a classic `PUBLISH` reaches
    /// every node of a cluster).
    pub(crate) async fn pubsub(&self) -> redis::RedisResult<PubSub> {
        let first = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for i in 0..self.seeds.len() {
            let node = self.seeds[(first + i) % self.seeds.len()].clone();
            match Client::open(node) {
                Ok(client) => match client.get_async_pubsub().await {
                    Ok(pubsub) => return Ok(pubsub),
                    Err(err) => last = Some(err),
                },
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(not_connected))
    }
}

/// A cluster client from `seeds`: every command bounded by `timeout`, redirections followed.
/// A node that cannot be reached is given up after [`CONNECTION_ATTEMPTS`] (about 1.5 s of
/// backoff), not repaired forever; it is found again at the next slot map refresh if it is back.
fn client(seeds: Vec<ConnectionInfo>, timeout: Duration) -> RedisResult<ClusterClient> {
    ClusterClientBuilder::new(seeds)
        .max_connection_attempts(CONNECTION_ATTEMPTS)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(timeout.as_millis().try_into().unwrap_or(u64::MAX).max(10))
        .build()
}

fn not_connected() -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::NotConnected, "no Redis Cluster connection"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use redis::IntoConnectionInfo;

    use super::*;

    #[tokio::test]
    async fn builds_are_spaced_while_they_fail() {
        // Nothing listens on port 1: every build fails at once.
        let seed = "redis://127.0.0.1:1/".into_connection_info().unwrap();
        let link = ClusterLink::new(vec![seed], Duration::from_millis(200)).unwrap();
        assert!(link.connection(false).await.is_err());
        // Within the backoff no other build starts: requests fail closed at once.
        assert!(!link.rebuild());
        assert!(link.connection(false).await.is_err());
        tokio::time::sleep(FIRST_BACKOFF).await;
        assert!(link.rebuild(), "after the backoff a build starts again");
        link.built.notified().await;
        // The backoff grew: the next build waits longer than the first backoff.
        tokio::time::sleep(FIRST_BACKOFF).await;
        assert!(!link.rebuild());
        // A success clears the failures.
        link.succeeded();
        assert_eq!(link.failures.load(Ordering::Relaxed), 0);
    }
}
