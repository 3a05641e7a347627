//! Revocations seen by every instance (feature `redis`): four instances of a service (four
//! layers, each with its own `RedisRevocationStore`, each on its own loopback HTTP server) share
//! one real `redis-server`. A token revoked on one is refused by the other three, through the
//! store's invalidation message: the local caches' TTL is an hour here, so nothing else could
//! drop their cached "not revoked" answers within the test.
//!
//! The figures of the README (the time from `revoke_*` on one instance to refusal on the other
//! three, p50 and p99 over 1,000 revocations; what clients see during a Sentinel failover) come
//! from the `#[ignore]`d tests, which print them and assert no timing:
//! `cargo test --all-features --test propagation -- --ignored --nocapture --test-threads 1`.
//!
//! Without `redis-server` the tests say "skipped"; with `REQUIRE_REDIS=1` (CI) they fail.
#![cfg(feature = "redis")]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::redis_cluster::DATA_NODE;
use common::redis_sentinel::{
    await_replicas, caught_up, named_primary, replica_node, sentinel_url, start_sentinels,
};
use common::redis_server::{unique_prefix, Redis, RedisProcess};
use common::{answers, eventually, get, now, subscribed, token, Answer};
use tower_jwt_guard::issue::MintedToken;
use tower_jwt_guard::revocation::{RedisRevocationStore, RevocationError, RevocationStore};

const INSTANCES: usize = 4;
/// A hang detector (a server to start, a subscription to come up), not a speed requirement.
const PATIENCE: Duration = Duration::from_secs(60);

/// What is revoked.
#[derive(Debug, Clone, Copy)]
enum Revoke {
    /// The token (`revoke_token`, by its `jti`).
    Token,
    /// Every token of its subject issued so far (`revoke_subject`).
    Subject,
}

impl Revoke {
    async fn on(
        self,
        store: &RedisRevocationStore,
        minted: &MintedToken,
        subject: &str,
    ) -> Result<(), RevocationError> {
        match self {
            Revoke::Token => store.revoke_token(None, &minted.jti, minted.expires_at).await,
            Revoke::Subject => store.revoke_subject(None, subject, now()).await,
        }
    }
}

/// Four instances on `url`, keys under `prefix`, each subscribed to the invalidations.
async fn fleet(url: &str, prefix: &str) -> (Vec<RedisRevocationStore>, Vec<SocketAddr>) {
    let mut stores = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..INSTANCES {
        let store = RedisRevocationStore::builder(url)
            .unwrap()
            .key_prefix(prefix)
            .timeout(Duration::from_millis(500))
            // Only the invalidation message can drop a cached answer within a test.
            .local_cache_ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        addrs.push(common::revocation_instance(&store).await);
        stores.push(store);
    }
    for store in &stores {
        subscribed(store, PATIENCE).await;
    }
    (stores, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_refused_by_the_other_three() {
    const TEST: &str = "a_revocation_on_one_instance_is_refused_by_the_other_three";
    let Some(redis) = Redis::for_test(TEST) else { return };
    let (stores, addrs) = fleet(&redis.url(), &unique_prefix("propagation")).await;
    for (round, kind) in
        [Revoke::Token, Revoke::Subject, Revoke::Token, Revoke::Subject].into_iter().enumerate()
    {
        let subject = format!("user-{round}");
        let minted = token(&subject);
        // Every instance now holds "not revoked" in its local cache.
        for addr in &addrs {
            assert!(get(*addr, "/me", &minted.token).await.is(200, None));
            assert!(get(*addr, "/me", &minted.token).await.is(200, None));
        }
        let from = round % INSTANCES;
        kind.on(&stores[from], &minted, &subject).await.unwrap();
        // The instance that revoked, at once; the others once its message is in (a generous
        // bound, far below the local caches' TTL of an hour).
        assert!(get(addrs[from], "/me", &minted.token).await.is(401, Some("TOKEN_REVOKED")), "{kind:?}");
        for addr in &addrs {
            answers(*addr, "/me", &minted.token, 401, Some("TOKEN_REVOKED"), Duration::from_secs(10)).await;
        }
    }
}

/// One request with a kept-alive client: its status and the JSON body's `code`.
async fn ask(client: &reqwest::Client, addr: SocketAddr, token: &str) -> Answer {
    match client.get(format!("http://{addr}/me")).bearer_auth(token).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
            Answer { status, code: body.get("code").and_then(|c| c.as_str()).map(str::to_owned) }
        }
        Err(_) => Answer { status: 0, code: None },
    }
}

