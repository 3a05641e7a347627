//! The whole lifecycle of an access token, as the JWT guides describe it: log in with a
//! password, use a token bound to the device and the client address, step up with a TOTP
//! second factor for the admin route, renew it with a rotating refresh token, log out.
//!
//! ```text
//! cargo run --example full_flow
//! TRUSTED_PROXIES=127.0.0.1/32 cargo run --example full_flow   # behind a local reverse proxy
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --features redis --example full_flow   # shared stores
//! ```
//!
//! Demo user **`alice`**, password **`alice-password`**, TOTP secret (base32)
//! **`JBSWY3DPEHPK3PXP`** (add it to an authenticator app, or compute a code with
//! `oathtool --totp -b JBSWY3DPEHPK3PXP`). The start-up banner repeats them.
//!
//! | route | behaviour |
//! |---|---|
//! | `POST /auth/login` `{"username","password"}` | 200 `{"access_token","token_type":"Bearer","expires_in"}` + refresh cookie (`"token_type":"DPoP"` with a valid `DPoP` proof; an invalid or replayed one: 400 `invalid_dpop_proof`; a replay store that cannot answer: 503; with `DPOP_NONCE=1`, one without the server's nonce: 400 `use_dpop_nonce` + `DPoP-Nonce`); bad credentials 401; past `LOGIN_ATTEMPTS` (5 wrong passwords per account, and per client network, in 15 minutes) 429 + `Retry-After`; too many logins waiting for the hash 503 + `Retry-After`; not JSON 415, a body over 4 KiB 413 (or not sent within 10 s 408), malformed 400 |
//! | `POST /auth/refresh` (cookie) | 200 a new access token + the rotated cookie; a refresh token used twice: 401 `REFRESH_TOKEN_REUSED` and its whole family revoked (a retry within 30 s, while its successor is unused, gets that same successor); a DPoP login's refresh token without a proof by the login's key (another key, or none): 400 `invalid_grant`, code `SENDER_MISMATCH`, nothing rotated |
//! | `POST /auth/logout` (cookie) | revokes the refresh family and the subject's access tokens issued until now, clears the cookie: 204 (no access token needed; an expired one is no obstacle; a valid one without the cookie is revoked by its `jti`) |
//! | `POST /auth/mfa/verify` (bearer) `{"code"}` | valid TOTP: 200 with a new token carrying `amr: ["pwd","otp"]`; wrong or already used code 401; past `MFA_ATTEMPTS` (5 wrong codes per account in 15 minutes, from any address) 429 + `Retry-After` |
//! | `GET /protected` | 200 JSON with `sub` |
//! | `GET /admin` | needs the second factor (401 step-up challenge otherwise) |
//! | `GET /health` | 200, no token |
//! | `GET /` | the web page: the whole flow in a browser, DPoP from a non-extractable WebCrypto key (`full_flow_web/`) |
//!
//! Every `/auth` route refuses a browser's cross-origin request (`SameOriginLayer`: 403
//! `CROSS_ORIGIN_REQUEST`), which `SameSite=Strict` alone lets through from a page of the same
//! site (another port of the same host, say).
//!
//! Access tokens live 15 minutes (`ACCESS_TOKEN_TTL`, in seconds, to see a silent refresh sooner), carry a `jti`, and are bound to the device fingerprint
//! (`User-Agent`, `Accept-Language`, `Accept-Encoding`) and the client IP: the same token from
//! another browser or another address is refused (`BINDING_MISMATCH`). The client IP is the
//! connection's peer, or behind `TRUSTED_PROXIES` the rightmost untrusted `X-Forwarded-For`
//! hop; the login limit counts failures by that same address (IPv6 by its /64).
//!
//! Limits (`tower_jwt_guard::throttle`, in the same store as the rest: per instance in memory,
//! shared by every instance with `REDIS_URL`):
//!
//! | setting | counts | default |
//! |---|---|---|
//! | `LOGIN_ATTEMPTS` | wrong passwords per account, and per client network (IPv4 address, IPv6 /64) | `5/15m`: the 6th attempt within 15 minutes of the oldest is refused |
//! | `MFA_ATTEMPTS` | wrong TOTP codes per account, from any address | `5/15m` |
//!
//! Each attempt is reserved *before* the work (the body is read, argon2 runs, the code is
//! checked only once it is counted), so 30 wrong passwords sent at once get 5 checks and 25
//! answers 429; a success gives its attempt back. A locked account or network gets 429 with
//! `Retry-After` (until its oldest failure leaves the window), the right password included.
//! At most the hashing slots plus 32 logins wait for argon2; past that, 503. A TOTP code is
//! good once across all instances (its time step is kept in the store). Anyone can lock an
//! account for 15 minutes by failing on purpose: the price of a per-account limit.
//!
//! Refresh tokens are opaque random values in an `HttpOnly; Secure; SameSite=Strict` cookie
//! sent only to `/auth` (over HTTPS `__Host-refresh_token`, `Path=/`: RFC 6265bis allows the
//! prefix only with that path), stored only as hashes, and rotated on every use: each login starts a
//! *family*, and a token presented a second time (a stolen copy, or the victim after the
//! thief) revokes the whole family, and the access tokens of its subject. Logout needs only
//! the cookie, and ends the family and its subject's access tokens the same way: every token
//! of the subject with `iat` up to that second, on every device (the other sessions refresh).
//! A refresh answers an access token bound to the device and address of the request that
//! refreshed. The layer consults the revocation store on every
//! request, so a logged-out access token is refused (`TOKEN_REVOKED`).
//!
//! DPoP (RFC 9449, `DPOP`, default `allowed`): a login (or refresh) that carries a `DPoP` proof
//! for `POST` and its URL (`PUBLIC_URL`, or the address it listens on) gets an access token
//! bound to the proof's key (`cnf.jkt`, `"token_type": "DPoP"`); it is then accepted only as
//! `Authorization: DPoP` with a fresh proof per request, never as a bearer token. Without a
//! proof, logins get bearer tokens as before. A step-up (`/auth/mfa/verify`) of a DPoP-bound
//! token gets a new token bound to the same key. The session is bound too (RFC 9449 §5): the
//! refresh-token family remembers the login's key (and its client certificate, for a
//! certificate-bound login, RFC 8705 §4), and a refresh needs a proof by that key; a copied
//! refresh cookie is useless without it. Proofs are checked once, across instances, in the
//! same replay store as the layer's (Redis with `REDIS_URL`).
//!
//! Encrypted tokens (feature `jwe`, `JWE_KEY` with a 32-byte secret and `JWE_ALG=A256KW`): every
//! access token it hands out is a JWE (the claims set encrypted, as the JWT guide's `EncryptJWT`
//! does), decrypted by its own layer; bindings, step-up, refresh and logout work as before.
//!
//! The stores (revocations, refresh families, attempts and TOTP steps) live in memory, or with
//! `REDIS_URL` (feature `redis`) in Redis, shared by every instance: a logout on one instance
//! is refused on the others, a refresh token replayed on another instance is detected, the
//! attempt budgets are one for all instances, and a TOTP code used on one is refused on all.

