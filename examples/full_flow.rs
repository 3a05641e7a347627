//! The whole lifecycle of an access token, as the JWT guides describe it: log in with a
//! password, use a token bound to the device and the client address, step up with a TOTP
//! second factor for the admin route.
//!
//! ```text
//! cargo run --example full_flow
//! TRUSTED_PROXIES=127.0.0.1/32 cargo run --example full_flow   # behind a local reverse proxy
//! ```
//!
//! Demo user **`alice`**, password **`alice-password`**, TOTP secret (base32)
//! **`JBSWY3DPEHPK3PXP`** (add it to an authenticator app, or compute a code with
//! `oathtool --totp -b JBSWY3DPEHPK3PXP`). The start-up banner repeats them.
//!
//! | route | behaviour |
//! |---|---|
//! | `POST /auth/login` `{"username","password"}` | 200 `{"access_token","token_type":"Bearer","expires_in"}`; bad credentials 401; more than 5 failures per client IP in 15 minutes 429 |
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
//! Refresh tokens (`POST /auth/refresh`, a rotated `HttpOnly` cookie) and logout
//! (`POST /auth/logout`) belong to the revocation feature; they add their stores to
//! [`AppState`] and their routes to [`auth_routes`].

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
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use totp_rs::{Secret, Totp};
use tower_jwt_guard::binding::{ClientIpBinding, DeviceFingerprint, RequestHead, TrustedProxies};
use tower_jwt_guard::issue::{MintedToken, TokenIssuer};
use tower_jwt_guard::{AuthContext, Claims, JwtAuth, RequireMfa, RequiredClaim};

use support::Settings;

/// The demo account, as stated in the docs and the banner.
pub const DEMO_USER: &str = "alice";
/// The demo account's password.
pub const DEMO_PASSWORD: &str = "alice-password";
/// The demo account's TOTP secret, base32 (RFC 6238: SHA-1, 6 digits, 30 s).
pub const DEMO_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";

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

/// Everything the handlers share. The revocation feature adds its stores here (a refresh-token
/// store and the revocation store the layer consults).
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

/// The OAuth-style answer with a fresh access token (and any cookie a binding needs).
fn token_response(minted: MintedToken) -> Response {
    let body = json!({
        "access_token": minted.token,
        "token_type": "Bearer",
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
    // The token is bound to this request's device fingerprint and client IP.
    let minted = state.issuer.mint_for_with(&parts, &username, &account.profile, |claims| {
        claims.insert("amr".into(), json!(["pwd"]));
        claims.insert("auth_time".into(), json!(now));
    });
    // The revocation feature sets the refresh-token cookie here.
    match minted {
        Ok(minted) => token_response(minted),
        Err(err) => {
            tracing::warn!(%err, "cannot mint a token");
            error(StatusCode::BAD_REQUEST, "CANNOT_BIND", "the token cannot be bound to this client")
        }
    }
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
    match state.issuer.step_up(&parts, &context, &account.profile, "otp") {
        Ok(minted) => token_response(minted),
        Err(err) => {
            tracing::warn!(%err, "cannot mint a token");
            error(StatusCode::BAD_REQUEST, "CANNOT_BIND", "the token cannot be bound to this client")
        }
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

/// The layer's configuration: the settings' keys, `sub` and `jti` required, and the two
/// bindings every token carries.
pub fn auth(settings: &Settings, proxies: &TrustedProxies) -> JwtAuth {
    settings
        .auth_builder()
        .require([RequiredClaim::Exp, RequiredClaim::Sub, RequiredClaim::Jti])
        .binding(DeviceFingerprint::new())
        .binding(ClientIpBinding::new().trusted_proxies(proxies.clone()))
        .build()
        .unwrap_or_else(|err| support::fail("configuration", err))
}

/// The routes that speak about tokens: login and step-up (refresh and logout join them).
fn auth_routes(auth: &JwtAuth) -> Router<Arc<AppState>> {
    Router::new()
        .route("/auth/mfa/verify", post(verify_mfa))
        .route_layer(auth.layer::<User>())
        .route("/auth/login", post(login))
}

/// The whole application.
pub fn app(settings: &Settings, proxies: TrustedProxies) -> Router {
    let auth = auth(settings, &proxies);
    let Some(issuer) = settings.token_issuer_builder() else {
        support::fail(
            settings.key_variable(),
            "full_flow signs its own tokens: set JWT_SECRET, or nothing for a random secret",
        )
    };
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
    let app = app(&settings, proxies);

    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .unwrap_or_else(|err| support::fail("BIND", format!("cannot listen on {}: {err}", settings.bind)));
    let addr = listener.local_addr().unwrap_or(settings.bind);
    println!("full_flow listening on http://{addr} ({})", settings.describe_keys());
    println!("  demo user: {DEMO_USER} / {DEMO_PASSWORD}, TOTP secret (base32) {DEMO_TOTP_SECRET}");
    println!("  trusted proxies: {described_proxies}");
    println!("  curl -i http://{addr}/health");
    println!(
        "  TOKEN=$(curl -s http://{addr}/auth/login -H 'content-type: application/json' \
         -d '{{\"username\":\"{DEMO_USER}\",\"password\":\"{DEMO_PASSWORD}\"}}' | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')"
    );
    println!("  curl -i http://{addr}/protected -H \"Authorization: Bearer $TOKEN\"");
    println!("  curl -i http://{addr}/admin -H \"Authorization: Bearer $TOKEN\"   # 401: step-up challenge");
    println!(
        "  curl -i http://{addr}/auth/mfa/verify -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \
         -d \"{{\\\"code\\\":\\\"$(oathtool --totp -b {DEMO_TOTP_SECRET})\\\"}}\"   # the new token passes /admin"
    );

    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(err) = axum::serve(listener, service).with_graceful_shutdown(support::shutdown_signal()).await
    {
        support::fail("server", err);
    }
}
