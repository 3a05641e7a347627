//! The issuing side's throttle on a real `redis-server` (feature `redis`), as several instances
//! of a service use it: one budget per key, whatever instance an attempt reaches; a TOTP step
//! accepted once; fail closed when Redis is gone; and the same on a Redis Cluster.
//!
//! (The throttle in a running token endpoint, over HTTP: tests/full_flow.rs.)
#![cfg(feature = "redis")]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::redis_server::{unique_prefix, Redis, RedisProcess};
use futures_util::future::join_all;
use tower_jwt_guard::throttle::{
    RedisThrottleStore, Throttle, ThrottleError, ThrottleKey, ThrottlePolicy, ThrottleStore, TotpSteps,
};

fn store(url: &str, prefix: &str) -> Arc<dyn ThrottleStore> {
    Arc::new(RedisThrottleStore::builder(url).unwrap().key_prefix(prefix).build().unwrap())
}

/// Two instances, each with its own connection: `login` throttles of both.
fn two_instances(url: &str, prefix: &str, policy: ThrottlePolicy) -> [Throttle; 2] {
    [Throttle::new("login", policy, store(url, prefix)), Throttle::new("login", policy, store(url, prefix))]
}

#[tokio::test]
async fn thirty_concurrent_attempts_on_two_instances_reserve_five() {
    let Some(redis) = Redis::for_test("thirty_concurrent_attempts_on_two_instances_reserve_five") else {
        return;
    };
    let instances = two_instances(&redis.url(), &unique_prefix("burst"), ThrottlePolicy::default());
    let keys = [ThrottleKey::account("alice"), ThrottleKey::network("2001:db8:5::1".parse().unwrap())];
    let attempts = join_all((0..30).map(|i| instances[i % 2].reserve(&keys))).await;
    let (reserved, refused): (Vec<_>, Vec<_>) = attempts.into_iter().partition(Result::is_ok);
    assert_eq!((reserved.len(), refused.len()), (5, 25));
    for refusal in refused {
        let wait = refusal.unwrap_err().retry_after().unwrap();
        assert!(wait > Duration::from_secs(14 * 60) && wait <= Duration::from_secs(15 * 60), "{wait:?}");
    }
    // Another address of the same /64, or the same account from elsewhere: locked as well.
    let same_64 = ThrottleKey::network("2001:db8:5::ffff".parse().unwrap());
    assert!(matches!(instances[1].reserve(&[same_64]).await, Err(ThrottleError::Limited { .. })));
    let elsewhere = [ThrottleKey::account("alice"), ThrottleKey::network("198.51.100.1".parse().unwrap())];
    assert!(instances[0].reserve(&elsewhere).await.is_err());
    // ... and the refusal left nothing counted under the free key: it still has 5.
    let free = ThrottleKey::network("198.51.100.1".parse().unwrap());
    for _ in 0..5 {
        instances[1].reserve(std::slice::from_ref(&free)).await.unwrap().fail();
    }
    assert!(instances[0].reserve(&[free]).await.is_err());

    // A success gives its attempt back, on any instance.
    let mut reserved = reserved.into_iter().map(Result::unwrap);
    reserved.next().unwrap().release().await.unwrap();
    let again = instances[1].reserve(&keys).await.unwrap();
    assert!(instances[0].reserve(&keys).await.is_err());
    again.fail();
}

#[tokio::test]
async fn a_window_frees_its_oldest_attempt_first() {
    let Some(redis) = Redis::for_test("a_window_frees_its_oldest_attempt_first") else { return };
    let policy = ThrottlePolicy::new(2, Duration::from_secs(4));
    let [a, b] = two_instances(&redis.url(), &unique_prefix("window"), policy);
    let key = [ThrottleKey::account("bob")];
    a.reserve(&key).await.unwrap().fail();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    b.reserve(&key).await.unwrap().fail();
    // The wait is the oldest attempt's: less than the 1.9 s it has left, not the newest's 4 s.
    let refused = a.reserve(&key).await.unwrap_err();
    assert!(refused.retry_after().unwrap() <= Duration::from_millis(1900), "{refused:?}");
    assert!(refused.retry_after_secs().unwrap() <= 2);
    // Once the first has left the window, one slot is free (not two).
    tokio::time::sleep(refused.retry_after().unwrap() + Duration::from_millis(50)).await;
    b.reserve(&key).await.unwrap().fail();
    assert!(a.reserve(&key).await.is_err());
}

