//! The Redis Sentinel connection of one store (feature `redis`): the primary the Sentinels
//! name, left as soon as they name another.
//!
//! Why a watch: a primary the Sentinels have replaced is not always dead. Cut off from the
//! Sentinels but not from this process (a partition), or only slow to answer them, it is still
//! a primary with its own data, answering every read, until the Sentinels can reach it and
//! demote it (their `REPLICAOF` comes with a `CLIENT KILL`, which is what makes a client
//! reconnect). Reads there miss every write made on the new primary: a revocation acknowledged
//! there would not be seen by a store still reading here, nor its invalidation, which is
//! published on the new primary. That window has lasted 11 s in this crate's tests.
//!
//! So, as the Sentinel client guidelines suggest, this link listens to every Sentinel's own
//! announcements:
//! - `+switch-master` names the new primary; the leader's `+failover-state-reconf-slaves` comes
//!   earlier (once its `INFO` poll sees the promoted replica a primary) and names the old one, so
//!   that Sentinel is then asked which primary it names (`SENTINEL GET-MASTER-ADDR-BY-NAME`,
//!   the promoted replica from then on);
//! - a primary address other than the last one known bumps a counter
//!   ([`SentinelLink::switches`]): a connection made before the bump is not used again, and
//!   subscriptions move. The same address announced again by the other Sentinels changes
//!   nothing;
//! - the next connection goes to the announced address when it answers `ROLE` as a primary,
//!   else to the one the usual lookup finds (which asks the Sentinels in their configured order,
//!   and so may still hear the old address from one that has not switched yet);
//! - on every (re)subscription the Sentinel is asked which primary it names, since an
//!   announcement may have been missed: an answer other than the announced address makes the
//!   links check their primary again, but does not replace the announced address (that Sentinel
//!   may be the one that lags); a `PING` every second checks each subscription (no answer in
//!   time, or a lost connection, makes it subscribe again).
//!
//! What remains: from the promotion to the leader's announcement (its next `INFO` poll, within
//! a second), a store may still read from the old primary; writes there are lost when the
//! Sentinels demote it. `RedisServers::wait_for_replicas` makes such a write fail rather than be
//! acknowledged, once the replicas have left the old primary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt as _;
use redis::aio::{MultiplexedConnection, PubSub};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, RedisResult, Role};
use tokio::sync::watch;

use crate::primitives::abort_on_drop::AbortOnDrop;

/// The Sentinels' announcements of a new primary for a service.
const ANNOUNCEMENTS: [&str; 2] = ["+switch-master", "+failover-state-reconf-slaves"];
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often each Sentinel subscription is checked with a `PING`.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The primary's connection, made again after every announcement; shared by the clones of one
/// store's connection. [`twin`](Self::twin) makes a second link (another connection) on the
/// same watch.
pub(crate) struct SentinelLink {
    /// Locked while the primary is looked up, so that one lookup serves every waiting request.
    sentinel: tokio::sync::Mutex<SentinelClient>,
    /// The current primary's connection and the announcement count it was made under.
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    watch: Arc<Watch>,
    timeout: Duration,
}

/// The watch of one store's Sentinels, shared by its links.
struct Watch {
    sentinels: Vec<ConnectionInfo>,
    service: String,
    /// The data nodes' credentials, database and TLS settings.
    node: ConnectionInfo,
    switches: watch::Sender<u64>,
    /// The primary the Sentinels last named to the listener.
    announced: Arc<Mutex<Option<(String, u16)>>>,
    /// Stops the listening task with the last link.
    _listener: AbortOnDrop,
}

impl SentinelLink {
    /// A link to the primary named `service` by `sentinels`, and its watch. Must run inside a
    /// Tokio runtime.
    pub(crate) fn new(
        sentinels: Vec<ConnectionInfo>,
        service: String,
        node: ConnectionInfo,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let (switches, _) = watch::channel(0);
        let announced = Arc::new(Mutex::new(None));
        // The task holds the sender and the address, not the watch: it ends with the last link.
        let listener = tokio::spawn(listen(
            sentinels.clone(),
            service.clone(),
            switches.clone(),
            Arc::clone(&announced),
            timeout,
        ));
        let watch = Watch { sentinels, service, node, switches, announced, _listener: AbortOnDrop(listener) };
        Self::on(Arc::new(watch), timeout)
    }