mod support;
#[path = "full_flow_web/mod.rs"]
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use totp_rs::{Secret, Totp};
use tower::{Layer as _, ServiceExt as _};
use tower_jwt_guard::binding::{ClientIpBinding, DeviceFingerprint, RequestHead, TrustedProxies};
use tower_jwt_guard::issue::{IssueError, MintedToken, TokenIssuer};
#[cfg(feature = "redis")]
use tower_jwt_guard::refresh::RedisRefreshStore;
use tower_jwt_guard::refresh::{
    IssuedRefresh, MemoryRefreshStore, RefreshCookie, RefreshError, RefreshStore, SenderConstraint,
};
#[cfg(feature = "redis")]
use tower_jwt_guard::revocation::RedisRevocationStore;
use tower_jwt_guard::revocation::{MemoryRevocationStore, RevocationStore};
#[cfg(feature = "redis")]
use tower_jwt_guard::throttle::RedisThrottleStore;
use tower_jwt_guard::throttle::{
    MemoryThrottleStore, Throttle, ThrottleError, ThrottleKey, ThrottlePolicy, ThrottleStore, TotpSteps,
};
use tower_jwt_guard::{AuthContext, Claims, JwtAuth, JwtLayer, RequireMfa, RequiredClaim, SameOriginLayer};

use support::Settings;

/// The demo account, as stated in the docs and the banner.
pub const DEMO_USER: &str = "alice";
/// The demo account's password.
pub const DEMO_PASSWORD: &str = "alice-password";
/// The demo account's TOTP secret, base32 (RFC 6238: SHA-1, 6 digits, 30 s).
pub const DEMO_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";

/// The refresh token's cookie name ...
const REFRESH_COOKIE: &str = "refresh_token";
/// ... and the only path it is sent to.
const REFRESH_COOKIE_PATH: &str = "/auth";

/// Password checks waiting for a hashing slot, at most (past it: 503 with `Retry-After`). A
/// place is taken only once the body has been read: a slow sender never holds one.
const HASH_QUEUE: usize = 32;
/// The largest body `/auth/login` and `/auth/mfa/verify` read (past it: 413).
const BODY_LIMIT: usize = 4 * 1024;
/// How long a client may take to send that body (past it: 408, and at the login a counted
/// attempt).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The claims the service puts in its tokens, besides the registered ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub role: String,
}

/// What the layer decodes: the subject and the profile.
#[derive(Debug, Deserialize)]
pub struct User {
    pub sub: String,
    #[serde(flatten)]
    pub profile: Profile,
}

/// One account: an argon2 password hash (PHC string), a TOTP generator, a profile.
struct Account {
    password_hash: String,
    totp: Totp,
    profile: Profile,
}