#[tokio::test]
async fn a_totp_step_is_accepted_once_across_instances() {
    let Some(redis) = Redis::for_test("a_totp_step_is_accepted_once_across_instances") else { return };
    let prefix = unique_prefix("totp");
    let steps = [TotpSteps::new(store(&redis.url(), &prefix)), TotpSteps::new(store(&redis.url(), &prefix))];
    let alice = ThrottleKey::account("alice");
    // The same code at once on both instances, ten times each: one passes.
    let answers = join_all((0..20).map(|i| steps[i % 2].accept(&alice, 59_000_000))).await;
    assert_eq!(answers.iter().filter(|a| matches!(a, Ok(true))).count(), 1);
    assert!(answers.iter().all(Result::is_ok));
    assert!(!steps[1].accept(&alice, 58_999_999).await.unwrap());
    assert!(steps[1].accept(&alice, 59_000_001).await.unwrap());
    assert!(steps[0].accept(&ThrottleKey::account("bob"), 59_000_000).await.unwrap());
}

#[tokio::test]
async fn without_redis_nothing_is_reserved_or_accepted() {
    let Some(mut server) = Redis::local_for_test("without_redis_nothing_is_reserved_or_accepted") else {
        return;
    };
    let store = Arc::new(
        RedisThrottleStore::builder(&server.url())
            .unwrap()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let throttle = Throttle::new("login", ThrottlePolicy::default(), store.clone());
    let steps = TotpSteps::new(store);
    let alice = ThrottleKey::account("alice");
    throttle.reserve(std::slice::from_ref(&alice)).await.unwrap().release().await.unwrap();
    server.stop();
    assert_eq!(throttle.reserve(std::slice::from_ref(&alice)).await.unwrap_err(), ThrottleError::Unavailable);
    assert_eq!(steps.accept(&alice, 1).await.unwrap_err(), ThrottleError::Unavailable);
    server.restart();
    common::eventually("the store to reconnect", Duration::from_secs(20), || async {
        throttle.reserve(std::slice::from_ref(&alice)).await.ok()
    })
    .await
    .release()
    .await
    .unwrap();
}

/// A data node on `{port}`, in memory only, in a cluster.
const CLUSTER_NODE: [&str; 16] = [
    "--bind",
    "127.0.0.1",
    "--port",
    "{port}",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "{dir}",
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes-{port}.conf",
    "--cluster-node-timeout",
    "2000",
];

/// On a Redis Cluster: the accounts' and networks' keys fall in slots of every node, and each
/// script touches one key, so every topology gives the same answers.
#[tokio::test]
async fn on_a_cluster_the_budgets_and_steps_hold() {
    const TEST: &str = "on_a_cluster_the_budgets_and_steps_hold";
    let Some(first) = RedisProcess::start(TEST, &CLUSTER_NODE) else { return };
    let nodes = [
        first,
        RedisProcess::start(TEST, &CLUSTER_NODE).unwrap(),
        RedisProcess::start(TEST, &CLUSTER_NODE).unwrap(),
    ];
    let hosts: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&hosts)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs (package redis-tools)");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
    let url = format!("redis+cluster://{}/", hosts.join(","));
    let prefix = unique_prefix("cluster");
    let [a, b] = two_instances(&url, &prefix, ThrottlePolicy::new(3, Duration::from_secs(60)));
    // The cluster may still be settling its slots: wait for a first answer.
    common::eventually("the cluster to answer", Duration::from_secs(60), || async {
        a.reserve(&[ThrottleKey::account("probe")]).await.ok()
    })
    .await
    .release()
    .await
    .unwrap();

    for user in 0..12 {
        let keys = [
            ThrottleKey::account(&format!("user-{user}")),
            ThrottleKey::network(format!("2001:db8:{user:x}::1").parse().unwrap()),
        ];
        let attempts = join_all((0..8).map(|i| [&a, &b][i % 2].reserve(&keys))).await;
        assert_eq!(attempts.iter().filter(|a| a.is_ok()).count(), 3, "user-{user}");
    }
    let steps = [TotpSteps::new(store(&url, &prefix)), TotpSteps::new(store(&url, &prefix))];
    for user in 0..6 {
        let account = ThrottleKey::account(&format!("user-{user}"));
        let answers = join_all((0..6).map(|i| steps[i % 2].accept(&account, 42))).await;
        assert_eq!(answers.iter().filter(|a| matches!(a, Ok(true))).count(), 1, "user-{user}");
    }
}
