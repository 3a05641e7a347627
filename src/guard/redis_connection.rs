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
//!   asks the Sentinels again (a frozen or cut-off primary is left behind too), so a failover
//!   costs the requests made during the failover itself, not the ones after; and the
//!   Sentinels' own announcements of a new primary are listened to, so that a replaced primary
//!   that still answers is left too ([`SentinelLink`]);
//! - a Cluster connection follows `MOVED`/`ASK` and refreshes its slot map by itself, and is
//!   rebuilt from the seed nodes when operations keep failing (a killed or frozen primary):
//!   see [`ClusterLink`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};

use super::redis_cluster::ClusterLink;
use super::redis_sentinel::SentinelLink;
use crate::primitives::error::ConfigError;

/// Where a Redis store's data lives: one server, a primary watched by Redis Sentinel, or a
/// Redis Cluster (feature `redis`). Every Redis store is built from one
/// ([`RedisRevocationStore::builder_with`](crate::guard::revocation::RedisRevocationStore::builder_with),
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
    /// Replicas that must have a write that must survive a failover (0: none waited for).
    replicas: u32,
}

#[derive(Clone)]
enum Kind {
    Standalone(Client),
    /// `node`: the data nodes' credentials, database and TLS settings (its address is unused).
    Sentinel {
        sentinels: Vec<ConnectionInfo>,
        service: String,
        node: ConnectionInfo,
    },
    Cluster {
        nodes: Vec<ConnectionInfo>,
    },
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
                replicas: 0,
                kind: Kind::Sentinel { sentinels, service: service.to_owned(), node },
            });
        }
        if let Some((scheme, rest)) = url.split_once("+cluster://") {
            let scheme = node_scheme(scheme)?;
            let (userinfo, hosts, _) = split_multi_host(rest)?;
            let nodes = hosts
                .iter()
                .map(|host| info(&format!("{scheme}://{userinfo}{host}/")))
                .collect::<Result<_, _>>()?;
            return Ok(RedisServers { replicas: 0, kind: Kind::Cluster { nodes } });
        }
        Client::open(url).map(Self::standalone).map_err(|_| INVALID_URL)
    }

    /// One server, from a client built by the application.
    pub fn standalone(client: Client) -> Self {
        RedisServers { replicas: 0, kind: Kind::Standalone(client) }
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
        Ok(RedisServers {
            replicas: 0,
            kind: Kind::Sentinel { sentinels, service: service.to_owned(), node },
        })
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
        Ok(RedisServers { replicas: 0, kind: Kind::Cluster { nodes } })
    }
}

impl RedisServers {
    /// Makes every write that must survive a failover (a revocation; a refresh family issued,
    /// rotated or revoked) wait until `replicas` replicas of its primary have it (`WAIT`),
    /// within the store's timeout; if they do not, the write fails (`Unavailable`, 503), though
    /// the primary has it. Default 0: a write is acknowledged once the primary has it, and a
    /// failover in the next moments (the replication lag: 55 µs on loopback, more under load)
    /// can lose it. `1` closes that window; with a single replica per primary it also makes
    /// writes fail while that replica is down or being replaced (use two).
    ///
    /// ```
    /// use tower_jwt_guard::RedisServers;
    ///
    /// let servers = RedisServers::from_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000/")
    ///     .unwrap()
    ///     .wait_for_replicas(1);
    /// # let _ = servers;
    /// ```
    pub fn wait_for_replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
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
    replicas: u32,
    link: Link,
    /// With `wait_for_replicas`: a connection of its own for the writes that wait, since
    /// Redis answers nothing else on a connection while its `WAIT` blocks.
    replicated: Option<RedisConnection>,
}

enum Link {
    /// Reconnects by itself to the same address.
    Standalone { conn: ConnectionManager, client: Client },
    /// The current primary's connection, forgotten when it is lost or when the Sentinels
    /// announce another primary.
    Sentinel(SentinelLink),
    /// Connected on first use; follows the cluster's topology, and is rebuilt when it keeps failing.
    Cluster(Arc<ClusterLink>),
}

