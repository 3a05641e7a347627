//! [`RedisServers`]: where the Redis stores' data lives (one server, a Sentinel-managed primary,
//! or a Cluster), and the connection every Redis store uses (feature `redis`).
//!
//! URLs, in the forms redis-rs uses plus two for the topologies it has no URL for:
//!
//! | URL | topology |
//! |---|---|
//! | `redis://[user:password@]host:port/db`, `rediss://..`, `unix:///path` | one server |
//! | `redis+sentinel://[user:password@]host:port,host:port/service[/db][?sentinel_password=..]` | the primary named `service`, found through these Sentinels |
//! | `rediss+sentinel://..`, `rediss+cluster://..` | the same over TLS, to the Sentinels and to every data node |
//! | `redis+cluster://[user:password@]host:port,host:port/` | a Redis Cluster, from these seed nodes |
//!
//! Credentials in a Sentinel URL's userinfo are the data nodes'; the Sentinels' own (Sentinel's
//! `requirepass`) go in its query, `sentinel_username` and `sentinel_password`, percent-encoded.
//! A Cluster's apply to every node. Percent-encode every credential: a raw `@`, `/`, `?`, `:`
//! or `,` in one breaks the URL (refused, never misread as another host).
//!
//! Failure handling, the same for every store:
//! - every operation has one deadline (the store's timeout): when it passes, the store fails
//!   closed;
//! - an operation that failed because the connection was lost (Redis restarted, the primary
//!   failed over, a node was replaced) is tried once more on a fresh connection, within the
//!   same deadline, when it is safe to repeat (reads, idempotent scripts, and a refresh
//!   rotation when the grace period makes a repeat return the same answer);
//! - with Sentinel, a lost connection or a timeout also forgets the primary: the next attempt
//!   asks the Sentinels again (a frozen or cut-off primary is left behind too), so a failover costs the requests made during the failover itself, not
//!   the ones after;
//! - a Cluster connection follows `MOVED`/`ASK` and refreshes its slot map by itself.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Client, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};

use crate::primitives::error::ConfigError;

/// Where a Redis store's data lives: one server, a primary watched by Redis Sentinel, or a
/// Redis Cluster (feature `redis`). Every Redis store is built from one
/// ([`RedisRevocationStore::builder_with`](crate::revocation::RedisRevocationStore::builder_with),
/// [`RedisRefreshStore::builder_with`](crate::refresh::RedisRefreshStore::builder_with)), or
/// from a URL that names one:
///
/// | URL | topology |
/// |---|---|
/// | `redis://[user:password@]host:port/db`, `rediss://..`, `unix:///path` | one server |
/// | `redis+sentinel://[user:password@]host:port,host:port/service[/db][?sentinel_password=..]` | the primary named `service`, found through these Sentinels |
/// | `rediss+sentinel://..`, `rediss+cluster://..` | the same over TLS, to the Sentinels and to every data node |
/// | `redis+cluster://[user:password@]host:port,host:port/` | a Redis Cluster, from these seed nodes |
///
/// Credentials in a Sentinel URL's userinfo are the data nodes'; the Sentinels' own (Sentinel's
/// `requirepass`) go in its query, `sentinel_username` and `sentinel_password`, percent-encoded.
/// A Cluster's apply to every node. A store's timeout bounds every operation;
/// an operation that lost its connection (a restart, a failover) is tried once more on a fresh
/// one within that timeout when repeating it is safe.
///
/// ```
/// use tower_jwt_guard::RedisServers;
///
/// assert!(RedisServers::from_url("redis://127.0.0.1:6379/").is_ok());
/// assert!(RedisServers::from_url("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster").is_ok());
/// assert!(RedisServers::from_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000/").is_ok());
/// assert!(RedisServers::from_url(
///     "redis+sentinel://:node-secret@10.0.0.1:26379/mymaster?sentinel_password=sentinel%20secret"
/// ).is_ok());
/// assert!(RedisServers::from_url("redis+sentinel://10.0.0.1:26379/").is_err()); // no service name
/// assert!(RedisServers::from_url("redis+sentinel://10.0.0.1:26379/mymaster?password=x").is_err());
/// ```
#[derive(Clone)]
pub struct RedisServers {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Standalone(Client),
    Sentinel { sentinels: Vec<ConnectionInfo>, service: String, node: ConnectionInfo, tls: bool },
    Cluster { nodes: Vec<ConnectionInfo> },
}