    /// Another link (its own connection) on the same watch.
    pub(crate) fn twin(&self) -> RedisResult<Self> {
        Self::on(Arc::clone(&self.watch), self.timeout)
    }

    fn on(watch: Arc<Watch>, timeout: Duration) -> RedisResult<Self> {
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(watch.node.redis_settings().clone());
        if matches!(watch.node.addr(), ConnectionAddr::TcpTls { .. }) {
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        let sentinel = SentinelClient::build(
            watch.sentinels.clone(),
            watch.service.clone(),
            Some(node),
            SentinelServerType::Master,
        )?;
        Ok(SentinelLink {
            sentinel: tokio::sync::Mutex::new(sentinel),
            current: Mutex::new(None),
            watch,
            timeout,
        })
    }

    /// Announcements so far; a subscription made under one count is made again when it changes.
    pub(crate) fn switches(&self) -> watch::Receiver<u64> {
        self.watch.switches.subscribe()
    }

    /// The primary's connection: the current one, unless a new primary was announced since it
    /// was made; else a new one, to the announced address if it is a primary, else to the one
    /// the Sentinels name (redis-rs checks its ROLE).
    pub(crate) async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        let current = || {
            let switches = *self.watch.switches.borrow();
            lock(&self.current).as_ref().filter(|(made, _)| *made == switches).map(|(_, conn)| conn.clone())
        };
        if let Some(conn) = current() {
            return Ok(conn);
        }
        let mut sentinel = self.sentinel.lock().await;
        if let Some(conn) = current() {
            return Ok(conn);
        }
        let switches = *self.watch.switches.borrow();
        let client = self.primary_client(&mut sentinel).await?;
        // A connection that does not reconnect by itself: a ConnectionManager would reconnect
        // to the same address, which after a failover may be the old primary restarted and
        // still calling itself primary until the Sentinels demote it.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        *lock(&self.current) = Some((switches, conn.clone()));
        Ok(conn)
    }

    /// After a lost connection or a timeout: the next attempt looks the primary up again.
    pub(crate) fn forget(&self) {
        *lock(&self.current) = None;
    }

    /// A pub/sub connection to the current primary.
    pub(crate) async fn pubsub(&self) -> RedisResult<PubSub> {
        let client = self.primary_client(&mut *self.sentinel.lock().await).await?;
        client.get_async_pubsub().await
    }

    /// A client for the primary: the announced address when it answers ROLE as a primary, else
    /// the Sentinels' lookup.
    async fn primary_client(&self, sentinel: &mut SentinelClient) -> RedisResult<Client> {
        let announced = lock(&self.watch.announced).clone();
        if let Some((host, port)) = announced {
            // The data nodes' TLS settings, at the announced address.
            let addr = match self.watch.node.addr() {
                ConnectionAddr::TcpTls { insecure, tls_params, .. } => {
                    ConnectionAddr::TcpTls { host, port, insecure: *insecure, tls_params: tls_params.clone() }
                }
                _ => ConnectionAddr::Tcp(host, port),
            };
            let client = Client::open(self.watch.node.clone().set_addr(addr))?;
            // Half the time at most: an address that does not answer (a primary since killed)
            // leaves the other half to the lookup.
            if tokio::time::timeout(self.timeout / 2, is_primary(&client)).await.unwrap_or(false) {
                return Ok(client);
            }
        }
        sentinel.async_get_client().await
    }
}

/// Whether the node answers `ROLE` as a primary.
async fn is_primary(client: &Client) -> bool {
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return false };
    matches!(redis::cmd("ROLE").query_async::<Role>(&mut conn).await, Ok(Role::Primary { .. }))
}

/// Listens to every Sentinel at once until the last link is dropped (the task is aborted).
async fn listen(
    sentinels: Vec<ConnectionInfo>,
    service: String,
    switches: watch::Sender<u64>,
    announced: Arc<Mutex<Option<(String, u16)>>>,
    timeout: Duration,
) {
    let listener = Listener { service, switches, announced, timeout };
    futures_util::future::join_all(sentinels.iter().map(|sentinel| listener.listen_to(sentinel))).await;
}