impl Link {
    fn new(kind: Kind, timeout: Duration) -> Result<Self, ConfigError> {
        Ok(match kind {
            Kind::Standalone(client) => Link::Standalone {
                conn: ConnectionManager::new_lazy_with_config(client.clone(), manager_config(timeout))
                    .map_err(|_| ConfigError::Invalid("the Redis connection could not be set up"))?,
                client,
            },
            Kind::Sentinel { sentinels, service, node } => Link::Sentinel(
                SentinelLink::new(sentinels, service, node, timeout)
                    .map_err(|_| ConfigError::Invalid("the Sentinel client could not be set up"))?,
            ),
            Kind::Cluster { nodes } => Link::Cluster(
                ClusterLink::new(nodes, timeout)
                    .map_err(|_| ConfigError::Invalid("the Redis Cluster client could not be set up"))?,
            ),
        })
    }

    /// A second link to the same servers, on a connection of its own (a Sentinel link shares
    /// the watch of its Sentinels).
    fn twin(&self, timeout: Duration) -> Result<Self, ConfigError> {
        Ok(match self {
            Link::Standalone { client, conn: _ } => Link::new(Kind::Standalone(client.clone()), timeout)?,
            Link::Sentinel(link) => Link::Sentinel(
                link.twin().map_err(|_| ConfigError::Invalid("the Sentinel client could not be set up"))?,
            ),
            Link::Cluster(link) => Link::new(Kind::Cluster { nodes: link.seeds().to_vec() }, timeout)?,
        })
    }
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
        let link = Link::new(servers.kind, timeout)?;
        let replicated = match servers.replicas {
            0 => None,
            _ => Some(RedisConnection {
                shared: Arc::new(Shared {
                    timeout,
                    replicas: 0,
                    link: link.twin(timeout)?,
                    replicated: None,
                }),
            }),
        };
        Ok(RedisConnection {
            shared: Arc::new(Shared { timeout, replicas: servers.replicas, link, replicated }),
        })
    }

    /// With Sentinel, the count of the Sentinels' announcements of a new primary: a
    /// subscription made before a change is on a primary that may have been replaced.
    pub(crate) fn primary_switches(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match &self.shared.link {
            Link::Sentinel(link) => Some(link.switches()),
            Link::Standalone { .. } | Link::Cluster(_) => None,
        }
    }

    /// Runs `op` on a connection within the timeout; once more on a fresh connection if the
    /// first attempt lost its connection and `retry` allows it. With a Cluster, every failure
    /// (an error of any kind, a timeout) counts toward rebuilding the connection
    /// ([`ClusterLink`]), a success clears the count.
    pub(crate) async fn run<T, F, Fut>(&self, retry: Retry, mut op: F) -> Result<T, Unavailable>
    where
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.shared.timeout;
        let mut attempts_left = if retry == Retry::Safe { 2 } else { 1 };
        let mut fresh = false;
        loop {
            attempts_left -= 1;
            let again = fresh;
            let attempt = tokio::time::timeout_at(deadline, async {
                let conn = self.connection(again).await?;
                op(conn).await
            });
            fresh = true;
            match attempt.await {
                Ok(Ok(value)) => {
                    if let Link::Cluster(link) = &self.shared.link {
                        link.succeeded();
                    }
                    return Ok(value);
                }
                Ok(Err(err)) if connection_lost(&err) => {
                    self.forget();
                    if attempts_left == 0 {
                        return Err(Unavailable);
                    }
                    tracing::debug!(target: "tower_jwt_guard", "Redis connection lost: trying once more");
                }
                Ok(Err(_)) => {
                    // Not a lost connection; with a Cluster it may still be a confused
                    // connection (redis-rs has answered a failover with bad multi-slot results).
                    if let Link::Cluster(link) = &self.shared.link {
                        link.failed();
                    }
                    return Err(Unavailable);
                }
                Err(_elapsed) => {
                    // A primary that stopped answering (frozen, cut off) may have been replaced:
                    // with Sentinel, the next request asks the sentinels again.
                    self.forget();
                    return Err(Unavailable);
                }
            }
        }
    }

    /// Runs a write that must survive a failover, as [`run`](Self::run): then, when the servers
    /// ask for it ([`RedisServers::wait_for_replicas`]), waits on the same connection (one kept
    /// for these writes, so that a `WAIT` that blocks holds up no check) until that many
    /// replicas of the primary that holds `key` have it (`WAIT`), within the same timeout; too
    /// few is a failure.
    pub(crate) async fn run_replicated<T, F, Fut>(
        &self,
        retry: Retry,
        key: &str,
        mut op: F,
    ) -> Result<T, Unavailable>
    where
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let replicas = self.shared.replicas;
        let deadline = tokio::time::Instant::now() + self.shared.timeout;
        let writes = self.shared.replicated.as_ref().unwrap_or(self);
        writes.run(retry, |conn| {
            let mut waiter = conn.clone();
            let write = op(conn);
            async move {
                let value = write.await?;
                if replicas > 0 {
                    // `WAIT 0` would block for ever: at least 1 ms.
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now()).as_millis().max(1);
                    let acknowledged = waiter.wait_for_replicas(key, replicas, left).await?;
                    if acknowledged < i64::from(replicas) {
                        tracing::debug!(target: "tower_jwt_guard", "Redis write not acknowledged by enough replicas");
                        // Not a lost connection: not tried again (the deadline is spent).
                        return Err(RedisError::from((redis::ErrorKind::Client, "not acknowledged by enough replicas")));
                    }
                }
                Ok(value)
            }
        })
        .await
    }

    /// A connection; `fresh`: the operation is tried again after a failure (a Cluster
    /// connection being rebuilt is waited for).
    async fn connection(&self, fresh: bool) -> redis::RedisResult<Conn> {
        match &self.shared.link {
            Link::Standalone { conn, .. } => Ok(Conn::Manager(conn.clone())),
            Link::Sentinel(link) => link.connection().await.map(Conn::Primary),
            Link::Cluster(link) => link.connection(fresh).await.map(Conn::Cluster),
        }
    }

    /// After a lost connection or a timeout: a Sentinel primary is looked up again on the
    /// next attempt; a Cluster connection that keeps failing is rebuilt; one server's
    /// connection reconnects by itself.
    fn forget(&self) {
        match &self.shared.link {
            Link::Sentinel(link) => link.forget(),
            Link::Cluster(link) => link.failed(),
            Link::Standalone { .. } => {}
        }
    }

    /// A new pub/sub connection: to the server, to the current primary, or to one of the
    /// cluster's seed nodes in turn (classic PUBLISH reaches every node of a cluster).
    pub(crate) async fn pubsub(&self) -> redis::RedisResult<PubSub> {
        match &self.shared.link {
            Link::Standalone { client, .. } => client.get_async_pubsub().await,
            Link::Sentinel(link) => link.pubsub().await,
            Link::Cluster(link) => link.pubsub().await,
        }
    }
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
    /// One server's, reconnecting by itself.
    Manager(ConnectionManager),
    /// A Sentinel primary's, not reconnecting: a drop makes the Sentinels be asked again.
    Primary(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    /// `WAIT replicas timeout_ms` on the primary that holds `key` (with a Cluster, that node
    /// only: redis-rs would ask every primary); how many replicas acknowledged.
    async fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout_ms: u128,
    ) -> redis::RedisResult<i64> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout_ms.to_string());
        match self {
            Conn::Manager(conn) => wait.query_async(conn).await,
            Conn::Primary(conn) => wait.query_async(conn).await,
            Conn::Cluster(conn) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                Ok(redis::from_redis_value(conn.route_command(wait, routing).await?)?)
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Manager(conn) => conn.req_packed_command(cmd),
            Conn::Primary(conn) => conn.req_packed_command(cmd),
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
            Conn::Primary(conn) => conn.req_packed_commands(cmd, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Manager(conn) => conn.get_db(),
            Conn::Primary(conn) => conn.get_db(),
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
        let Kind::Sentinel { sentinels, service, node } = &sentinel.kind else { panic!() };
        assert!(!matches!(node.addr(), redis::ConnectionAddr::TcpTls { .. }));
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
        let Kind::Sentinel { sentinels, node, .. } = &secure.kind else { panic!() };
        let tls = |info: &ConnectionInfo| matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        assert!(tls(node) && tls(&sentinels[0]));
        let secure = RedisServers::from_url("rediss+cluster://a:1,b:2/").unwrap();
        let Kind::Cluster { nodes } = &secure.kind else { panic!() };
        assert!(nodes.iter().all(|n| matches!(n.addr(), redis::ConnectionAddr::TcpTls { .. })));
        assert!(RedisServers::from_url("http+cluster://a:1/").is_err());
        assert!(RedisServers::from_url("redis+sentinel://a:1").is_err());
    }
}
