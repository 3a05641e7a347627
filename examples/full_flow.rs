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
//! | `POST /auth/login` `{"username","password"}` | 200 `{"access_token","token_type":"Bearer","expires_in"}` + refresh cookie (`"token_type":"DPoP"` with a valid `DPoP` proof; an invalid or replayed one: 400 `invalid_dpop_proof`; a replay store that cannot answer: 503; with `DPOP_NONCE=1`, one without the server's nonce: 400 `use_dpop_nonce` + `DPoP-Nonce`); bad credentials 401; more than 5 failures per client IP in 15 minutes 429 |
//! | `POST /auth/refresh` (cookie) | 200 a new access token + the rotated cookie; a refresh token used twice: 401 `REFRESH_TOKEN_REUSED` and its whole family revoked (a retry within 30 s, while its successor is unused, gets that same successor); a DPoP login's refresh token without a proof by the login's key (another key, or none): 400 `invalid_grant`, code `SENDER_MISMATCH`, nothing rotated |
//! | `POST /auth/logout` (bearer, cookie) | revokes the access token's `jti` and the refresh family: 204 |
//! | `POST /auth/mfa/verify` (bearer) `{"code"}` | valid TOTP: 200 with a new token carrying `amr: ["pwd","otp"]`; wrong code 401 |
//! | `GET /protected` | 200 JSON with `sub` |
//! | `GET /admin` | needs the second factor (401 step-up challenge otherwise) |
//! | `GET /health` | 200, no token |
//!
//! Access tokens live 15 minutes, carry a `jti`, and are bound to the device fingerprint
//! (`User-Agent`, `Accept-Language`, `Accept-Encoding`) and the client IP: the same token from
//! another browser or another address is refused (`BINDING_MISMATCH`). The client IP is the
//! connection's peer, or behind `TRUSTED_PROXIES` the rightmost untrusted `X-Forwarded-For`
//! hop; the login rate limit counts failures by that same address.
//!
//! Refresh tokens are opaque random values in an `HttpOnly; Secure; SameSite=Strict` cookie
//! sent only to `/auth`, stored only as hashes, and rotated on every use: each login starts a
//! *family*, and a token presented a second time (a stolen copy, or the victim after the
//! thief) revokes the whole family. A refresh answers an access token bound to the device and
//! address of the request that refreshed. The layer consults the revocation store on every
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
//! Both stores live in memory, or with `REDIS_URL` (feature `redis`) in Redis, shared by every
//! instance: a logout on one instance is refused on the others, and a refresh token replayed
//! on another instance is detected.

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use totp_rs::{Secret, Totp};
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
use tower_jwt_guard::{AuthContext, Claims, JwtAuth, RequireMfa, RequiredClaim};

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

/// Failed logins (or TOTP codes) allowed per client IP ...
const MAX_FAILURES: u32 = 5;
/// ... in this window.
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

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
    /// The last TOTP time step accepted: a code is good once (RFC 6238 §5.2).
    last_totp_step: AtomicU64,
    profile: Profile,
}

/// Everything the handlers share.
pub struct AppState {
    issuer: TokenIssuer,
    accounts: HashMap<String, Account>,
    /// A valid hash to verify against for unknown users, so they cost the same time.
    dummy_hash: String,
    limiter: FailureLimiter,
    proxies: TrustedProxies,
    /// argon2 needs ~19 MiB and tens of milliseconds per check: a few at a time, so a flood of
    /// logins queues instead of exhausting memory.
    hashing: tokio::sync::Semaphore,
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
        Stores {
            revocations: Arc::new(revocations),
            refresh: Arc::new(refresh),
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

/// Failed attempts per client IP: governor's GCRA allows a burst of 5 failures, refilled over
/// 15 minutes. An address past its budget is locked until governor would allow another
/// failure, and is refused before its password is even checked.
struct FailureLimiter {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    locked: quick_cache::sync::Cache<IpAddr, Instant>,
}

impl FailureLimiter {
    fn new() -> Self {
        let burst = NonZeroU32::new(MAX_FAILURES).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(FAILURE_WINDOW / MAX_FAILURES)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(burst);
        FailureLimiter { failures: RateLimiter::keyed(quota), locked: quick_cache::sync::Cache::new(100_000) }
    }

    /// `Err(retry after)` while `ip` is locked.
    fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        match self.locked.get(&ip) {
            Some(until) if until > Instant::now() => Err(until - Instant::now()),
            _ => Ok(()),
        }
    }

    /// Counts a failure; `Err(retry after)` when it is one too many.
    fn record_failure(&self, ip: IpAddr) -> Result<(), Duration> {
        self.failures.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            self.locked.insert(ip, Instant::now() + wait);
            wait
        })
    }
}