impl fmt::Debug for RedisServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses only: a URL may carry a password.
        let addrs = |nodes: &[ConnectionInfo]| nodes.iter().map(|n| n.addr().to_string()).collect::<Vec<_>>();
        match &self.kind {
            Kind::Standalone(client) => {
                f.debug_tuple("Standalone").field(&client.get_connection_info().addr().to_string()).finish()
            }
            Kind::Sentinel { sentinels, service, .. } => f
                .debug_struct("Sentinel")
                .field("sentinels", &addrs(sentinels))
                .field("service", service)
                .finish_non_exhaustive(),
            Kind::Cluster { nodes } => f.debug_struct("Cluster").field("nodes", &addrs(nodes)).finish(),
        }
    }
}

const INVALID_URL: ConfigError = ConfigError::Invalid("REDIS_URL is not a valid Redis URL");

impl RedisServers {
    /// Parses a URL (the forms are in the [type's docs](RedisServers)).
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        if let Some((scheme, rest)) = url.split_once("+sentinel://") {
            let scheme = node_scheme(scheme)?;
            let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (userinfo, hosts, path) = split_multi_host(rest)?;
            let mut parts = path.split('/').filter(|part| !part.is_empty());
            let service = parts.next().ok_or(ConfigError::Invalid(
                "a redis+sentinel:// URL names the service: redis+sentinel://host:port,../service[/db]",
            ))?;
            let db = parts.next().unwrap_or("0");
            let credentials = SentinelCredentials::from_query(query)?;
            let sentinels = hosts
                .iter()
                .map(|host| info(&format!("{scheme}://{host}/")).map(|info| credentials.apply(info)))
                .collect::<Result<_, _>>()?;
            let node = info(&format!("{scheme}://{userinfo}{}/{db}", hosts[0]))?;
            return Ok(RedisServers {
                kind: Kind::Sentinel {
                    sentinels,
                    service: service.to_owned(),
                    node,
                    tls: scheme == "rediss",
                },
            });
        }
        if let Some((scheme, rest)) = url.split_once("+cluster://") {
            let scheme = node_scheme(scheme)?;
            let (userinfo, hosts, _) = split_multi_host(rest)?;
            let nodes = hosts
                .iter()
                .map(|host| info(&format!("{scheme}://{userinfo}{host}/")))
                .collect::<Result<_, _>>()?;
            return Ok(RedisServers { kind: Kind::Cluster { nodes } });
        }
        Client::open(url).map(Self::standalone).map_err(|_| INVALID_URL)
    }

    /// One server, from a client built by the application.
    pub fn standalone(client: Client) -> Self {
        RedisServers { kind: Kind::Standalone(client) }
    }

    /// The primary named `service` by these Sentinels (`redis://[user:password@]host:port` or
    /// `rediss://..` each); `node` gives the data nodes' credentials, database and scheme
    /// (`redis://user:password@_/db`, `rediss://..` for TLS; its address is unused).
    pub fn sentinel<T: IntoConnectionInfo>(
        sentinels: impl IntoIterator<Item = T>,
        service: &str,
        node: impl IntoConnectionInfo,
    ) -> Result<Self, ConfigError> {
        let sentinels = sentinels
            .into_iter()
            .map(|s| s.into_connection_info().map_err(|_| INVALID_URL))
            .collect::<Result<Vec<_>, _>>()?;
        if sentinels.is_empty() || service.is_empty() {
            return Err(ConfigError::Invalid("Sentinel needs at least one sentinel and a service name"));
        }
        let node = node.into_connection_info().map_err(|_| INVALID_URL)?;
        let tls = matches!(node.addr(), redis::ConnectionAddr::TcpTls { .. });
        Ok(RedisServers { kind: Kind::Sentinel { sentinels, service: service.to_owned(), node, tls } })
    }

    /// A Redis Cluster, from some of its nodes (`redis://[user:password@]host:port` each).
    pub fn cluster<T: IntoConnectionInfo>(nodes: impl IntoIterator<Item = T>) -> Result<Self, ConfigError> {
        let nodes = nodes
            .into_iter()
            .map(|n| n.into_connection_info().map_err(|_| INVALID_URL))
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(ConfigError::Invalid("a Redis Cluster needs at least one seed node"));
        }
        Ok(RedisServers { kind: Kind::Cluster { nodes } })
    }
}