/// What a client asking one instance over and over saw until the token was refused as revoked.
#[derive(Debug, Default, Clone, Copy)]
struct Watched {
    /// When it was first refused as revoked (`None`: not within the limit).
    refused_at: Option<Instant>,
    /// 503s (the store unreachable: failed closed) seen meanwhile.
    unavailable: u32,
    /// 200s seen after `acknowledged` was set: the token still let through after its
    /// revocation was acknowledged to the caller, before the invalidation arrived (the window
    /// that propagation measures).
    accepted_after_ack: u32,
}

/// Asks `addr` with `token` until it is refused as revoked (at most `limit`).
async fn watch(
    client: reqwest::Client,
    addr: SocketAddr,
    token: String,
    acknowledged: Arc<AtomicBool>,
    limit: Duration,
) -> Watched {
    let deadline = Instant::now() + limit;
    let mut watched = Watched::default();
    while Instant::now() < deadline {
        let answer = ask(&client, addr, &token).await;
        if answer.is(401, Some("TOKEN_REVOKED")) {
            watched.refused_at = Some(Instant::now());
            break;
        }
        if answer.status == 503 {
            watched.unavailable += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        } else if answer.status == 200 && acknowledged.load(Ordering::SeqCst) {
            watched.accepted_after_ack += 1;
        }
    }
    watched
}

/// The `p`-th percentile (nearest rank) of sorted `values`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mut delays: Vec<Duration>) -> String {
    delays.sort();
    format!(
        "n {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        delays.len(),
        percentile(&delays, 50.0).as_secs_f64() * 1e3,
        percentile(&delays, 99.0).as_secs_f64() * 1e3,
        delays.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    )
}

