//! Shared helpers of the integration tests: a real HTTP server on loopback, tokens, and a real
//! `redis-server` started per test on an ephemeral port.
#![allow(dead_code)] // each test file uses a part

pub mod auth_flow;
pub mod message_signature;
#[cfg(feature = "redis")]
pub mod redis_cluster;
#[cfg(feature = "redis")]
pub mod redis_sentinel;
pub mod redis_server;
#[cfg(feature = "redis")]
pub mod trickle;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Router;
use serde::{Deserialize, Serialize};
use tower_jwt_guard::issue::{MintedToken, SigningKey, TokenIssuer};
use tower_jwt_guard::refresh::{IssuedRefresh, RefreshError, RefreshStore, SenderConstraint};
use tower_jwt_guard::revocation::RevocationStore;
use tower_jwt_guard::{Algorithm, AuthContext, Claims};

/// `GET /me`: the subject of the verified token.
pub async fn me(Claims(user): Claims<User>) -> String {
    user.sub.clone()
}

/// Logout: revokes the presented access token until it expires.
pub async fn logout<S: RevocationStore + Clone>(State(store): State<S>, ctx: AuthContext) -> StatusCode {
    let (Some(jti), Some(exp)) = (ctx.jti(), ctx.expires_at) else { return StatusCode::BAD_REQUEST };
    match store.revoke_token(ctx.issuer(), jti, exp).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Log out everywhere: every token of the subject issued up to now.
pub async fn logout_everywhere<S: RevocationStore + Clone>(
    State(store): State<S>,
    ctx: AuthContext,
) -> StatusCode {
    let Some(subject) = ctx.subject() else { return StatusCode::BAD_REQUEST };
    match store.revoke_subject(ctx.issuer(), subject, now()).await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Presents `token` for rotation from 16 tasks released at once, spread over `stores` (the
/// "instances"), and returns the rotations that won; every loser must be refused as a replay.
pub async fn race_rotations<S>(stores: &[S], token: &str) -> Vec<IssuedRefresh>
where
    S: RefreshStore + Clone + 'static,
{
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, start, token) = (stores[i % stores.len()].clone(), start.clone(), token.to_string());
            tokio::spawn(async move {
                start.wait().await;
                store.rotate(token.as_str(), &SenderConstraint::none()).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(rotated) => winners.push(rotated),
            Err(err) => {
                assert!(matches!(err, RefreshError::Reused { .. } | RefreshError::Revoked), "{err:?}")
            }
        }
    }
    winners
}

pub const SECRET: &[u8; 32] = b"an HS256 test secret, 32 bytes!!";

#[derive(Debug, Serialize, Deserialize)]
pub struct User {
    pub sub: String,
}

pub fn issuer() -> TokenIssuer {
    TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build()
}

/// A token for `subject`.
pub fn token(subject: &str) -> MintedToken {
    issuer().mint(subject, &serde_json::json!({})).unwrap()
}

/// A token for `subject` claiming to be issued at `iat`.
pub fn token_issued_at(subject: &str, iat: u64) -> MintedToken {
    issuer()
        .mint_with(subject, &serde_json::json!({}), |claims| {
            claims.insert("iat".into(), iat.into());
        })
        .unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// One "instance" of a service: its own layer over `store` (the revocations it shares with the
/// other instances) on its own server, with `/me`, `/logout` and `/logout-everywhere`.
pub async fn revocation_instance<S: RevocationStore + Clone>(store: &S) -> SocketAddr {
    use axum::routing::{get, post};
    let auth =
        tower_jwt_guard::JwtAuth::builder().hmac_secret(SECRET).revocation(store.clone()).build().unwrap();
    let app = Router::new()
        .route("/me", get(me))
        .route("/logout", post(logout::<S>))
        .route("/logout-everywhere", post(logout_everywhere::<S>))
        .route_layer(auth.layer::<User>())
        .with_state(store.clone());
    serve(app).await
}

/// Serves `app` on an ephemeral loopback port.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// An HTTP answer: status and the JSON body's `code` (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub code: Option<String>,
}

impl Answer {
    pub fn is(&self, status: u16, code: Option<&str>) -> bool {
        self.status == status && self.code.as_deref() == code
    }
}

pub async fn request(method: reqwest::Method, addr: SocketAddr, path: &str, token: &str) -> Answer {
    let client = reqwest::Client::new();
    let response = client
        .request(method, format!("http://{addr}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the test server answers");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    Answer { status, code: body.get("code").and_then(|c| c.as_str()).map(str::to_owned) }
}

pub async fn get(addr: SocketAddr, path: &str, token: &str) -> Answer {
    request(reqwest::Method::GET, addr, path, token).await
}

pub async fn post(addr: SocketAddr, path: &str, token: &str) -> Answer {
    request(reqwest::Method::POST, addr, path, token).await
}

/// Polls `path` with `token` until the answer is `status` with `code`, for at most `limit`;
/// panics with the last answer otherwise.
pub async fn answers(
    addr: SocketAddr,
    path: &str,
    token: &str,
    status: u16,
    code: Option<&str>,
    limit: Duration,
) {
    let mut last = None::<Answer>;
    let found = tokio::time::timeout(limit, async {
        loop {
            let answer = get(addr, path, token).await;
            if answer.is(status, code) {
                return;
            }
            last = Some(answer);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "timed out waiting for {path} to answer {status} {code:?}; last answer {last:?}");
}

/// Polls `probe` until it yields `Some`, for at most `limit`; panics naming `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A revocation store on `url` with the tests' settings: keys under `prefix`, a 500 ms timeout.
#[cfg(feature = "redis")]
pub fn revocations(url: &str, prefix: &str) -> tower_jwt_guard::revocation::RedisRevocationStore {
    tower_jwt_guard::revocation::RedisRevocationStore::builder(url)
        .unwrap()
        .key_prefix(prefix)
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// Waits (at most `limit`) until `store`'s invalidation subscription is up.
#[cfg(feature = "redis")]
pub async fn subscribed(store: &tower_jwt_guard::revocation::RedisRevocationStore, limit: Duration) {
    eventually("the invalidation subscription", limit, || async { store.is_subscribed().then_some(()) })
        .await;
}