/// What the listening task shares between its Sentinels.
struct Listener {
    service: String,
    switches: watch::Sender<u64>,
    /// The primary the Sentinels last named.
    announced: Arc<Mutex<Option<(String, u16)>>>,
    timeout: Duration,
}

/// How a primary's address was learnt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Learnt {
    /// From an announcement (or from the leader, asked after its announcement): the address
    /// connections go to first.
    Announced,
    /// Asked of a Sentinel on subscribing, which may not have switched yet: it only makes the
    /// links check their primary again (ROLE) when it differs from the announced one.
    Asked,
}

impl Listener {
    /// Keeps a subscription to one Sentinel's announcements, reconnecting with a capped backoff.
    async fn listen_to(&self, sentinel: &ConnectionInfo) {
        let mut delay = FIRST_BACKOFF;
        loop {
            let subscribed = tokio::time::timeout(self.timeout, async {
                let mut pubsub = Client::open(sentinel.clone())?.get_async_pubsub().await?;
                pubsub.subscribe(&ANNOUNCEMENTS[..]).await?;
                Ok::<_, redis::RedisError>(pubsub)
            })
            .await;
            if let Ok(Ok(pubsub)) = subscribed {
                // An announcement may have been missed while not subscribed: what does this
                // Sentinel name now?
                if let Some(primary) = self.ask(sentinel).await {
                    self.learn(primary, Learnt::Asked);
                }
                let started = tokio::time::Instant::now();
                let lost = self.listen_on(sentinel, pubsub).await;
                tracing::debug!(target: "tower_jwt_guard", "Sentinel announcements: {lost}, subscribing again");
                if started.elapsed() > MAX_BACKOFF + HEALTH_CHECK_INTERVAL {
                    delay = FIRST_BACKOFF;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Applies one Sentinel's announcements until its subscription is lost; says how it was lost.
    async fn listen_on(&self, sentinel: &ConnectionInfo, pubsub: PubSub) -> &'static str {
        let (sink, mut messages) = pubsub.split();
        let mut health = tokio::time::interval_at(
            tokio::time::Instant::now() + HEALTH_CHECK_INTERVAL,
            HEALTH_CHECK_INTERVAL,
        );
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut check: Option<BoxFuture<'static, bool>> = None;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return "subscription lost" };
                    let payload = message.get_payload_bytes();
                    match Announcement::parse(message.get_channel_name(), payload, &self.service) {
                        Some(Announcement::SwitchTo(host, port)) => self.learn((host, port), Learnt::Announced),
                        // The leader names the promoted replica from now on.
                        Some(Announcement::Promoted) => match self.ask(sentinel).await {
                            Some(primary) => self.learn(primary, Learnt::Announced),
                            // A failover is under way, to an address not known yet: leave the
                            // old primary all the same (requests fail closed meanwhile).
                            None => self.switched(),
                        },
                        None => {}
                    }
                }
                _ = health.tick(), if check.is_none() => {
                    let (mut sink, timeout) = (sink.clone(), self.timeout);
                    check = Some(Box::pin(async move {
                        match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                            Ok(Ok(_)) => true,
                            // An error answer (an ACL without +ping, say) is an answer.
                            Ok(Err(err)) => !(err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error()),
                            Err(_elapsed) => false,
                        }
                    }));
                }
                answered = async { check.as_mut().expect("guarded by is_some").await }, if check.is_some() => {
                    check = None;
                    if !answered {
                        return "health check failed";
                    }
                }
            }
        }
    }

    /// The primary `sentinel` names now (`SENTINEL GET-MASTER-ADDR-BY-NAME`; during a failover,
    /// the leader names the promoted replica as soon as it has its new role).
    async fn ask(&self, sentinel: &ConnectionInfo) -> Option<(String, u16)> {
        let asked = async {
            let mut conn = Client::open(sentinel.clone())?.get_multiplexed_async_connection().await?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.service)
                .query_async::<Option<(String, u16)>>(&mut conn)
                .await
        };
        tokio::time::timeout(self.timeout, asked).await.ok()?.ok()?
    }

    /// Records the primary's address; a new one is announced to the links.
    fn learn(&self, primary: (String, u16), how: Learnt) {
        let changed = {
            let mut known = lock(&self.announced);
            let changed = known.as_ref().is_some_and(|known| *known != primary);
            match how {
                Learnt::Announced => {
                    let first = known.is_none();
                    *known = Some(primary);
                    changed || first
                }
                // A Sentinel that lags must not take the links back to the old primary.
                Learnt::Asked => changed,
            }
        };
        if changed {
            self.switched();
        }
    }

    /// Connections made before are not used again; subscriptions move.
    fn switched(&self) {
        self.switches.send_modify(|count| *count += 1);
        tracing::debug!(target: "tower_jwt_guard", "Sentinel announced a new primary");
    }
}

