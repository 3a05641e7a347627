//! A steady trickle of traffic over two "instances" sharing Redis (feature `redis`): logins
//! (refresh families issued), refreshes, revocations and checks, each on one instance and seen
//! from the other, while a test kills Redis nodes underneath. It records every answer: when each
//! one failed closed (503 / `Unavailable`), when each outage ended, and any revocation that was
//! acknowledged and later not honoured (a lost revocation).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tower_jwt_guard::refresh::{RedisRefreshStore, RefreshError, RefreshStore, SenderConstraint};
use tower_jwt_guard::revocation::RedisRevocationStore;

use tower_jwt_guard::RedisServers;

use super::{get, post, revocation_instance, token};

/// One instance of the service: its layer on its own port, its own stores.
#[derive(Clone)]
pub struct Instance {
    pub addr: SocketAddr,
    pub revocations: RedisRevocationStore,
    pub refresh: RedisRefreshStore,
}

impl Instance {
    /// An instance on `url` (any topology), keys under `prefix`, 500 ms timeouts; a write
    /// that must survive a failover waits for `replicas` replicas (`wait_for_replicas`).
    pub async fn start(url: &str, prefix: &str, replicas: u32) -> Instance {
        let servers = || RedisServers::from_url(url).unwrap().wait_for_replicas(replicas);
        let revocations = RedisRevocationStore::builder_with(servers())
            .key_prefix(prefix)
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let refresh = RedisRefreshStore::builder_with(servers())
            .key_prefix(prefix)
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        Instance { addr: revocation_instance(&revocations).await, revocations, refresh }
    }
}

/// What one instance saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Answers that failed closed (503, `Unavailable`).
    pub unavailable: u32,
    /// Answers that were right.
    pub answered: u32,
    /// When each failure happened.
    pub failures: Vec<Instant>,
    /// Since when it fails (an outage in progress).
    pub down_since: Option<Instant>,
    /// When it last answered right.
    pub last_ok: Option<Instant>,
    /// When its last outage ended.
    pub recovered_at: Option<Instant>,
}

impl Seen {
    fn ok(&mut self) {
        self.answered += 1;
        let now = Instant::now();
        self.last_ok = Some(now);
        if self.down_since.take().is_some() {
            self.recovered_at = Some(now);
        }
    }

    fn unavailable(&mut self) {
        self.unavailable += 1;
        let now = Instant::now();
        self.failures.push(now);
        self.down_since.get_or_insert(now);
    }
}

/// What the trickle saw, shared with the test while it runs.
#[derive(Debug, Default)]
pub struct Report {
    pub seen: [Seen; 2],
    /// Revocations acknowledged (204) and later answered 200 (when acknowledged, when seen
    /// answered 200): must stay empty.
    pub lost_revocations: Vec<(Instant, Instant)>,
    /// Wrong answers that are no outage (a refresh family that went missing, an unexpected status).
    pub wrong: Vec<String>,
    pub revoked: u32,
    pub rotations: u32,
    pub logins: u32,
}

/// Runs the trickle until `stop` is set; `report` is updated as it goes.
pub async fn run(
    instances: [Instance; 2],
    report: Arc<Mutex<Report>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let lock = || report.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut families: [Option<String>; 2] = [None, None];
    let mut acknowledged: Vec<(String, Instant)> = Vec::new();
    let mut next_revoked = 0;
    let mut i = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let (this, other) = (i % 2, (i + 1) % 2);
        let access = token(&format!("user-{}", i % 7));
        // A check on this instance (a fresh jti: the local cache cannot answer it).
        let answer = get(instances[this].addr, "/me", &access.token).await;
        match answer.status {
            200 => lock().seen[this].ok(),
            503 => lock().seen[this].unavailable(),
            _ => lock().wrong.push(format!("check on {this}: {answer:?}")),
        }
        // A login, or a refresh on the other instance.
        match families[this].take() {
            None => match instances[this]
                .refresh
                .issue(&format!("user-{}", i % 7), &SenderConstraint::none())
                .await
            {
                Ok(issued) => {
                    let mut report = lock();
                    report.seen[this].ok();
                    report.logins += 1;
                    families[this] = Some(issued.token.as_str().to_owned());
                }
                Err(RefreshError::Unavailable) => lock().seen[this].unavailable(),
                Err(err) => lock().wrong.push(format!("login on {this}: {err:?}")),
            },
            Some(current) => match instances[other].refresh.rotate(&current, &SenderConstraint::none()).await
            {
                Ok(rotated) => {
                    let mut report = lock();
                    report.seen[other].ok();
                    report.rotations += 1;
                    families[this] = Some(rotated.token.as_str().to_owned());
                }
                Err(RefreshError::Unavailable) => {
                    lock().seen[other].unavailable();
                    families[this] = Some(current);
                }
                // A rotation acknowledged and then lost in a failover: the family is gone.
                Err(err) => lock().wrong.push(format!("rotation on {other}: {err:?}")),
            },
        }
        // A revocation every third round, on this instance.
        if i.is_multiple_of(3) {
            let answer = post(instances[this].addr, "/logout", &access.token).await;
            match answer.status {
                204 => {
                    let mut report = lock();
                    report.seen[this].ok();
                    report.revoked += 1;
                    acknowledged.push((access.token.clone(), Instant::now()));
                }
                503 => lock().seen[this].unavailable(),
                _ => lock().wrong.push(format!("revocation on {this}: {answer:?}")),
            }
        }
        // Every revocation acknowledged so far, in turn, on the other instance.
        for _ in 0..3.min(acknowledged.len()) {
            next_revoked = (next_revoked + 1) % acknowledged.len();
            let (revoked, at) = &acknowledged[next_revoked];
            let answer = get(instances[other].addr, "/me", revoked).await;
            match (answer.status, answer.code.as_deref()) {
                (401, Some("TOKEN_REVOKED")) => lock().seen[other].ok(),
                (503, _) => lock().seen[other].unavailable(),
                (200, _) => lock().lost_revocations.push((*at, Instant::now())),
                _ => lock().wrong.push(format!("revoked on {other}: {answer:?}")),
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most `patience`) until both instances answer right again after `since`; returns
/// how long after `since` each one's last outage ended (zero: none began after `since`).
pub async fn recovered(report: &Mutex<Report>, since: Instant, patience: Duration) -> [Duration; 2] {
    let deadline = Instant::now() + patience;
    loop {
        {
            let report = report.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let back = |seen: &Seen| seen.down_since.is_none() && seen.last_ok.is_some_and(|ok| ok > since);
            if back(&report.seen[0]) && back(&report.seen[1]) {
                let after = |seen: &Seen| {
                    seen.recovered_at.filter(|at| *at > since).map_or(Duration::ZERO, |at| at - since)
                };
                return [after(&report.seen[0]), after(&report.seen[1])];
            }
            assert!(
                Instant::now() < deadline,
                "an outage did not end within {patience:?}: {:?}",
                report.seen
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