/// One revocation: warm every instance's local cache, revoke on `from` (retried while Redis
/// refuses), watch the other three until they refuse. Returns when it started, the time from
/// the first attempt to the acknowledgement and to each refusal, with what the watchers saw,
/// and the attempts it took.
async fn one_revocation(
    stores: &[RedisRevocationStore],
    addrs: &[SocketAddr],
    clients: &[reqwest::Client],
    kind: Revoke,
    round: usize,
    limit: Duration,
) -> Revocation {
    let subject = format!("{kind:?}-{round}");
    let minted = token(&subject);
    for (client, addr) in clients.iter().zip(addrs) {
        let _ = ask(client, *addr, &minted.token).await;
    }
    let from = round % INSTANCES;
    let acknowledged = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let watchers: Vec<_> = (0..INSTANCES)
        .filter(|i| *i != from)
        .map(|i| {
            let watched =
                watch(clients[i].clone(), addrs[i], minted.token.clone(), Arc::clone(&acknowledged), limit);
            tokio::spawn(watched)
        })
        .collect();
    let mut attempts = 1;
    while kind.on(&stores[from], &minted, &subject).await.is_err() {
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acknowledged.store(true, Ordering::SeqCst);
    let acknowledged_after = started.elapsed();
    let mut seen = Vec::new();
    for watcher in watchers {
        let watched = watcher.await.unwrap();
        seen.push((watched.refused_at.map(|at| at.saturating_duration_since(started)), watched));
    }
    Revocation { started, acknowledged_after, seen, attempts }
}

/// What [`one_revocation`] saw.
struct Revocation {
    started: Instant,
    acknowledged_after: Duration,
    /// Per watching instance: the time to its refusal, and what it saw.
    seen: Vec<(Option<Duration>, Watched)>,
    attempts: u32,
}

/// The README's propagation figures: 1,000 revocations by `jti` and 1,000 by subject, each
/// from one of four instances (in turn), timed from the `revoke_*` call to the refusal by each
/// of the other three (a client asking each of them over and over on a kept-alive connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints the propagation figures of the README; run alone (see the file's docs)"]
async fn propagation_figures() {
    const TEST: &str = "propagation_figures";
    const ROUNDS: usize = 1000;
    let Some(redis) = Redis::for_test(TEST) else { return };
    let (stores, addrs) = fleet(&redis.url(), &unique_prefix("propagation")).await;
    let clients: Vec<reqwest::Client> = (0..INSTANCES).map(|_| reqwest::Client::new()).collect();
    for kind in [Revoke::Token, Revoke::Subject] {
        let mut delays = Vec::with_capacity(ROUNDS * (INSTANCES - 1));
        let mut acknowledged = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let revocation = one_revocation(&stores, &addrs, &clients, kind, round, PATIENCE).await;
            assert_eq!(revocation.attempts, 1, "Redis refused a revocation");
            acknowledged.push(revocation.acknowledged_after);
            for (delay, watched) in revocation.seen {
                assert_eq!(watched.unavailable, 0, "a 503 with Redis up");
                delays.push(delay.expect("refused within the patience"));
            }
        }
        println!("propagation ({kind:?}, {INSTANCES} instances, one redis-server): {}", summary(delays));
        println!("  of which the revoke call until acknowledged: {}", summary(acknowledged));
    }
}