/// `redis` (plain TCP) or `rediss` (TLS) before `+sentinel://` or `+cluster://`.
fn node_scheme(scheme: &str) -> Result<&'static str, ConfigError> {
    match scheme {
        "redis" => Ok("redis"),
        "rediss" => Ok("rediss"),
        _ => Err(INVALID_URL),
    }
}

/// `[userinfo@]host:port,host:port[/path]` → (`userinfo@` or empty, hosts, path).
fn split_multi_host(rest: &str) -> Result<(&str, Vec<&str>, &str), ConfigError> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let hosts: Vec<&str> = hosts.split(',').filter(|host| !host.is_empty()).collect();
    if hosts.is_empty() {
        return Err(INVALID_URL);
    }
    Ok((userinfo, hosts, path))
}

/// The Sentinels' own credentials, from a Sentinel URL's query (`sentinel_username`,
/// `sentinel_password`, percent-encoded); the URL's userinfo is the data nodes'.
#[derive(Default)]
struct SentinelCredentials {
    username: Option<String>,
    password: Option<String>,
}

impl SentinelCredentials {
    fn from_query(query: &str) -> Result<Self, ConfigError> {
        let mut credentials = SentinelCredentials::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| INVALID_URL)?
                .into_owned();
            match name {
                "sentinel_username" => credentials.username = Some(value),
                "sentinel_password" => credentials.password = Some(value),
                _ => return Err(ConfigError::Invalid(
                    "a redis+sentinel:// URL takes only sentinel_username and sentinel_password in its query",
                )),
            }
        }
        Ok(credentials)
    }

    fn apply(&self, info: ConnectionInfo) -> ConnectionInfo {
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &self.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        info.set_redis_settings(settings)
    }
}

fn info(url: &str) -> Result<ConnectionInfo, ConfigError> {
    url.into_connection_info().map_err(|_| INVALID_URL)
}

/// The connection of one store: one per store, cheap to clone.
#[derive(Clone)]
pub(crate) struct RedisConnection {
    shared: Arc<Shared>,
}

struct Shared {
    timeout: Duration,
    link: Link,
}

enum Link {
    /// Reconnects by itself to the same address.
    Standalone { conn: ConnectionManager, client: Client },
    /// The current primary's connection, forgotten when it is lost; `sentinel` (locked while
    /// the primary is looked up, so that one lookup serves every waiting request).
    Sentinel { sentinel: tokio::sync::Mutex<SentinelClient>, current: Mutex<Option<ConnectionManager>> },
    /// Connected on first use; follows the cluster's topology by itself.
    Cluster {
        client: ClusterClient,
        nodes: Vec<ConnectionInfo>,
        connecting: tokio::sync::Mutex<()>,
        current: Mutex<Option<ClusterConnection>>,
        next_subscriber: AtomicUsize,
    },
}

/// Whether an operation may be repeated after a lost connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Repeating it changes nothing (a read, an idempotent script).
    Safe,
    /// Must run at most once.
    Never,
}

/// Redis did not answer in time, or answered with an error: the store fails closed.
#[derive(Debug)]
pub(crate) struct Unavailable;

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(timeout)
}

