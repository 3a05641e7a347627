//! Soak: the memory of a guarded server under a flood of distinct tokens (a figure for the
//! README, not a pass/fail test).
//!
//! `cargo bench --bench soak --features redis -- --soak [N]` serves `/me` behind the layer (HS256,
//! verified-token cache on, revocation in Redis when `REDIS_URL` is set, in memory otherwise) on
//! loopback, sends N requests (default 1 000 000), each with a token never seen before, over 32
//! keep-alive connections, and prints the process's resident memory (`VmRSS`, the client
//! included) after every tenth of them. Without `--soak` it exits at once, so that `cargo bench`
//! passes over it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
use tower_jwt_guard::{Algorithm, JwtAuth};

const SECRET: &[u8; 32] = b"an HS256 soak test secret, 32 B!";
const CONNECTIONS: u64 = 32;

#[derive(Debug, Serialize, Deserialize)]
struct User {
    sub: String,
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(position) = args.iter().position(|a| a == "--soak") else { return };
    let total: u64 = args.get(position + 1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(soak(total));
}

async fn soak(total: u64) {
    let builder = JwtAuth::builder().hmac_secret(SECRET);
    #[cfg(feature = "redis")]
    let builder = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let store =
                tower_jwt_guard::revocation::RedisRevocationStore::builder(&url).unwrap().build().unwrap();
            println!("revocation store: Redis at {url}");
            builder.revocation(store)
        }
        Err(_) => builder,
    };
    let auth = builder.build().unwrap();
    let app = Router::new().route("/me", get(|| async { "ok" })).route_layer(auth.layer::<User>());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let issuer = Arc::new(TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build());
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS as usize).build().unwrap();
    let url = format!("http://{addr}/me");
    // Warm up (connections, caches' first allocations), then the baseline.
    send(&client, &url, &issuer, 0, CONNECTIONS * 100).await;
    let start = Instant::now();
    let baseline = resident_kib();
    println!("requests 0: VmRSS {baseline} KiB");
    let step = (total / 10).max(1);
    let mut sent = 0;
    while sent < total {
        let batch = step.min(total - sent);
        send(&client, &url, &issuer, sent + CONNECTIONS * 100, batch).await;
        sent += batch;
        println!(
            "requests {sent}: VmRSS {} KiB ({:+} KiB), {:.0} requests/s",
            resident_kib(),
            resident_kib() as i64 - baseline as i64,
            sent as f64 / start.elapsed().as_secs_f64()
        );
    }
}

/// `count` requests, each with a token of its own (subjects `first..first + count`), over
/// `CONNECTIONS` concurrent clients; every answer must be 200.
async fn send(client: &reqwest::Client, url: &str, issuer: &Arc<TokenIssuer>, first: u64, count: u64) {
    let next = Arc::new(AtomicU64::new(first));
    let end = first + count;
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, url, issuer, next) =
                (client.clone(), url.to_owned(), Arc::clone(issuer), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= end {
                        return;
                    }
                    let token = issuer.mint(&format!("user-{n}"), &serde_json::json!({})).unwrap();
                    let answer = client.get(&url).bearer_auth(&token.token).send().await.unwrap();
                    assert_eq!(answer.status(), 200, "request {n}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}