/// A primary, its replica and three sentinels (down after 1 s), as tests/redis_topologies.rs
/// starts them; the primary killed mid-run. Revocations go on one after another (retried while
/// refused), and a client per instance asks with a valid token every 10 ms: what each saw is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints what clients see during a Sentinel failover; run alone (see the file's docs)"]
async fn propagation_during_a_sentinel_failover() {
    const TEST: &str = "propagation_during_a_sentinel_failover";
    let Some(mut primary) = RedisProcess::start(TEST, &DATA_NODE) else { return };
    let replica_of = primary.port.to_string();
    let replica = RedisProcess::start(TEST, &replica_node(&replica_of)).unwrap();
    let sentinels = start_sentinels(TEST, primary.port, Duration::from_secs(5));
    await_replicas(&sentinels, 1, PATIENCE).await;
    let url = sentinel_url(&sentinels);
    let (stores, addrs) = fleet(&url, &unique_prefix("propagation-failover")).await;
    let clients: Vec<reqwest::Client> = (0..INSTANCES).map(|_| reqwest::Client::new()).collect();

    // A client per instance with a valid token, every 10 ms: the answers, with their times.
    let stop = Arc::new(AtomicBool::new(false));
    let valid = token("steady").token;
    let steady: Vec<_> = (0..INSTANCES)
        .map(|i| {
            let (client, addr, valid, stop) =
                (clients[i].clone(), addrs[i], valid.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let answer = ask(&client, addr, &valid).await;
                    seen.push((Instant::now(), answer.status));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                seen
            })
        })
        .collect();
    // When the sentinels name the replica as the primary.
    let promoted_at = Arc::new(Mutex::new(None::<Instant>));
    let promotion = {
        let (port, promoted_at, replica_port) = (sentinels[0].port, Arc::clone(&promoted_at), replica.port);
        tokio::spawn(async move {
            loop {
                if named_primary(port).await == Some(replica_port) {
                    *promoted_at.lock().unwrap() = Some(Instant::now());
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Revocations one after another; the primary killed after two seconds of them (once the
    // replica has caught up), the run ends 15 s after the kill.
    let run_started = Instant::now();
    let mut killed_at = None::<Instant>;
    let mut revocations = Vec::new();
    let mut round = 0;
    loop {
        if killed_at.is_none() && run_started.elapsed() > Duration::from_secs(2) {
            eventually("the replica to catch up", PATIENCE, || caught_up(primary.port, replica.port)).await;
            primary.kill();
            killed_at = Some(Instant::now());
        }
        if killed_at.is_some_and(|at| at.elapsed() > Duration::from_secs(15)) {
            break;
        }
        let kind = if round % 2 == 0 { Revoke::Token } else { Revoke::Subject };
        let revocation =
            one_revocation(&stores, &addrs, &clients, kind, round, Duration::from_secs(20)).await;
        revocations.push(revocation);
        round += 1;
    }
    stop.store(true, Ordering::SeqCst);
    promotion.abort();
    let killed_at = killed_at.unwrap();
    let since_kill = |at: Instant| at.saturating_duration_since(killed_at).as_secs_f64();
    let promoted = promoted_at.lock().unwrap().map(since_kill);
    println!("sentinel failover (primary killed, down-after-milliseconds 1000): promoted {promoted:?} s after the kill");
    for (i, task) in steady.into_iter().enumerate() {
        let seen = task.await.unwrap();
        let refused: Vec<_> = seen.iter().filter(|(_, status)| *status != 200).collect();
        let statuses: std::collections::BTreeSet<u16> = refused.iter().map(|(_, s)| *s).collect();
        println!(
            "instance {i}: valid token asked {} times, {} not 200 (statuses {statuses:?}), from {:?} s to {:?} s after the kill",
            seen.len(),
            refused.len(),
            refused.first().map(|(at, _)| since_kill(*at)),
            refused.last().map(|(at, _)| since_kill(*at)),
        );
    }
    // The revocations started before the kill, during the outage (until the last one that
    // needed more than one attempt, or saw a 503, ended), and after.
    let troubled =
        |r: &&Revocation| r.attempts > 1 || r.seen.iter().any(|(_, watched)| watched.unavailable > 0);
    let outage_end = revocations
        .iter()
        .filter(troubled)
        .map(|r| r.started + r.seen.iter().filter_map(|(d, _)| *d).max().unwrap_or_default())
        .max()
        .unwrap_or(killed_at);
    let mut phases = ["before the kill", "during the failover", "after"].map(Phase::new);
    for Revocation { started, seen, attempts, .. } in &revocations {
        let phase = if *started < killed_at {
            0
        } else if *started <= outage_end {
            1
        } else {
            2
        };
        let phase = &mut phases[phase];
        phase.failed_attempts += attempts - 1;
        for (delay, watched) in seen {
            phase.unavailable += watched.unavailable;
            phase.accepted += watched.accepted_after_ack;
            match delay {
                Some(delay) => phase.delays.push(*delay),
                None => phase.lost += 1,
            }
        }
    }
    println!(
        "outage (revocations retried or refused with 503) ended {:.2} s after the kill",
        since_kill(outage_end)
    );
    for Phase { name, delays, failed_attempts, unavailable, lost, accepted } in phases {
        println!(
            "revocations {name}: {}; failed revoke attempts {failed_attempts}, 503s seen by the watchers {unavailable}, \
             not refused within 20 s {lost}, 200s between acknowledgement and invalidation {accepted}",
            summary(delays)
        );
    }
    drop((sentinels, replica));
}

/// The revocations of one phase of the failover run.
struct Phase {
    name: &'static str,
    delays: Vec<Duration>,
    failed_attempts: u32,
    unavailable: u32,
    lost: u32,
    accepted: u32,
}

impl Phase {
    fn new(name: &'static str) -> Phase {
        Phase { name, delays: Vec::new(), failed_attempts: 0, unavailable: 0, lost: 0, accepted: 0 }
    }
}