/// Everything the handlers share.
pub struct AppState {
    issuer: TokenIssuer,
    accounts: HashMap<String, Account>,
    /// A valid hash to verify against for unknown users, so they cost the same time.
    dummy_hash: String,
    /// Wrong passwords per account and per client network (`LOGIN_ATTEMPTS`), counted before
    /// the hash runs.
    login_throttle: Throttle,
    /// Wrong TOTP codes per account (`MFA_ATTEMPTS`).
    mfa_throttle: Throttle,
    /// The last TOTP step each account used, in the same store: a code is good once.
    totp_steps: TotpSteps,
    proxies: TrustedProxies,
    /// A place in line for the password hash: the hashing slots plus [`HASH_QUEUE`] waiting.
    hash_queue: tokio::sync::Semaphore,
    /// argon2 needs ~19 MiB and tens of milliseconds per check: a few at a time.
    hashing: tokio::sync::Semaphore,
    /// The `iss` of the tokens minted here (a logout revokes the subject's tokens of this issuer).
    issuer_name: Option<String>,
    /// The layer, asked by the logout about an access token it may carry.
    layer: JwtLayer<User>,
    /// Revoked access tokens (the layer consults the same store on every request).
    revocations: Arc<dyn RevocationStore>,
    /// Refresh-token families.
    refresh: Arc<dyn RefreshStore>,
    /// How the refresh token travels: `HttpOnly; Secure; SameSite=Strict; Path=/auth`.
    cookie: RefreshCookie,
}

/// Where revocations and refresh-token families live: this process's memory, or with
/// `REDIS_URL` Redis, shared by every instance of the service.
pub struct Stores {
    revocations: Arc<dyn RevocationStore>,
    refresh: Arc<dyn RefreshStore>,
    /// Counted login and TOTP attempts, and the last TOTP step of each account.
    throttle: Arc<dyn ThrottleStore>,
    /// For the banner (never the URL: it may hold a password).
    description: &'static str,
}

impl Stores {
    /// `REDIS_URL` set: Redis; unset or empty: memory.
    pub fn from_env() -> Stores {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => Stores::redis(url.trim()),
            Ok(_) | Err(std::env::VarError::NotPresent) => Stores::memory(),
            Err(std::env::VarError::NotUnicode(_)) => support::fail("REDIS_URL", "is not valid UTF-8"),
        }
    }

    /// One process only: bounded, entries expire with their tokens.
    fn memory() -> Stores {
        Stores {
            revocations: Arc::new(MemoryRevocationStore::new()),
            refresh: Arc::new(MemoryRefreshStore::new()),
            throttle: Arc::new(MemoryThrottleStore::new()),
            description: "memory (set REDIS_URL to share them between instances)",
        }
    }

    /// Shared by every instance. Connects lazily: while Redis is down, the routes that need it
    /// answer 503 `AUTH_UNAVAILABLE` (fail closed).
    #[cfg(feature = "redis")]
    fn redis(url: &str) -> Stores {
        let revocations = RedisRevocationStore::builder(url)
            .and_then(|builder| builder.build())
            .unwrap_or_else(|err| support::fail("REDIS_URL", err));
        let refresh = RedisRefreshStore::builder(url)
            .and_then(|builder| builder.build())
            .unwrap_or_else(|err| support::fail("REDIS_URL", err));
        let throttle = RedisThrottleStore::builder(url)
            .and_then(|builder| builder.build())
            .unwrap_or_else(|err| support::fail("REDIS_URL", err));
        Stores {
            revocations: Arc::new(revocations),
            refresh: Arc::new(refresh),
            throttle: Arc::new(throttle),
            description: "Redis (REDIS_URL), shared by every instance",
        }
    }

    #[cfg(not(feature = "redis"))]
    fn redis(_url: &str) -> Stores {
        support::fail(
            "REDIS_URL",
            "needs the `redis` feature: run with `cargo run --features redis --example full_flow`",
        )
    }
}

/// `LOGIN_ATTEMPTS` / `MFA_ATTEMPTS`: `N` attempts per 15 minutes, or `N/<window>` with the
/// window in seconds, minutes or hours (`10/1h`, `3/90s`); unset: 5 per 15 minutes.
fn attempts_from_env(variable: &str) -> ThrottlePolicy {
    let Ok(value) = std::env::var(variable) else { return ThrottlePolicy::default() };
    let (count, window) = value.trim().split_once('/').unwrap_or((value.trim(), "15m"));
    let window = window.trim();
    let seconds = |digits: &str, unit: u64| digits.parse::<u64>().ok().map(|n| n.saturating_mul(unit));
    let window = match window.char_indices().last() {
        Some((at, 's')) => seconds(&window[..at], 1),
        Some((at, 'm')) => seconds(&window[..at], 60),
        Some((at, 'h')) => seconds(&window[..at], 3600),
        _ => None,
    };
    match (count.trim().parse::<u32>(), window) {
        (Ok(count), Some(window)) if count > 0 && window > 0 => {
            ThrottlePolicy::new(count, Duration::from_secs(window))
        }
        _ => {
            support::fail(variable, "expected a number of attempts, optionally per a window: 5, 5/15m, 10/1h")
        }
    }
}

/// A policy for the banner: `5 per 15m`.
fn describe_policy(policy: ThrottlePolicy) -> String {
    let secs = policy.window().as_secs();
    let window = if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    };
    format!("{} per {window}", policy.attempts())
}

