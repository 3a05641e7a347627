//! Redis Sentinel and Redis Cluster, started by the tests (feature `redis`): the stores keep
//! working across a failover, and invalidations reach every instance in a cluster.
//!
//! Each test starts its own processes on loopback ports (a primary, a replica and three
//! sentinels; three cluster nodes). Without `redis-server` the tests say "skipped"; with
//! `REQUIRE_REDIS=1` (CI) they fail.
#![cfg(feature = "redis")]

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::redis_cluster::{query, text, Cluster, DATA_NODE};
use common::redis_sentinel::{
    await_replicas, caught_up, named_primary, replica_node, sentinel_url, start_sentinels,
};
use common::redis_server::{token_key, unique_prefix, RedisProcess};
use common::trickle::{self, Instance, Report};
use common::{answers, eventually, get as http_get, post as http_post, revocations, subscribed, token};
use tower_jwt_guard::refresh::{RedisRefreshStore, RefreshError, RefreshStore, SenderConstraint};
use tower_jwt_guard::revocation::RedisRevocationStore;

/// A hang detector for a failover or a cluster to form, not a speed requirement.
const PATIENCE: Duration = Duration::from_secs(60);

async fn instance(store: &RedisRevocationStore) -> SocketAddr {
    common::revocation_instance(store).await
}

/// How the primary fails.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// Its process dies: connections are reset.
    Killed,
    /// Its process stops (SIGSTOP): connections stay open and nothing answers, so only the
    /// timeout tells; the store must then ask the sentinels again rather than wait on it.
    Frozen,
}

#[tokio::test]
async fn with_sentinel_revocations_and_refresh_rotation_survive_a_failover() {
    sentinel_failover("with_sentinel_revocations_and_refresh_rotation_survive_a_failover", Failure::Killed)
        .await;
}

#[tokio::test]
async fn with_sentinel_a_frozen_primary_is_left_behind_after_the_failover() {
    sentinel_failover("with_sentinel_a_frozen_primary_is_left_behind_after_the_failover", Failure::Frozen)
        .await;
}