/// A Sentinel's announcement about this service.
#[derive(Debug, PartialEq, Eq)]
enum Announcement {
    /// `+switch-master <service> <old ip> <old port> <new ip> <new port>`.
    SwitchTo(String, u16),
    /// `+failover-state-reconf-slaves master <service> <ip> <port>`: the leader's, once its
    /// `INFO` poll (every second during a failover) sees the promoted replica a primary; the
    /// address is the old primary's.
    Promoted,
}

impl Announcement {
    fn parse(channel: &str, payload: &[u8], service: &str) -> Option<Self> {
        let payload = std::str::from_utf8(payload).ok()?;
        let mut words = payload.split_ascii_whitespace();
        match channel {
            "+switch-master" => {
                (words.next()? == service).then_some(())?;
                let mut new = words.skip(2);
                let host = new.next()?.to_owned();
                let port = new.next()?.parse().ok()?;
                Some(Announcement::SwitchTo(host, port))
            }
            "+failover-state-reconf-slaves" => {
                (words.next()? == "master" && words.next()? == service).then_some(Announcement::Promoted)
            }
            _ => None,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_new_announced_address_moves_the_links_and_a_lagging_sentinel_does_not_take_them_back() {
        let (switches, count) = watch::channel(0);
        let listener = Listener {
            service: "mymaster".to_owned(),
            switches,
            announced: Arc::new(Mutex::new(None)),
            timeout: Duration::from_millis(100),
        };
        let (old, new) = (("10.0.0.1".to_owned(), 6379), ("10.0.0.2".to_owned(), 6379));
        listener.learn(old.clone(), Learnt::Asked); // at start: what the links found anyway
        assert_eq!((*count.borrow(), lock(&listener.announced).clone()), (0, None));
        listener.learn(new.clone(), Learnt::Announced);
        assert_eq!((*count.borrow(), lock(&listener.announced).clone()), (1, Some(new.clone())));
        listener.learn(new.clone(), Learnt::Announced); // the other Sentinels, the same switch
        assert_eq!(*count.borrow(), 1);
        listener.learn(old.clone(), Learnt::Asked); // a Sentinel that lags: check, stay
        assert_eq!((*count.borrow(), lock(&listener.announced).clone()), (2, Some(new.clone())));
        listener.learn(old.clone(), Learnt::Announced); // a failover back
        assert_eq!((*count.borrow(), lock(&listener.announced).clone()), (3, Some(old)));
    }

    #[test]
    fn announcements_are_read_for_this_service_only() {
        let switch = b"mymaster 127.0.0.1 6379 127.0.0.1 6380";
        assert_eq!(
            Announcement::parse("+switch-master", switch, "mymaster"),
            Some(Announcement::SwitchTo("127.0.0.1".to_owned(), 6380))
        );
        assert_eq!(Announcement::parse("+switch-master", switch, "other"), None);
        assert_eq!(Announcement::parse("+switch-master", b"mymaster 127.0.0.1 6379", "mymaster"), None);
        assert_eq!(Announcement::parse("+switch-master", b"mymaster a 1 b port", "mymaster"), None);
        let promoted = b"master mymaster 127.0.0.1 6379";
        assert_eq!(
            Announcement::parse("+failover-state-reconf-slaves", promoted, "mymaster"),
            Some(Announcement::Promoted)
        );
        assert_eq!(Announcement::parse("+failover-state-reconf-slaves", promoted, "other"), None);
        assert_eq!(Announcement::parse("+sdown", promoted, "mymaster"), None);
        assert_eq!(Announcement::parse("+switch-master", &[0xff, 0xfe], "mymaster"), None);
    }
}