/// A JSON error `{"error", "code"}`, the shape the layer's rejections have.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": message, "code": code }))).into_response()
}

fn too_many_attempts(retry_after: Duration) -> Response {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_ATTEMPTS",
        "too many failed attempts, try again later",
    );
    let seconds = retry_after.as_secs().max(1).to_string();
    if let Ok(value) = HeaderValue::from_str(&seconds) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
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

/// `POST /auth/login`.
async fn login(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Response {
    let Ok(ip) = state.proxies.client_ip(&RequestHead::from_parts(&parts)) else {
        return error(StatusCode::BAD_REQUEST, "UNKNOWN_CLIENT", "the client address cannot be determined");
    };
    if let Err(retry_after) = state.limiter.check(ip) {
        return too_many_attempts(retry_after);
    }
    let Ok(Json(LoginRequest { username, password })) = body else {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "expected {\"username\", \"password\"}");
    };
    let account = state.accounts.get(&username);
    let hash = account.map_or(state.dummy_hash.clone(), |a| a.password_hash.clone());
    // argon2 takes tens of milliseconds of CPU: off the async workers, a few at a time.
    let Ok(_permit) = state.hashing.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "try again later");
    };
    let verified = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
    })
    .await
    .unwrap_or(false);
    let Some(account) = account.filter(|_| verified) else {
        return match state.limiter.record_failure(ip) {
            Ok(()) => error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "invalid username or password"),
            Err(retry_after) => too_many_attempts(retry_after),
        };
    };
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
            // the whole family, so the thief's latest token dies too. (A stricter service would
            // also end the subject's access tokens with `RevocationStore::revoke_subject`.)
            tracing::warn!(%subject, "refresh token reused: its family is revoked");
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