/// A JSON error `{"error", "code"}`, the shape the layer's rejections have.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": message, "code": code }))).into_response()
}

/// With `Retry-After`, in whole seconds.
fn retry_after(mut response: Response, seconds: u64) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// A refused reservation: 429 with `Retry-After` (the account or the network is locked until
/// its oldest counted failure leaves the window), or 503 when the shared store is down.
fn throttled(err: ThrottleError) -> Response {
    match err.retry_after_secs() {
        Some(seconds) => retry_after(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_ATTEMPTS",
                "too many failed attempts, try again later",
            ),
            seconds,
        ),
        None => unavailable(),
    }
}

/// The line for the password hash is full: 503, come back in a second.
fn busy() -> Response {
    retry_after(
        error(StatusCode::SERVICE_UNAVAILABLE, "BUSY", "too many logins at once, try again shortly"),
        1,
    )
}

/// The JSON body of a request, read only now (after the attempt is reserved), at most
/// [`BODY_LIMIT`] bytes of it within [`BODY_TIMEOUT`]: not JSON 415, too long 413, too slow 408,
/// malformed 400 (`expected` says what was).
async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    expected: &str,
) -> Result<T, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        let message = "send the body as application/json";
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", message));
    }
    let too_large = || error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "the body is too large");
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, BODY_LIMIT)).await;
    let Ok(read) = read else {
        return Err(error(StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT", "the body took too long"));
    };
    let bytes = read.map_err(|err| {
        let source = std::error::Error::source(&err);
        if source.is_some_and(|source| source.is::<http_body_util::LengthLimitError>()) {
            too_large()
        } else {
            error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", expected)
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|_| error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", expected))
}

/// 503: a store cannot be reached, and nothing is let through without it.
fn unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "AUTH_UNAVAILABLE", "try again later")
}

/// 400: the token cannot be bound to this client (no usable client address, say). A `DPoP`
/// proof that does not verify is the token endpoint's `invalid_dpop_proof` (RFC 9449 §5.2); one
/// without the server's nonce (`DPOP_NONCE=1`) is `use_dpop_nonce`, with the nonce to use in
/// `DPoP-Nonce` (§8).
fn cannot_bind(err: &IssueError) -> Response {
    tracing::warn!(%err, "cannot mint a token");
    if let IssueError::Unavailable(_) = err {
        return unavailable();
    }
    if let IssueError::UseDpopNonce { nonce } = err {
        if let Ok(nonce) = HeaderValue::from_str(nonce) {
            let body = json!({
                "error": "use_dpop_nonce",
                "error_description": err.to_string(),
                "code": "USE_DPOP_NONCE",
            });
            let mut response = (StatusCode::BAD_REQUEST, Json(body)).into_response();
            response.headers_mut().insert("dpop-nonce", nonce);
            return response;
        }
    }
    if let IssueError::Binding(binding) = err {
        if binding.binding() == "dpop" {
            let body = json!({
                "error": "invalid_dpop_proof",
                "error_description": binding.reason(),
                "code": "INVALID_DPOP_PROOF",
            });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    }
    error(StatusCode::BAD_REQUEST, "CANNOT_BIND", "the token cannot be bound to this client")
}

/// 400 `invalid_grant` for a refresh token bound to a key (or certificate) the request does not
/// present: the grant belongs to another client (RFC 6749 §5.2; RFC 9449 §5 binds the refresh
/// token to the DPoP key). Nothing was rotated, and the cookie stays: it still works with its key.
fn sender_mismatch() -> Response {
    let body = json!({
        "error": "invalid_grant",
        "error_description": "the refresh token is bound to another key",
        "code": "SENDER_MISMATCH",
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// 401 for a refresh token that will never work again; the browser forgets the cookie.
fn refresh_refused(cookie: &RefreshCookie, code: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, code, "the session has ended: log in again");
    response.headers_mut().append(header::SET_COOKIE, cookie.clear());
    response
}

/// Adds the cookie that hands out `refresh` to `response`.
fn with_refresh_cookie(mut response: Response, cookie: &RefreshCookie, refresh: &IssuedRefresh) -> Response {
    response.headers_mut().append(header::SET_COOKIE, cookie.set(refresh));
    response
}

/// The OAuth-style answer with a fresh access token (and any cookie a binding needs):
/// `token_type` `DPoP` when it is bound to the key of the request's DPoP proof (RFC 9449 §5).
fn token_response(minted: MintedToken) -> Response {
    let body = json!({
        "access_token": minted.token,
        "token_type": minted.token_type,
        "expires_in": minted.expires_in,
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in minted.set_cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

/// `POST /auth/login`. In order, so that nothing expensive happens uncounted: the client
/// network's attempt is reserved (from the request head), the body is read (at most
/// [`BODY_LIMIT`] bytes within [`BODY_TIMEOUT`]), the account's attempt is reserved, and only
/// then is a place in the hash's line taken, so that slow senders never hold one; the hash
/// runs; a success releases the attempt, a failure (or a body that never arrives) keeps it
/// counted.
async fn login(State(state): State<Arc<AppState>>, parts: Parts, body: Body) -> Response {
    let Ok(ip) = state.proxies.client_ip(&RequestHead::from_parts(&parts)) else {
        return error(StatusCode::BAD_REQUEST, "UNKNOWN_CLIENT", "the client address cannot be determined");
    };
    let mut attempt = state.login_throttle.start();
    if let Err(refused) = attempt.reserve(&ThrottleKey::network(ip)).await {
        return throttled(refused);
    }
    // Not an attempt (no password was checked): the reservation is given back.
    let not_an_attempt = |attempt: tower_jwt_guard::throttle::Attempt, response: Response| async move {
        let _ = attempt.release().await;
        response
    };
    let expected = "expected {\"username\", \"password\"}";
    let LoginRequest { username, password } = match read_json(&parts.headers, body, expected).await {
        Ok(request) => request,
        // A body that never arrives held a connection for the whole timeout: it counts.
        Err(response) if response.status() == StatusCode::REQUEST_TIMEOUT => {
            attempt.fail();
            return response;
        }
        Err(response) => return not_an_attempt(attempt, response).await,
    };
    // Unknown names are counted too: guessing accounts costs the same as guessing passwords.
    if let Err(refused) = attempt.reserve(&ThrottleKey::account(&username)).await {
        return not_an_attempt(attempt, throttled(refused)).await;
    }
    let Ok(_in_line) = state.hash_queue.try_acquire() else {
        return not_an_attempt(attempt, busy()).await;
    };
    let account = state.accounts.get(&username);
    let hash = account.map_or(state.dummy_hash.clone(), |a| a.password_hash.clone());
    // argon2 takes tens of milliseconds of CPU: off the async workers, a few at a time.
    let Ok(_permit) = state.hashing.acquire().await else {
        return not_an_attempt(attempt, unavailable()).await;
    };
    let verified = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
    })
    .await
    .unwrap_or(false);
    // What an operator counts: every password check, with the client it was for.
    tracing::info!(client = %ip, verified, "password checked");
    let Some(account) = account.filter(|_| verified) else {
        attempt.fail();
        return error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "invalid username or password");
    };
    if attempt.release().await.is_err() {
        tracing::warn!("a successful login stays counted: the throttle store is unavailable");
    }
    let now = unix_now();
    // The token is bound to this request's device fingerprint and client IP, and with a valid
    // `DPoP` proof (for POST and this URL) to the proof's key: `cnf.jkt`, `token_type` `DPoP`.
    let minted = state.issuer.mint_for_with(&parts, &username, &account.profile, |claims| {
        claims.insert("amr".into(), json!(["pwd"]));
        claims.insert("auth_time".into(), json!(now));
    });
    let minted = match minted.await {
        Ok(minted) => minted,
        Err(err) => return cannot_bind(&err),
    };
    // Every login starts a new refresh-token family, bound to the token's DPoP key and client
    // certificate (when it has them): refreshes need the same.
    match state.refresh.issue(&username, &SenderConstraint::of(&minted.confirmation)).await {
        Ok(refresh) => with_refresh_cookie(token_response(minted), &state.cookie, &refresh),
        Err(_) => unavailable(),
    }
}

/// `POST /auth/refresh` (the refresh cookie): rotates the refresh token and answers a new
/// access token, bound to the device and address of *this* request, with the rotated cookie.
/// The binding comes first (the request's DPoP proof verified and recorded in the replay store),
/// so the rotation can require the login's key, and an invalid proof spends nothing.
async fn refresh(State(state): State<Arc<AppState>>, parts: Parts) -> Response {
    let Some(presented) = state.cookie.read(&parts.headers) else {
        return refresh_refused(&state.cookie, "INVALID_REFRESH_TOKEN");
    };
    let binding = match state.issuer.bind(&parts).await {
        Ok(binding) => binding,
        Err(err) => return cannot_bind(&err),
    };
    let constraint = SenderConstraint::of(binding.confirmation());
    let rotated = match state.refresh.rotate(presented, &constraint).await {
        Ok(rotated) => rotated,
        Err(RefreshError::SenderMismatch) => return sender_mismatch(),
        Err(RefreshError::Reused { subject }) => {
            // A spent token came back: two parties hold copies of it. The store has revoked
            // the whole family, so the thief's latest refresh token dies too; the access
            // tokens it minted die with every token of the subject issued until now.
            tracing::warn!(%subject, "refresh token reused: its family is revoked");
            if end_access_tokens(&state, &subject).await.is_err() {
                // The family is revoked; its access tokens live until they expire (15 minutes).
                tracing::error!(%subject, "refresh token reused: the access tokens could not be revoked");
            }
            return refresh_refused(&state.cookie, "REFRESH_TOKEN_REUSED");
        }
        Err(RefreshError::Unavailable) => return unavailable(),
        Err(_) => return refresh_refused(&state.cookie, "INVALID_REFRESH_TOKEN"),
    };
    let Some(account) = state.accounts.get(&rotated.subject) else {
        return refresh_refused(&state.cookie, "INVALID_REFRESH_TOKEN");
    };
    // A refreshed session proved the password only: `/admin` needs a new step-up.
    let minted = state.issuer.mint_bound_with(binding, &rotated.subject, &account.profile, |claims| {
        claims.insert("amr".into(), json!(["pwd"]));
    });
    let response = match minted {
        Ok(minted) => token_response(minted),
        Err(err) => cannot_bind(&err),
    };
    // The presented token is spent either way: the client keeps the rotated one.
    with_refresh_cookie(response, &state.cookie, &rotated)
}

/// Revokes every access token of `subject` minted here until now (the subject's tokens of
/// this issuer with `iat` at or before this second, on every device): the simplest rule that
/// certainly covers the family's tokens. The price: the subject's other sessions lose their
/// access token too and refresh (their refresh families are untouched), and a token minted in
/// this same second after the call is refused as well.
async fn end_access_tokens(state: &AppState, subject: &str) -> Result<(), ()> {
    let revoked = state.revocations.revoke_subject(state.issuer_name.as_deref(), subject, unix_now()).await;
    revoked.map_err(|_| ())
}

/// The access token of a request, when the layer accepts it (asked here, not in front of the
/// route: an expired or unbound token must not stop a logout).
async fn accepted_token(layer: &JwtLayer<User>, parts: &Parts) -> Option<AuthContext> {
    let probe = layer.layer(tower::service_fn(|request: axum::extract::Request| async move {
        let mut response = Response::new(Body::empty());
        if let Some(context) = request.extensions().get::<AuthContext>() {
            response.extensions_mut().insert(context.clone());
        }
        Ok::<_, std::convert::Infallible>(response)
    }));
    let request = axum::extract::Request::from_parts(parts.clone(), Body::empty());
    let response = probe.oneshot(request).await.ok()?;
    response.extensions().get::<AuthContext>().cloned()
}

/// `POST /auth/logout` (the refresh cookie; no access token needed, an expired or unbound one
/// is no obstacle): revokes the cookie's refresh family and, when the cookie is the family's
/// current token and the request carries the login's key (a `DPoP` proof for a DPoP login),
/// the access tokens of its subject (see [`end_access_tokens`]), and removes the cookie. An access token the layer accepts is
/// revoked by its `jti` too (a client without the cookie). 204 in every case, also without a
/// cookie or with one that no longer works; 503 when a store cannot be reached (nothing is
/// pretended). POST only, and the cookie is `SameSite=Strict` and sent only to `/auth`: another
/// site cannot make a browser log out.
async fn logout(State(state): State<Arc<AppState>>, parts: Parts) -> Response {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        if let Some(context) = accepted_token(&state.layer, &parts).await {
            if let (Some(jti), Some(expires_at)) = (context.jti(), context.expires_at) {
                if state.revocations.revoke_token(context.issuer(), jti, expires_at).await.is_err() {
                    return unavailable();
                }
            }
        }
    }
    if let Some(presented) = state.cookie.read(&parts.headers) {
        // No proof of a DPoP login's key is needed to end the session: without one (or with a
        // proof that does not verify) the constraint is empty, the family still ends. Only the
        // family's current token with the login's key names the subject, so that an old cookie
        // or a thief's copy cannot end the user's other sessions.
        let constraint = match state.issuer.bind(&parts).await {
            Ok(binding) => SenderConstraint::of(binding.confirmation()),
            Err(_) => SenderConstraint::none(),
        };
        let subject = match state.refresh.revoke(presented, &constraint).await {
            Ok(subject) => subject,
            Err(_) => return unavailable(),
        };
        if let Some(subject) = subject {
            if end_access_tokens(&state, &subject).await.is_err() {
                return unavailable();
            }
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().append(header::SET_COOKIE, state.cookie.clear());
    response
}

#[derive(Deserialize)]
struct MfaRequest {
    code: String,
}

/// `POST /auth/mfa/verify` (behind the layer: the bearer token says who is stepping up). The
/// account's step-up attempt is reserved before the body is read (`MFA_ATTEMPTS`, per account
/// whatever the address), and a code's time step is accepted once across all instances.
async fn verify_mfa(
    State(state): State<Arc<AppState>>,
    context: AuthContext,
    parts: Parts,
    body: Body,
) -> Response {
    let invalid = || error(StatusCode::UNAUTHORIZED, "INVALID_OTP", "invalid code");
    let Some(subject) = context.subject() else { return invalid() };
    let account_key = ThrottleKey::account(subject);
    let attempt = match state.mfa_throttle.reserve(std::slice::from_ref(&account_key)).await {
        Ok(attempt) => attempt,
        Err(refused) => return throttled(refused),
    };
    let MfaRequest { code } = match read_json(&parts.headers, body, "expected {\"code\"}").await {
        Ok(request) => request,
        Err(response) => {
            let _ = attempt.release().await;
            return response;
        }
    };
    let Some(account) = state.accounts.get(subject) else {
        attempt.fail();
        return invalid();
    };
    // `check` answers the time step the code belongs to; a step already used is a replay.
    let fresh = match account.totp.check(code.trim(), unix_now()) {
        Some(step) => match state.totp_steps.accept(&account_key, step).await {
            Ok(fresh) => fresh,
            Err(_) => return unavailable(),
        },
        None => false,
    };
    if !fresh {
        attempt.fail();
        return invalid();
    }
    if attempt.release().await.is_err() {
        tracing::warn!("a successful step-up stays counted: the throttle store is unavailable");
    }
    match state.issuer.step_up(&parts, &context, &account.profile, "otp").await {
        Ok(minted) => token_response(minted),
        Err(err) => cannot_bind(&err),
    }
}

/// `GET /protected`.
async fn protected(Claims(user): Claims<User>) -> Json<serde_json::Value> {
    Json(json!({ "sub": user.sub, "name": user.profile.name, "role": user.profile.role }))
}

/// `GET /admin`: only with a second factor.
async fn admin(RequireMfa(context): RequireMfa, Claims(user): Claims<User>) -> Json<serde_json::Value> {
    Json(json!({ "admin": true, "sub": user.sub, "amr": context.amr }))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The demo accounts: alice, with her password hashed by argon2 at start.
fn demo_accounts() -> Result<(HashMap<String, Account>, String), String> {
    let hash = |password: &str| {
        Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
    };
    let secret = Secret::try_from_base32(DEMO_TOTP_SECRET).map_err(|e| e.to_string())?;
    // The demo secret is 80 bits (the guides' classic example); real secrets have 160 bits,
    // which `build()` enforces.
    let totp = totp_rs::Builder::new().with_secret(secret).build_noncompliant();
    let alice = Account {
        password_hash: hash(DEMO_PASSWORD)?,
        totp,
        profile: Profile { name: "Alice".into(), role: "admin".into() },
    };
    let dummy = hash("not the password of anybody")?;
    Ok((HashMap::from([(DEMO_USER.to_string(), alice)]), dummy))
}

/// The layer's configuration: the settings' keys, `sub` and `jti` required, the two
/// bindings every token carries, DPoP (`DPOP`, with `htu` against `PUBLIC_URL` or the address
/// it listens on), and the revocation store consulted on every request.
pub fn auth(
    settings: &Settings,
    listening: SocketAddr,
    proxies: &TrustedProxies,
    revocations: &Arc<dyn RevocationStore>,
) -> JwtAuth {
    support::with_dpop(settings.auth_builder(), listening)
        .every_issuer(|issuer| issuer.require([RequiredClaim::Exp, RequiredClaim::Sub, RequiredClaim::Jti]))
        .binding(DeviceFingerprint::new())
        .binding(ClientIpBinding::new().trusted_proxies(proxies.clone()))
        .revocation(Arc::clone(revocations))
        .build()
        .unwrap_or_else(|err| support::fail("configuration", err))
}

/// The routes that speak about tokens. Step-up needs the bearer token; login and refresh are
/// how a client gets one, and logout needs only the refresh cookie (an expired access token
/// must not keep a session alive).
fn auth_routes(auth: &JwtAuth) -> Router<Arc<AppState>> {
    Router::new()
        .route("/auth/mfa/verify", post(verify_mfa))
        .route_layer(auth.layer::<User>())
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        // The cookie authenticates refresh and logout: no other origin may send them.
        .layer(SameOriginLayer::new())
}

/// The attempt budgets: `LOGIN_ATTEMPTS` and `MFA_ATTEMPTS`.
pub struct Limits {
    /// Wrong passwords per account and per client network.
    pub login: ThrottlePolicy,
    /// Wrong TOTP codes per account.
    pub mfa: ThrottlePolicy,
}

impl Limits {
    /// From the environment (a bad value exits naming the variable).
    pub fn from_env() -> Limits {
        Limits { login: attempts_from_env("LOGIN_ATTEMPTS"), mfa: attempts_from_env("MFA_ATTEMPTS") }
    }
}

/// The whole application.
pub fn app(
    settings: &Settings,
    listening: SocketAddr,
    proxies: TrustedProxies,
    stores: Stores,
    limits: &Limits,
) -> Router {
    let auth = auth(settings, listening, &proxies, &stores.revocations);
    let Some(issuer) = settings.token_issuer_builder() else {
        support::fail(
            settings.key_variable(),
            "full_flow signs its own tokens: set JWT_SECRET, or nothing for a random secret",
        )
    };
    // The layer's policies, DPoP included: a login with a proof gets a DPoP-bound token.
    let mut issuer = issuer.bindings_of(&auth);
    if let Some(ttl) = access_token_ttl() {
        issuer = issuer.ttl(ttl);
    }
    let issuer = issuer.build();
    let (accounts, dummy_hash) = demo_accounts().unwrap_or_else(|err| support::fail("demo accounts", err));
    let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
    let state = Arc::new(AppState {
        issuer,
        accounts,
        dummy_hash,
        login_throttle: Throttle::new("login", limits.login, Arc::clone(&stores.throttle)),
        mfa_throttle: Throttle::new("mfa", limits.mfa, Arc::clone(&stores.throttle)),
        totp_steps: TotpSteps::new(stores.throttle),
        proxies,
        hash_queue: tokio::sync::Semaphore::new(parallelism + HASH_QUEUE),
        hashing: tokio::sync::Semaphore::new(parallelism),
        issuer_name: settings.issuer.clone(),
        layer: auth.layer::<User>(),
        revocations: stores.revocations,
        refresh: stores.refresh,
        cookie: refresh_cookie(),
    });
    let api = Router::new()
        .route("/protected", get(protected))
        .route("/admin", get(admin))
        .route_layer(auth.layer::<User>());
    auth_routes(&auth)
        .merge(api)
        .merge(web::routes())
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
        .layer(axum::middleware::map_response(web::security_headers))
}

/// `ACCESS_TOKEN_TTL`: the access tokens' lifetime in seconds (default 15 minutes).
fn access_token_ttl() -> Option<Duration> {
    let value = std::env::var("ACCESS_TOKEN_TTL").ok()?;
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds > 0 => Some(Duration::from_secs(seconds)),
        _ => support::fail("ACCESS_TOKEN_TTL", "expected a number of seconds, at least 1"),
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(true).init();
    let settings = Settings::from_env("127.0.0.1:3000");
    let proxies = support::trusted_proxies();
    let described_proxies = if proxies.networks().is_empty() {
        "none: the connection's peer is the client".to_string()
    } else {
        proxies.networks().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    let stores = Stores::from_env();
    let described_stores = stores.description;
    let limits = Limits::from_env();
    let tls = support::tls::Tls::from_env();
    let (listener, addr) = settings.listen().await;
    let app = app(&settings, addr, proxies, stores, &limits);
    let transport = tls.as_ref().map_or("plain HTTP", support::tls::Tls::describe);
    println!(
        "full_flow listening on {}://{addr} ({}; {transport})",
        support::scheme(),
        settings.describe_keys()
    );
    println!("  demo user: {DEMO_USER} / {DEMO_PASSWORD}, TOTP secret (base32) {DEMO_TOTP_SECRET}");
    println!("  trusted proxies: {described_proxies}");
    println!("  revocations and refresh tokens: {described_stores}");
    println!(
        "  limits: {} wrong passwords per account and per client network (LOGIN_ATTEMPTS), {} wrong codes per \
         account (MFA_ATTEMPTS), in the same store",
        describe_policy(limits.login),
        describe_policy(limits.mfa)
    );
    print_curl_lines(addr);
    println!("  in a browser: {}/  (log in, step up, log out)", support::public_url(addr));

    support::serve(listener, app, tls.as_ref()).await;
}

/// How the refresh token travels: over HTTPS `__Host-refresh_token` (`Path=/`: RFC 6265bis allows
/// the prefix only there), so a sibling subdomain cannot plant a cookie of that name; over plain
/// HTTP `refresh_token`, sent only to `/auth`.
fn refresh_cookie() -> RefreshCookie {
    if support::scheme() == "https" {
        RefreshCookie::host(REFRESH_COOKIE)
    } else {
        RefreshCookie::new(REFRESH_COOKIE, REFRESH_COOKIE_PATH)
    }
}

/// Ready-to-paste commands for every route. The refresh cookie is `Secure`, so curl's cookie
/// jar would not send it over plain http: the commands pass it explicitly with `-b`. With
/// `TLS_CERT` they speak HTTPS.
fn print_curl_lines(addr: SocketAddr) {
    let (curl, base) = (support::curl(), format!("{}://{addr}", support::scheme()));
    let cookie = refresh_cookie();
    let name = cookie.name();
    println!("  {curl} -i {base}/health");
    println!(
        "  LOGIN=$({curl} -si {base}/auth/login -H 'content-type: application/json' \
         -d '{{\"username\":\"{DEMO_USER}\",\"password\":\"{DEMO_PASSWORD}\"}}')"
    );
    println!(
        "  TOKEN=$(echo \"$LOGIN\" | sed -n 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/p'); \
         REFRESH=$(echo \"$LOGIN\" | sed -n 's/^set-cookie: {name}=\\([^;]*\\).*/\\1/Ip')"
    );
    println!("  {curl} -i {base}/protected -H \"Authorization: Bearer $TOKEN\"");
    println!("  {curl} -i {base}/admin -H \"Authorization: Bearer $TOKEN\"   # 401: step-up challenge");
    println!(
        "  {curl} -i {base}/auth/mfa/verify -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \
         -d \"{{\\\"code\\\":\\\"$(oathtool --totp -b {DEMO_TOTP_SECRET})\\\"}}\"   # the new token passes /admin"
    );
    println!(
        "  {curl} -i -X POST {base}/auth/refresh -b \"{name}=$REFRESH\"   \
         # a new token + a rotated cookie; the same REFRESH again: 401, the family is revoked"
    );
    println!(
        "  {curl} -i -X POST {base}/auth/logout -b \"{name}=$REFRESH\"   \
         # 204: the session ends (no access token needed); TOKEN is then refused with TOKEN_REVOKED"
    );
}