impl RedisConnection {
    /// Sets the connection up without waiting for Redis (until it answers, operations fail).
    /// Must run inside a Tokio runtime.
    pub(crate) fn new(servers: RedisServers, timeout: Duration) -> Result<Self, ConfigError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::Invalid("a Redis store must be built inside a Tokio runtime"));
        }
        let link = match servers.kind {
            Kind::Standalone(client) => Link::Standalone {
                conn: ConnectionManager::new_lazy_with_config(client.clone(), manager_config(timeout))
                    .map_err(|_| ConfigError::Invalid("the Redis connection could not be set up"))?,
                client,
            },
            Kind::Sentinel { sentinels, service, node, tls } => {
                let mut node = SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(node.redis_settings().clone());
                if tls {
                    node = node.set_tls_mode(redis::TlsMode::Secure);
                }
                let sentinel =
                    SentinelClient::build(sentinels, service, Some(node), SentinelServerType::Master)
                        .map_err(|_| ConfigError::Invalid("the Sentinel client could not be set up"))?;
                Link::Sentinel { sentinel: tokio::sync::Mutex::new(sentinel), current: Mutex::new(None) }
            }
            Kind::Cluster { nodes } => {
                let client = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(timeout.as_millis().try_into().unwrap_or(u64::MAX).max(10))
                    .build()
                    .map_err(|_| ConfigError::Invalid("the Redis Cluster client could not be set up"))?;
                Link::Cluster {
                    client,
                    nodes,
                    connecting: tokio::sync::Mutex::new(()),
                    current: Mutex::new(None),
                    next_subscriber: AtomicUsize::new(0),
                }
            }
        };
        Ok(RedisConnection { shared: Arc::new(Shared { timeout, link }) })
    }

    /// Runs `op` on a connection within the timeout; once more on a fresh connection if the
    /// first attempt lost its connection and `retry` allows it.
    pub(crate) async fn run<T, F, Fut>(&self, retry: Retry, mut op: F) -> Result<T, Unavailable>
    where
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.shared.timeout;
        let mut attempts_left = if retry == Retry::Safe { 2 } else { 1 };
        loop {
            attempts_left -= 1;
            let attempt = tokio::time::timeout_at(deadline, async {
                let conn = self.connection().await?;
                op(conn).await
            });
            match attempt.await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) if connection_lost(&err) => {
                    self.forget();
                    if attempts_left == 0 {
                        return Err(Unavailable);
                    }
                    tracing::debug!(target: "tower_jwt_guard", "Redis connection lost: trying once more");
                }
                Ok(Err(_)) => return Err(Unavailable),
                Err(_elapsed) => {
                    // A primary that stopped answering (frozen, cut off) may have been replaced:
                    // with Sentinel, the next request asks the sentinels again.
                    self.forget();
                    return Err(Unavailable);
                }
            }
        }
    }

    async fn connection(&self) -> redis::RedisResult<Conn> {
        match &self.shared.link {
            Link::Standalone { conn, .. } => Ok(Conn::Manager(conn.clone())),
            Link::Sentinel { sentinel, current } => {
                if let Some(conn) = lock(current).clone() {
                    return Ok(Conn::Manager(conn));
                }
                let mut sentinel = sentinel.lock().await;
                if let Some(conn) = lock(current).clone() {
                    return Ok(Conn::Manager(conn));
                }
                let client = sentinel.async_get_client().await?;
                let conn =
                    ConnectionManager::new_lazy_with_config(client, manager_config(self.shared.timeout))?;
                *lock(current) = Some(conn.clone());
                Ok(Conn::Manager(conn))
            }
            Link::Cluster { client, connecting, current, .. } => {
                if let Some(conn) = lock(current).clone() {
                    return Ok(Conn::Cluster(conn));
                }
                let _one_at_a_time = connecting.lock().await;
                if let Some(conn) = lock(current).clone() {
                    return Ok(Conn::Cluster(conn));
                }
                let conn = client.get_async_connection().await?;
                *lock(current) = Some(conn.clone());
                Ok(Conn::Cluster(conn))
            }
        }
    }

    /// After a lost connection or a timeout: a Sentinel primary is looked up again on the
    /// next attempt (the others reconnect by themselves).
    fn forget(&self) {
        if let Link::Sentinel { current, .. } = &self.shared.link {
            *lock(current) = None;
        }
    }

    /// A new pub/sub connection: to the server, to the current primary, or to one of the
    /// cluster's seed nodes in turn (classic PUBLISH reaches every node of a cluster).
    pub(crate) async fn pubsub(&self) -> redis::RedisResult<PubSub> {
        match &self.shared.link {
            Link::Standalone { client, .. } => client.get_async_pubsub().await,
            Link::Sentinel { sentinel, .. } => {
                let client = sentinel.lock().await.async_get_client().await?;
                client.get_async_pubsub().await
            }
            Link::Cluster { nodes, next_subscriber, .. } => {
                let first = next_subscriber.fetch_add(1, Ordering::Relaxed);
                let mut last = None;
                for i in 0..nodes.len() {
                    let node = nodes[(first + i) % nodes.len()].clone();
                    match Client::open(node) {
                        Ok(client) => match client.get_async_pubsub().await {
                            Ok(pubsub) => return Ok(pubsub),
                            Err(err) => last = Some(err),
                        },
                        Err(err) => last = Some(err),
                    }
                }
                Err(last.unwrap_or_else(|| RedisError::from(std::io::Error::other("no cluster node"))))
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Errors after which the same operation on a fresh connection may succeed: the connection
/// dropped or was refused, or the node is no longer the primary (a failover in progress).
fn connection_lost(err: &RedisError) -> bool {
    err.is_unrecoverable_error()
        || err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_cluster_error()
        || matches!(err.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

/// A connection of any topology.
#[derive(Clone)]
pub(crate) enum Conn {
    Manager(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Manager(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Manager(conn) => conn.req_packed_commands(cmd, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Manager(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_topology() {
        let sentinel = RedisServers::from_url("redis+sentinel://:pw@a:26379,b:26380/mymaster/2").unwrap();
        let Kind::Sentinel { sentinels, service, node, tls } = &sentinel.kind else { panic!() };
        assert!(!tls);
        assert_eq!(sentinels.len(), 2);
        assert_eq!(service, "mymaster");
        assert_eq!(node.redis_settings().db(), 2);
        assert_eq!(node.redis_settings().password(), Some("pw"));
        assert_eq!(sentinels[1].redis_settings().password(), None);
        assert!(!format!("{sentinel:?}").contains("pw"));

        let guarded = RedisServers::from_url(
            "redis+sentinel://:pw@a:26379,b:26380/mymaster?sentinel_username=s&sentinel_password=p%40ss%20word",
        )
        .unwrap();
        let Kind::Sentinel { sentinels, node, .. } = &guarded.kind else { panic!() };
        assert!(sentinels.iter().all(|s| s.redis_settings().password() == Some("p@ss word")
            && s.redis_settings().username() == Some("s")));
        assert_eq!(node.redis_settings().password(), Some("pw"));
        assert_eq!(node.redis_settings().db(), 0);
        assert!(!format!("{guarded:?}").contains("p@ss"));
        assert!(RedisServers::from_url("redis+sentinel://a:1/m?sentinel_pasword=typo").is_err());

        let cluster = RedisServers::from_url("redis+cluster://u:pw@a:7000,b:7001,c:7002").unwrap();
        let Kind::Cluster { nodes } = &cluster.kind else { panic!() };
        assert_eq!(nodes.len(), 3);
        assert!(nodes.iter().all(|n| n.redis_settings().password() == Some("pw")));

        assert!(RedisServers::from_url("redis+cluster:///").is_err());
        let secure = RedisServers::from_url("rediss+sentinel://a:1/m").unwrap();
        let Kind::Sentinel { sentinels, tls, .. } = &secure.kind else { panic!() };
        assert!(*tls && matches!(sentinels[0].addr(), redis::ConnectionAddr::TcpTls { .. }));
        let secure = RedisServers::from_url("rediss+cluster://a:1,b:2/").unwrap();
        let Kind::Cluster { nodes } = &secure.kind else { panic!() };
        assert!(nodes.iter().all(|n| matches!(n.addr(), redis::ConnectionAddr::TcpTls { .. })));
        assert!(RedisServers::from_url("http+cluster://a:1/").is_err());
        assert!(RedisServers::from_url("redis+sentinel://a:1").is_err());
    }
}