async fn sentinel_failover(test: &str, failure: Failure) {
    let Some(mut primary) = RedisProcess::start(test, &DATA_NODE) else { return };
    let replica_of = primary.port.to_string();
    let replica = RedisProcess::start(test, &replica_node(&replica_of)).unwrap();
    let sentinels = start_sentinels(test, primary.port, Duration::from_secs(5));
    // The sentinels know the replica (they learn it from the primary), and it is in sync.
    await_replicas(&sentinels, 1, PATIENCE).await;
    let url = sentinel_url(&sentinels);
    let prefix = unique_prefix("sentinel");
    let (a, b) = (revocations(&url, &prefix), revocations(&url, &prefix));
    let refresh = RedisRefreshStore::builder(&url).unwrap().key_prefix(&prefix).build().unwrap();
    let (addr_a, addr_b) = (instance(&a).await, instance(&b).await);
    subscribed(&a, PATIENCE).await;
    subscribed(&b, PATIENCE).await;

    let before = token("alice");
    assert!(http_get(addr_b, "/me", &before.token).await.is(200, None));
    assert_eq!(http_post(addr_a, "/logout", &before.token).await.status, 204);
    answers(addr_b, "/me", &before.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    let login = refresh.issue("alice", &SenderConstraint::none()).await.unwrap();
    // Written to the primary, replicated asynchronously: wait until the replica has it all.
    eventually("the replica to catch up", PATIENCE, || caught_up(primary.port, replica.port)).await;

    match failure {
        Failure::Killed => primary.kill(),
        Failure::Frozen => primary.freeze(),
    }
    let killed = std::time::Instant::now();
    eventually("the sentinels to promote the replica", PATIENCE, || async {
        (named_primary(sentinels[0].port).await == Some(replica.port)).then_some(())
    })
    .await;

    // After the failover: what was revoked stays revoked, new revocations reach every instance,
    // and the refresh family rotates on the new primary.
    let promoted = killed.elapsed();
    answers(addr_a, "/me", &before.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    // A figure for the README, not an assertion: the failover itself is the sentinels' timing.
    eprintln!(
        "sentinel failover ({failure:?}): promoted after {promoted:?}, answered after {:?}",
        killed.elapsed()
    );
    let after = token("bob");
    answers(addr_a, "/me", &after.token, 200, None, PATIENCE).await;
    answers(addr_b, "/me", &after.token, 200, None, PATIENCE).await;
    subscribed(&a, PATIENCE).await;
    subscribed(&b, PATIENCE).await;
    eventually("a revocation on the new primary", PATIENCE, || async {
        (http_post(addr_b, "/logout", &after.token).await.status == 204).then_some(())
    })
    .await;
    answers(addr_a, "/me", &after.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    let rotated = eventually("a rotation on the new primary", PATIENCE, || async {
        match refresh.rotate(login.token.as_str(), &SenderConstraint::none()).await {
            Err(RefreshError::Unavailable) => None,
            other => Some(other),
        }
    })
    .await
    .expect("the family written before the failover rotates after it");
    assert!(refresh.rotate(rotated.token.as_str(), &SenderConstraint::none()).await.is_ok());
    drop((sentinels, replica));
}

/// A primary the Sentinels replaced but that lives on, cut off from them and not from the
/// service: the service logs in as a user of its own, and the user the Sentinels use (`default`)
/// is disabled on the primary and its connections cut, so the service's connections stay open
/// and new ones still succeed. It is still a primary with its own data and its own subscribers.
/// The stores leave it as soon as the Sentinels announce the new one: a token revoked on the new
/// primary is refused by an instance that had cached it as valid, and what an instance that had
/// used the old primary revokes reaches an instance started after the failover.
#[tokio::test]
async fn with_sentinel_a_replaced_primary_that_lives_on_is_left_for_the_new_one() {
    const TEST: &str = "with_sentinel_a_replaced_primary_that_lives_on_is_left_for_the_new_one";
    let Some(primary) = RedisProcess::start(TEST, &DATA_NODE) else { return };
    let replica = RedisProcess::start(TEST, &replica_node(&primary.port.to_string())).unwrap();
    for port in [primary.port, replica.port] {
        let user = ["SETUSER", "service", "on", ">service-secret", "~*", "&*", "+@all"];
        let mut conn = connect(&format!("redis://127.0.0.1:{port}/")).await;
        let _: () = redis::cmd("ACL").arg(&user[..]).query_async(&mut conn).await.unwrap();
    }
    let sentinels = start_sentinels(TEST, primary.port, Duration::from_secs(5));
    await_replicas(&sentinels, 1, PATIENCE).await;
    let url = sentinel_url(&sentinels).replacen("://", "://service:service-secret@", 1);
    let prefix = unique_prefix("sentinel-partition");
    let (a, b) = (revocations(&url, &prefix), revocations(&url, &prefix));
    let (addr_a, addr_b) = (instance(&a).await, instance(&b).await);
    subscribed(&a, PATIENCE).await;
    subscribed(&b, PATIENCE).await;
    let cached = token("alice");
    assert!(http_get(addr_b, "/me", &cached.token).await.is(200, None)); // now cached on B
    let later = token("bob");
    assert!(http_get(addr_a, "/me", &later.token).await.is(200, None)); // A has used the primary

    // Cut the primary off from the Sentinels only.
    let mut admin = connect(&format!("redis://service:service-secret@127.0.0.1:{}/", primary.port)).await;
    let _: () =
        redis::cmd("ACL").arg(&["SETUSER", "default", "off"][..]).query_async(&mut admin).await.unwrap();
    let _: redis::Value =
        redis::cmd("CLIENT").arg(&["KILL", "USER", "default"][..]).query_async(&mut admin).await.unwrap();
    eventually("the sentinels to promote the replica", PATIENCE, || async {
        (named_primary(sentinels[0].port).await == Some(replica.port)).then_some(())
    })
    .await;

    // An instance started now finds the new primary; what it revokes, B refuses.
    let c = revocations(&url, &prefix);
    let addr_c = instance(&c).await;
    subscribed(&c, PATIENCE).await;
    eventually("a revocation on the new primary", PATIENCE, || async {
        (http_post(addr_c, "/logout", &cached.token).await.status == 204).then_some(())
    })
    .await;
    answers(addr_b, "/me", &cached.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    // And what A revokes, C refuses: A writes to the new primary too.
    answers(addr_c, "/me", &later.token, 200, None, PATIENCE).await;
    eventually("a revocation from A", PATIENCE, || async {
        (http_post(addr_a, "/logout", &later.token).await.status == 204).then_some(())
    })
    .await;
    answers(addr_c, "/me", &later.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    // The old primary lived on all along, a primary still: the Sentinels could not demote it.
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut admin).await.unwrap();
    assert_eq!(role.first(), Some(&redis::Value::BulkString(b"master".to_vec())));
    drop((sentinels, replica, primary));
}

/// A connection of its own to the node at `url`.
async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Sentinels with a password of their own (`requirepass`) in front of a primary with another:
/// the URL's userinfo reaches the primary, its `sentinel_password` the Sentinels; without the
/// latter the store fails closed.
#[tokio::test]
async fn password_protected_sentinels_and_primary_are_reached_with_the_urls_credentials() {
    const TEST: &str = "password_protected_sentinels_and_primary_are_reached_with_the_urls_credentials";
    let primary_args = [&DATA_NODE[..], &["--requirepass", "node-secret"]].concat();
    let Some(primary) = RedisProcess::start(TEST, &primary_args) else { return };
    let config = RedisProcess::config_file(
        TEST,
        &format!(
            "sentinel monitor mymaster 127.0.0.1 {} 1\nsentinel auth-pass mymaster node-secret\n\
             requirepass \"sentinel secret\"\n",
            primary.port
        ),
    );
    let sentinel = RedisProcess::start(
        TEST,
        &[&config, "--sentinel", "--bind", "127.0.0.1", "--port", "{port}", "--dir", "{dir}"],
    )
    .unwrap();
    let prefix = unique_prefix("sentinel-auth");
    let sentinels = format!("127.0.0.1:{}", sentinel.port);

    let store = revocations(
        &format!("redis+sentinel://:node-secret@{sentinels}/mymaster?sentinel_password=sentinel%20secret"),
        &prefix,
    );
    let addr = instance(&store).await;
    subscribed(&store, PATIENCE).await;
    let access = token("alice");
    answers(addr, "/me", &access.token, 200, None, PATIENCE).await;
    assert_eq!(http_post(addr, "/logout", &access.token).await.status, 204);
    answers(addr, "/me", &access.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;

    // The same primary, but the Sentinels asked without their password: they refuse, and the
    // store fails closed instead of trusting anything.
    let refused = revocations(&format!("redis+sentinel://:node-secret@{sentinels}/mymaster"), &prefix);
    let refused_addr = instance(&refused).await;
    let other = token("bob");
    let answer = http_get(refused_addr, "/me", &other.token).await;
    assert!(answer.is(503, Some("AUTH_UNAVAILABLE")), "{answer:?}");
    assert!(!refused.is_subscribed());
    drop((sentinel, primary));
}

#[tokio::test]
async fn with_a_cluster_revocations_from_one_instance_are_seen_by_another() {
    const TEST: &str = "with_a_cluster_revocations_from_one_instance_are_seen_by_another";
    let args = [
        &DATA_NODE[..],
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes-{port}.conf",
            "--cluster-node-timeout",
            "2000",
        ],
    ]
    .concat();
    let Some(first) = RedisProcess::start(TEST, &args) else { return };
    let nodes = [first, RedisProcess::start(TEST, &args).unwrap(), RedisProcess::start(TEST, &args).unwrap()];
    let hosts: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&hosts)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs (package redis-tools)");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
    for node in &nodes {
        eventually("the cluster to form", PATIENCE, || async {
            text(node.port, &["CLUSTER", "INFO"]).await?.contains("cluster_state:ok").then_some(())
        })
        .await;
    }
    let url = format!("redis+cluster://{}/", hosts.join(","));
    let prefix = unique_prefix("cluster");
    let (a, b) = (revocations(&url, &prefix), revocations(&url, &prefix));
    let (addr_a, addr_b) = (instance(&a).await, instance(&b).await);
    subscribed(&a, PATIENCE).await;
    subscribed(&b, PATIENCE).await;

    // Tokens of several subjects and jtis: their keys fall in slots of every node.
    let tokens: Vec<_> = (0..6).map(|i| token(&format!("user-{i}"))).collect();
    for access in &tokens {
        answers(addr_a, "/me", &access.token, 200, None, PATIENCE).await;
        assert!(http_get(addr_b, "/me", &access.token).await.is(200, None));
        assert!(http_get(addr_b, "/me", &access.token).await.is(200, None)); // cached on B
    }
    for (i, access) in tokens.iter().enumerate() {
        let (from, to) = if i % 2 == 0 { (addr_a, addr_b) } else { (addr_b, addr_a) };
        let path = if i % 3 == 0 { "/logout-everywhere" } else { "/logout" };
        assert_eq!(http_post(from, path, &access.token).await.status, 204);
        answers(to, "/me", &access.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    }

    // Refresh families: the rotation script's keys share a slot; the grace period holds.
    let refresh = [
        RedisRefreshStore::builder(&url).unwrap().key_prefix(&prefix).build().unwrap(),
        RedisRefreshStore::builder(&url).unwrap().key_prefix(&prefix).build().unwrap(),
    ];
    let login = refresh[0].issue("alice", &SenderConstraint::none()).await.unwrap();
    let next = refresh[1].rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap();
    assert_eq!(
        refresh[0].rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap().token,
        next.token
    );
    let third = refresh[0].rotate(next.token.as_str(), &SenderConstraint::none()).await.unwrap();
    assert!(matches!(
        refresh[1].rotate(login.token.as_str(), &SenderConstraint::none()).await,
        Err(RefreshError::Reused { .. })
    ));
    assert_eq!(
        refresh[0].rotate(third.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
    let other = refresh[1].issue("alice", &SenderConstraint::none()).await.unwrap();
    assert_eq!(refresh[0].revoke_subject("alice").await.unwrap(), 1);
    assert_eq!(
        refresh[1].rotate(other.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Revoked
    );
}

/// Which cluster node the test takes away.
#[derive(Debug, Clone, Copy)]
enum Victim {
    /// The primary that holds the slot of a revocation's key.
    KeyPrimary,
    /// The node that carries the invalidation subscriptions.
    Subscriber,
}

#[tokio::test]
async fn with_a_cluster_killing_the_primary_of_a_revocation_takes_no_instance_down() {
    cluster_failover(
        "with_a_cluster_killing_the_primary_of_a_revocation_takes_no_instance_down",
        Victim::KeyPrimary,
        Failure::Killed,
    )
    .await;
}

#[tokio::test]
async fn with_a_cluster_killing_the_node_of_the_subscription_takes_no_instance_down() {
    cluster_failover(
        "with_a_cluster_killing_the_node_of_the_subscription_takes_no_instance_down",
        Victim::Subscriber,
        Failure::Killed,
    )
    .await;
}

#[tokio::test]
async fn with_a_cluster_a_frozen_primary_takes_no_instance_down() {
    cluster_failover(
        "with_a_cluster_a_frozen_primary_takes_no_instance_down",
        Victim::KeyPrimary,
        Failure::Frozen,
    )
    .await;
}

/// Six nodes (three primaries, three replicas), two instances on the first three; a revocation
/// and a refresh family written before the failover; then one node fails, and both instances
/// must answer right again: the revoked token 401, a valid one 200, the family rotates, and a
/// new revocation on one instance reaches the other.
async fn cluster_failover(test: &str, victim: Victim, failure: Failure) {
    let Some(mut cluster) = Cluster::start(test, 3, 1).await else { return };
    let url = cluster.url(3);
    let prefix = unique_prefix("cluster-failover");
    let a = Instance::start(&url, &prefix, 0).await;
    let b = Instance::start(&url, &prefix, 0).await;
    subscribed(&a.revocations, PATIENCE).await;
    subscribed(&b.revocations, PATIENCE).await;

    let before = token("alice");
    answers(b.addr, "/me", &before.token, 200, None, PATIENCE).await;
    assert_eq!(http_post(a.addr, "/logout", &before.token).await.status, 204);
    answers(b.addr, "/me", &before.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    let login = a.refresh.issue("alice", &SenderConstraint::none()).await.unwrap();
    let mut family = b
        .refresh
        .rotate(login.token.as_str(), &SenderConstraint::none())
        .await
        .unwrap()
        .token
        .as_str()
        .to_owned();

    let index = match victim {
        Victim::KeyPrimary => {
            let key = token_key(&prefix, None, &before.jti);
            cluster.primary_of(cluster.slot(&key).await).await
        }
        Victim::Subscriber => {
            let carriers = cluster.subscribed_to(&format!("{prefix}revocations")).await;
            assert!(!carriers.is_empty(), "a node carries the subscriptions");
            carriers[0]
        }
    };
    // Replication is asynchronous: what this test wrote is on the replicas before the failure.
    eventually("the replicas to catch up", PATIENCE, || async { cluster.caught_up().await.then_some(()) })
        .await;
    match failure {
        Failure::Killed => cluster.kill(index),
        Failure::Frozen => cluster.freeze(index),
    }
    let failed = Instant::now();
    let settled = cluster.settle(PATIENCE).await;

    // Both instances answer right again, each measured from the failure.
    let mut recovered = Vec::new();
    for (name, instance) in [("A", &a), ("B", &b)] {
        answers(instance.addr, "/me", &before.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
        answers(instance.addr, "/me", &token("bob").token, 200, None, PATIENCE).await;
        family = eventually("a rotation after the failover", PATIENCE, || async {
            match instance.refresh.rotate(family.as_str(), &SenderConstraint::none()).await {
                Err(RefreshError::Unavailable) => None,
                other => Some(other),
            }
        })
        .await
        .expect("the family written before the failover rotates after it")
        .token
        .as_str()
        .to_owned();
        recovered.push((name, failed.elapsed()));
    }
    // A figure for the README, not an assertion.
    eprintln!(
        "cluster {victim:?} {failure:?}: cluster settled after {settled:?}; answered right: {recovered:?}"
    );
    subscribed(&a.revocations, PATIENCE).await;
    subscribed(&b.revocations, PATIENCE).await;
    assert!(!cluster.subscribed_to(&format!("{prefix}revocations")).await.is_empty());
    let after = token("carol");
    answers(a.addr, "/me", &after.token, 200, None, PATIENCE).await;
    assert!(http_get(a.addr, "/me", &after.token).await.is(200, None)); // cached on A
    eventually("a revocation after the failover", PATIENCE, || async {
        (http_post(b.addr, "/logout", &after.token).await.status == 204).then_some(())
    })
    .await;
    answers(a.addr, "/me", &after.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
}

/// Prints what the trickle saw around each failover, and checks that no acknowledged
/// revocation was lost. `rounds`: when each primary was killed, and how long the topology took
/// to fail over (the sentinels' or the cluster's own time).
fn summarize(topology: &str, report: &Report, rounds: &[(Instant, Duration, Duration)]) {
    let mut recoveries = Vec::new();
    for (round, &(killed, failover, restarted)) in rounds.iter().enumerate() {
        let until = rounds.get(round + 1).map(|(next, ..)| *next);
        let mut line =
            format!("{topology} failover {round}: promoted after {failover:.2?}, old primary restarted after {restarted:.2?};");
        for (i, seen) in report.seen.iter().enumerate() {
            let failed: Vec<Duration> = seen
                .failures
                .iter()
                .filter(|at| **at >= killed && until.is_none_or(|next| **at < next))
                .map(|at| *at - killed)
                .collect();
            let last = failed.last().copied().unwrap_or_default();
            recoveries.push(last);
            line += &format!(" instance {i}: {} failed closed at {failed:.2?};", failed.len());
        }
        eprintln!("{line}");
    }
    recoveries.sort_unstable();
    let before_first = |seen: &trickle::Seen| seen.failures.iter().filter(|at| **at < rounds[0].0).count();
    eprintln!(
        "{topology}: last failure after the kill: p50 {:.2?}, max {:.2?}; failed closed before any kill: {} and {}; \
         answered {} and {}; {} logins, {} rotations, {} revocations; wrong answers {:?}",
        recoveries.get(recoveries.len() / 2).copied().unwrap_or_default(),
        recoveries.last().copied().unwrap_or_default(),
        before_first(&report.seen[0]),
        before_first(&report.seen[1]),
        report.seen[0].answered,
        report.seen[1].answered,
        report.logins,
        report.rotations,
        report.revoked,
        report.wrong,
    );
    let lost: Vec<_> = report
        .lost_revocations
        .iter()
        .map(|(acknowledged, seen)| {
            let (round, (killed, ..)) = rounds
                .iter()
                .enumerate()
                .rev()
                .find(|(_, (killed, ..))| killed <= seen)
                .unwrap_or((0, &rounds[0]));
            format!(
                "acknowledged {:?} and answered 200 {:?} after kill {round}",
                acknowledged.checked_duration_since(*killed).map_or_else(
                    || format!("{:.3?} before", killed.duration_since(*acknowledged)),
                    |after| format!("{after:.3?} after")
                ),
                seen.duration_since(*killed)
            )
        })
        .collect();
    assert!(lost.is_empty(), "revocations lost: {lost:?}");
    assert!(report.revoked > 0 && report.rotations > 0, "the trickle ran: {report:?}");
}

/// Five primaries really killed in a row (each restarted as a replica before the next), under a
/// trickle of logins, refreshes, revocations and checks from two instances. Two replicas per
/// primary, and every revocation and rotation waits for one of them (`wait_for_replicas(1)`):
/// an acknowledged revocation is on a replica when its primary dies.
#[tokio::test]
async fn with_a_cluster_five_failovers_in_a_row_under_traffic_lose_no_revocation() {
    const TEST: &str = "with_a_cluster_five_failovers_in_a_row_under_traffic_lose_no_revocation";
    let Some(mut cluster) = Cluster::start(TEST, 3, 2).await else { return };
    let url = cluster.url(3);
    let prefix = unique_prefix("cluster-loop");
    let instances = [Instance::start(&url, &prefix, 1).await, Instance::start(&url, &prefix, 1).await];
    subscribed(&instances[0].revocations, PATIENCE).await;
    subscribed(&instances[1].revocations, PATIENCE).await;
    let report = Arc::new(Mutex::new(Report::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(trickle::run(instances.clone(), Arc::clone(&report), Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut rounds = Vec::new();
    for round in 0..5 {
        let primaries = cluster.primaries().await;
        let victim = primaries[round % primaries.len()];
        cluster.kill(victim);
        let killed = Instant::now();
        let failover = cluster.settle(PATIENCE).await;
        // Every outage ends (the hang detector fails the test otherwise).
        trickle::recovered(&report, killed, PATIENCE).await;
        rounds.push((killed, failover, killed.elapsed()));
        cluster.restart(victim);
        cluster.settle(PATIENCE).await;
    }
    let end = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    trickle::recovered(&report, end, PATIENCE).await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    summarize("cluster", &report.lock().unwrap(), &rounds);
}

/// The same loop with Sentinel: a primary and two replicas, three sentinels; five primaries
/// really killed in a row, each restarted (the sentinels make it a replica of the new primary);
/// writes wait for one replica.
#[tokio::test]
async fn with_sentinel_five_failovers_in_a_row_under_traffic_lose_no_revocation() {
    const TEST: &str = "with_sentinel_five_failovers_in_a_row_under_traffic_lose_no_revocation";
    /// The sentinels' `failover-timeout`: they start no new failover of the same primary within
    /// twice that time of the last one.
    const FAILOVER_TIMEOUT: Duration = Duration::from_secs(2);
    let Some(first) = RedisProcess::start(TEST, &DATA_NODE) else { return };
    let first_port = first.port.to_string();
    let replica_args = replica_node(&first_port);
    let mut data = [
        first,
        RedisProcess::start(TEST, &replica_args).unwrap(),
        RedisProcess::start(TEST, &replica_args).unwrap(),
    ];
    let sentinels = start_sentinels(TEST, data[0].port, FAILOVER_TIMEOUT);
    let primary = || named_primary(sentinels[0].port);
    let in_sync = |port: u16| async move {
        let info = text(port, &["INFO", "replication"]).await?;
        (info.contains("role:slave") && info.contains("master_link_status:up")).then_some(())
    };
    await_replicas(&sentinels, 2, PATIENCE).await;
    eventually("the replicas to be in sync", PATIENCE, || in_sync(data[1].port)).await;
    eventually("the replicas to be in sync", PATIENCE, || in_sync(data[2].port)).await;
    let url = sentinel_url(&sentinels);
    let prefix = unique_prefix("sentinel-loop");
    let instances = [Instance::start(&url, &prefix, 1).await, Instance::start(&url, &prefix, 1).await];
    subscribed(&instances[0].revocations, PATIENCE).await;
    subscribed(&instances[1].revocations, PATIENCE).await;
    let report = Arc::new(Mutex::new(Report::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(trickle::run(instances.clone(), Arc::clone(&report), Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut rounds: Vec<(Instant, Duration, Duration)> = Vec::new();
    for _ in 0..5 {
        if let Some((previous, ..)) = rounds.last() {
            tokio::time::sleep_until((*previous + FAILOVER_TIMEOUT * 2 + Duration::from_millis(200)).into())
                .await;
        }
        let old = primary().await.expect("the sentinels name the primary");
        let victim = data.iter().position(|node| node.port == old).expect("one of the data nodes");
        for replica in data.iter().filter(|node| node.port != old) {
            eventually("the replicas to be in sync", PATIENCE, || in_sync(replica.port)).await;
        }
        data[victim].kill();
        let killed = Instant::now();
        eventually("the sentinels to promote a replica", PATIENCE, || async {
            let promoted = primary().await.filter(|port| *port != old)?;
            let info = text(promoted, &["INFO", "replication"]).await?;
            info.contains("role:master").then_some(())
        })
        .await;
        let failover = killed.elapsed();
        trickle::recovered(&report, killed, PATIENCE).await;
        rounds.push((killed, failover, killed.elapsed()));
        // As an operator restarts a memory-only primary: as a replica of the new one (restarted
        // as a primary, it would come back empty, until the sentinels demote it).
        let promoted = primary().await.expect("the sentinels name the primary");
        data[victim].restart_as_replica_of(promoted);
        eventually("the old primary to follow the new one", PATIENCE, || in_sync(data[victim].port)).await;
        eprintln!("sentinel: the old primary follows the new one {:.2?} after the kill", killed.elapsed());
    }
    let end = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    trickle::recovered(&report, end, PATIENCE).await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    summarize("sentinel", &report.lock().unwrap(), &rounds);
    drop(sentinels);
}

/// `wait_for_replicas(1)`: a revocation or a refresh write is acknowledged only once a replica
/// has it; with the replica frozen, it fails closed (and succeeds again once the replica is back).
#[tokio::test]
async fn with_wait_for_replicas_a_write_no_replica_has_fails_closed() {
    const TEST: &str = "with_wait_for_replicas_a_write_no_replica_has_fails_closed";
    let Some(primary) = RedisProcess::start(TEST, &DATA_NODE) else { return };
    let primary_port = primary.port.to_string();
    let replica = RedisProcess::start(TEST, &replica_node(&primary_port)).unwrap();
    eventually("the replica to be in sync", PATIENCE, || async {
        text(replica.port, &["INFO", "replication"]).await?.contains("master_link_status:up").then_some(())
    })
    .await;
    let url = format!("redis://127.0.0.1:{}/", primary.port);
    let prefix = unique_prefix("wait");
    // The window without `WAIT`: how long a write takes to be acknowledged by the replica (a
    // figure for the README, not an assertion).
    // No response timeout of redis-rs's own: `WAIT` answers within its own (10 s), on a
    // loaded machine later than redis-rs's default.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let mut lags = Vec::new();
    for i in 0..200 {
        let _: () =
            redis::cmd("SET").arg(format!("{prefix}lag")).arg(i).query_async(&mut conn).await.unwrap();
        let started = Instant::now();
        let acknowledged: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query_async(&mut conn).await.unwrap();
        lags.push(started.elapsed());
        assert_eq!(acknowledged, 1);
    }
    lags.sort_unstable();
    eprintln!(
        "replication acknowledged after: p50 {:?}, p99 {:?}, max {:?}",
        lags[100], lags[198], lags[199]
    );
    let a = Instance::start(&url, &prefix, 1).await;
    subscribed(&a.revocations, PATIENCE).await;

    let first = token("alice");
    answers(a.addr, "/me", &first.token, 200, None, PATIENCE).await;
    assert_eq!(http_post(a.addr, "/logout", &first.token).await.status, 204);
    // Acknowledged: the replica has it already.
    let key = token_key(&prefix, None, &first.jti);
    assert!(matches!(query(replica.port, &["EXISTS", &key]).await, Ok(redis::Value::Int(1))));
    let login = a.refresh.issue("alice", &SenderConstraint::none()).await.unwrap();

    replica.freeze();
    let second = token("bob");
    answers(a.addr, "/me", &second.token, 200, None, PATIENCE).await;
    assert_eq!(http_post(a.addr, "/logout", &second.token).await.status, 503, "no replica has it");
    assert_eq!(
        a.refresh.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Unavailable
    );
    assert_eq!(
        a.refresh.issue("bob", &SenderConstraint::none()).await.unwrap_err(),
        RefreshError::Unavailable
    );
    // A write waiting for its replica holds up no check (it waits on a connection of its own).
    let (addr, revoking) = (a.addr, token("eve").token);
    let waiting = tokio::spawn(async move { http_post(addr, "/logout", &revoking).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(http_get(a.addr, "/me", &token("dave").token).await.is(200, None));
    assert!(!waiting.is_finished(), "the check was answered while the write still waited");
    assert_eq!(waiting.await.unwrap().status, 503);

    replica.thaw();
    let third = token("carol");
    answers(a.addr, "/me", &third.token, 200, None, PATIENCE).await;
    eventually("a revocation once the replica is back", PATIENCE, || async {
        (http_post(a.addr, "/logout", &third.token).await.status == 204).then_some(())
    })
    .await;
    answers(a.addr, "/me", &third.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    // The revocation that failed closed was written on the primary all the same.
    answers(a.addr, "/me", &second.token, 401, Some("TOKEN_REVOKED"), PATIENCE).await;
    // The rotation that was refused went through on the primary: within the grace period the
    // same token gets its successor now.
    assert!(a.refresh.rotate(login.token.as_str(), &SenderConstraint::none()).await.is_ok());
}