/// `POST /auth/logout` (bearer and refresh cookie): revokes the access token's `jti` until it
/// expires and the refresh token's family, and removes the cookie. 204.
async fn logout(State(state): State<Arc<AppState>>, context: AuthContext, headers: HeaderMap) -> Response {
    // The layer requires `jti` and `exp`: both are there.
    if let (Some(jti), Some(expires_at)) = (context.jti(), context.expires_at) {
        if state.revocations.revoke_token(context.issuer(), jti, expires_at).await.is_err() {
            return unavailable();
        }
    }
    if let Some(presented) = state.cookie.read(&headers) {
        if state.refresh.revoke(presented).await.is_err() {
            return unavailable();
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

/// `POST /auth/mfa/verify` (behind the layer: the bearer token says who is stepping up).
async fn verify_mfa(
    State(state): State<Arc<AppState>>,
    context: AuthContext,
    parts: Parts,
    body: Result<Json<MfaRequest>, JsonRejection>,
) -> Response {
    let Ok(ip) = state.proxies.client_ip(&RequestHead::from_parts(&parts)) else {
        return error(StatusCode::BAD_REQUEST, "UNKNOWN_CLIENT", "the client address cannot be determined");
    };
    if let Err(retry_after) = state.limiter.check(ip) {
        return too_many_attempts(retry_after);
    }
    let Ok(Json(MfaRequest { code })) = body else {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "expected {\"code\"}");
    };
    let Some(account) = context.subject().and_then(|sub| state.accounts.get(sub)) else {
        return error(StatusCode::UNAUTHORIZED, "INVALID_OTP", "invalid code");
    };
    // `check` answers the time step the code belongs to; a step already used is a replay.
    let fresh = account
        .totp
        .check(code.trim(), unix_now())
        .is_some_and(|step| account.last_totp_step.fetch_max(step, Ordering::SeqCst) < step);
    if !fresh {
        return match state.limiter.record_failure(ip) {
            Ok(()) => error(StatusCode::UNAUTHORIZED, "INVALID_OTP", "invalid code"),
            Err(retry_after) => too_many_attempts(retry_after),
        };
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
        last_totp_step: AtomicU64::new(0),
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

/// The routes that speak about tokens. Step-up and logout need the bearer token; login and
/// refresh are how a client gets one.
fn auth_routes(auth: &JwtAuth) -> Router<Arc<AppState>> {
    Router::new()
        .route("/auth/mfa/verify", post(verify_mfa))
        .route("/auth/logout", post(logout))
        .route_layer(auth.layer::<User>())
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
}

/// The whole application.
pub fn app(settings: &Settings, listening: SocketAddr, proxies: TrustedProxies, stores: Stores) -> Router {
    let auth = auth(settings, listening, &proxies, &stores.revocations);
    let Some(issuer) = settings.token_issuer_builder() else {
        support::fail(
            settings.key_variable(),
            "full_flow signs its own tokens: set JWT_SECRET, or nothing for a random secret",
        )
    };
    // The layer's policies, DPoP included: a login with a proof gets a DPoP-bound token.
    let issuer = issuer.bindings_of(&auth).build();
    let (accounts, dummy_hash) = demo_accounts().unwrap_or_else(|err| support::fail("demo accounts", err));
    let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
    let state = Arc::new(AppState {
        issuer,
        accounts,
        dummy_hash,
        limiter: FailureLimiter::new(),
        proxies,
        hashing: tokio::sync::Semaphore::new(parallelism),
        revocations: stores.revocations,
        refresh: stores.refresh,
        cookie: if support::scheme() == "https" {
            RefreshCookie::host(REFRESH_COOKIE)
        } else {
            RefreshCookie::new(REFRESH_COOKIE, REFRESH_COOKIE_PATH)
        },
    });
    // Forget addresses whose failures have been forgiven.
    let cleanup = Arc::downgrade(&state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let Some(state) = cleanup.upgrade() else { break };
            state.limiter.failures.retain_recent();
        }
    });
    let api = Router::new()
        .route("/protected", get(protected))
        .route("/admin", get(admin))
        .route_layer(auth.layer::<User>());
    auth_routes(&auth).merge(api).route("/health", get(|| async { "ok" })).with_state(state)
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
    let tls = support::tls::Tls::from_env();
    let (listener, addr) = settings.listen().await;
    let app = app(&settings, addr, proxies, stores);
    let transport = tls.as_ref().map_or("plain HTTP", support::tls::Tls::describe);
    println!(
        "full_flow listening on {}://{addr} ({}; {transport})",
        support::scheme(),
        settings.describe_keys()
    );
    println!("  demo user: {DEMO_USER} / {DEMO_PASSWORD}, TOTP secret (base32) {DEMO_TOTP_SECRET}");
    println!("  trusted proxies: {described_proxies}");
    println!("  revocations and refresh tokens: {described_stores}");
    print_curl_lines(addr);

    support::serve(listener, app, tls.as_ref()).await;
}

/// Ready-to-paste commands for every route. The refresh cookie is `Secure`, so curl's cookie
/// jar would not send it over plain http: the commands pass it explicitly with `-b`. With
/// `TLS_CERT` they speak HTTPS.
fn print_curl_lines(addr: SocketAddr) {
    let (curl, base) = (support::curl(), format!("{}://{addr}", support::scheme()));
    println!("  {curl} -i {base}/health");
    println!(
        "  LOGIN=$({curl} -si {base}/auth/login -H 'content-type: application/json' \
         -d '{{\"username\":\"{DEMO_USER}\",\"password\":\"{DEMO_PASSWORD}\"}}')"
    );
    println!(
        "  TOKEN=$(echo \"$LOGIN\" | sed -n 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/p'); \
         REFRESH=$(echo \"$LOGIN\" | sed -n 's/^set-cookie: {REFRESH_COOKIE}=\\([^;]*\\).*/\\1/Ip')"
    );
    println!("  {curl} -i {base}/protected -H \"Authorization: Bearer $TOKEN\"");
    println!("  {curl} -i {base}/admin -H \"Authorization: Bearer $TOKEN\"   # 401: step-up challenge");
    println!(
        "  {curl} -i {base}/auth/mfa/verify -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \
         -d \"{{\\\"code\\\":\\\"$(oathtool --totp -b {DEMO_TOTP_SECRET})\\\"}}\"   # the new token passes /admin"
    );
    println!(
        "  {curl} -i -X POST {base}/auth/refresh -b \"{REFRESH_COOKIE}=$REFRESH\"   \
         # a new token + a rotated cookie; the same REFRESH again: 401, the family is revoked"
    );
    println!(
        "  {curl} -i -X POST {base}/auth/logout -H \"Authorization: Bearer $TOKEN\" -b \"{REFRESH_COOKIE}=$REFRESH\"   \
         # 204; TOKEN is then refused with TOKEN_REVOKED"
    );
}
