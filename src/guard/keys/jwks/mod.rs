//! [`JwksKeys`]: keys fetched from a JWKS URL (or found by OIDC discovery), rotated without a
//! restart, and survived through outages (feature `jwks`). The parts: `fetch` (HTTP with a timeout
//! and a size cap), `key_set` (which JWKs are usable), `oidc` (discovery), `error`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use reqwest::Url;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::{KeyLookup, KeySource};
use crate::error::ConfigError;

mod error;
mod fetch;
mod key_set;
mod oidc;

pub use error::JwksError;

use fetch::Fetcher;
use key_set::KeySet;

/// Refresh interval when the server sends no `Cache-Control: max-age`.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Shortest refresh interval a `max-age` can ask for.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Longest refresh interval a `max-age` can ask for.
pub const DEFAULT_MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// At most one refetch per this interval is triggered by tokens with an unknown `kid`.
pub const DEFAULT_UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(10);
/// How long after the last successful fetch the keys are still used while the endpoint is down.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(24 * 60 * 60);
/// First retry delay after a failed fetch (it doubles, up to [`DEFAULT_MAX_RETRY_INTERVAL`]).
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Longest retry delay after failed fetches.
pub const DEFAULT_MAX_RETRY_INTERVAL: Duration = Duration::from_secs(60);
/// Time limit of one HTTP request (connect, headers and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWKS or discovery document accepted.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 256 * 1024;

/// A [`KeySource`] that fetches keys from a JWKS endpoint and keeps them fresh.
///
/// - **Refresh**: a background task refetches the document when the server's
///   `Cache-Control: max-age` says (bounded by [`min_refresh_interval`](JwksKeysBuilder::min_refresh_interval)
///   and [`max_refresh_interval`](JwksKeysBuilder::max_refresh_interval)), or every
///   [`refresh_interval`](JwksKeysBuilder::refresh_interval) without one; after a failure it retries
///   with a growing delay.
/// - **Single flight**: however many requests miss at once, one fetch runs; they all wait for it.
/// - **Unknown `kid`**: a token naming a key not in the set triggers a refetch at most once per
///   [`unknown_kid_interval`](JwksKeysBuilder::unknown_kid_interval) (default 10 s), so a flood of
///   random kids cannot turn the service into a JWKS-fetching amplifier.
/// - **Outages**: a failed refresh keeps the last good keys, for at most
///   [`max_staleness`](JwksKeysBuilder::max_staleness) after the last successful fetch; then they are
///   dropped, and tokens they verified leave the verified-token cache too. A service that starts
///   while the endpoint is down (or whose keys went stale) answers 503 `AUTH_UNAVAILABLE` until keys
///   arrive. A fetch that never completes cannot hold requests: they wait at most twice the
///   [`timeout`](JwksKeysBuilder::timeout) plus one second, then get 503.
/// - **Withdrawn keys**: a well-formed JWKS whose keys are all unusable, or empty (`{"keys":[]}`),
///   is honoured: it replaces the keys held (a provider may withdraw a compromised key that way),
///   an error is logged, and tokens are refused with 401 until a usable key is published.
/// - **Rotation and the cache**: a key kept across refreshes stays the same `Arc`, so tokens it
///   verified stay cached; a retired key is dropped, and the tokens it verified leave the cache.
/// - **Safety**: `oct` (HMAC) keys are never taken from a JWKS, keys whose `use` is not `sig` are
///   skipped, each key is bound to its JWK's `alg` (or the one its type implies: RSA → `RS256`,
///   P-256 → `ES256`, P-384 → `ES384`, Ed25519 → `EdDSA`); a token with a `kid` only matches the key
///   of that id; a token without one matches the keys of its algorithm, tried in document order
///   (during a rotation without kids the old and the new key both verify; more than
///   [`MAX_KID_LESS_CANDIDATES`](crate::keys::MAX_KID_LESS_CANDIDATES) keys refuse the token).
///   Requests have a timeout, responses a size cap, and an https endpoint is never left for plain
///   http. A malformed document (not JSON, no `keys` array, too large) or an HTTP error keeps the
///   old keys.
/// - **Issuer**: a source made by [`JwksKeys::discover`] reports its issuer, and the layer then
///   accepts only tokens whose `iss` is that issuer (unless [`JwtAuthBuilder::issuer`] names others).
///
/// The background task runs on the tokio runtime that first uses the source (and starts again on
/// another one if that runtime shuts down); fetches run on the runtime of the request needing them.
/// Its algorithms are not known in advance, so [`JwtAuthBuilder::algorithms`] must name the
/// allow-list (or the source is given one with [`JwksKeysBuilder::algorithms`]).
///
/// A token signed with a published key is accepted, one with an unknown `kid` is refused:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
/// use axum::{body::Body, routing::get, Json, Router};
/// use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
/// use tower::ServiceExt;
/// use tower_jwt_guard::keys::JwksKeys;
/// use tower_jwt_guard::{Algorithm, JwtAuth};
///
/// // An identity provider publishing one Ed25519 key, on loopback.
/// let pair = Ed25519KeyPair::generate()?;
/// let x = B64.encode(pair.public_key().as_ref());
/// let jwks = serde_json::json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "kid": "2026-11", "x": x }] });
/// let idp = Router::new().route("/jwks.json", get(move || std::future::ready(Json(jwks.clone()))));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let url = format!("http://{}/jwks.json", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, idp).await });
///
/// // The service: keys from the JWKS, EdDSA allowed.
/// let keys = JwksKeys::builder(url).build()?;
/// let auth = JwtAuth::builder().key_source(keys).algorithms([Algorithm::EdDSA]).build()?;
/// let app = Router::new().route("/me", get(|| async { "hello" })).route_layer(auth.layer::<serde_json::Value>());
///
/// let token = |kid: &str| {
///     let header = B64.encode(format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#));
///     let claims = B64.encode(r#"{"sub":"alice","exp":4102444800}"#);
///     let signature = pair.sign(format!("{header}.{claims}").as_bytes());
///     format!("{header}.{claims}.{}", B64.encode(signature.as_ref()))
/// };
/// let get_me = |token: String| {
///     http::Request::get("/me").header("authorization", format!("Bearer {token}")).body(Body::empty())
/// };
/// let accepted = app.clone().oneshot(get_me(token("2026-11"))?).await?;
/// assert_eq!(accepted.status(), 200);
/// let refused = app.oneshot(get_me(token("unknown"))?).await?;
/// assert_eq!(refused.status(), 401);
/// # Ok(())
/// # }
/// ```
///
/// Configuration:
///
/// ```
/// use tower_jwt_guard::keys::JwksKeys;
/// use tower_jwt_guard::{Algorithm, ConfigError, JwtAuth};
///
/// let jwks = JwksKeys::builder("https://auth.example.com/.well-known/jwks.json").build()?;
/// let auth = JwtAuth::builder()
///     .key_source(jwks.clone())
///     .algorithms([Algorithm::RS256, Algorithm::ES256])
///     .issuer("https://auth.example.com/")
///     .build();
/// assert!(auth.is_ok());
///
/// // Without an allow-list the configuration is refused: a JWKS can hold any algorithm.
/// assert!(matches!(JwtAuth::builder().key_source(jwks).build(), Err(ConfigError::Invalid(_))));
///
/// // Only http(s) URLs.
/// assert!(JwksKeys::builder("file:///etc/jwks.json").build().is_err());
/// # Ok::<(), ConfigError>(())
/// ```
///
/// [`JwtAuthBuilder::algorithms`]: crate::JwtAuthBuilder::algorithms
/// [`JwtAuthBuilder::issuer`]: crate::JwtAuthBuilder::issuer
#[derive(Clone)]
pub struct JwksKeys {
    inner: Arc<Inner>,
}

/// Settings of a [`JwksKeys`] source; start with [`JwksKeys::builder`] or [`JwksKeys::discover`].
///
/// Its `Debug` shows the URL without credentials or query (either may hold a secret):
///
/// ```
/// let builder = tower_jwt_guard::keys::JwksKeys::builder("https://me:pw@auth.example.com/jwks?key=k1");
/// assert!(format!("{builder:?}").contains("https://auth.example.com/jwks"));
/// assert!(!format!("{builder:?}").contains("pw"));
/// ```
#[must_use]
pub struct JwksKeysBuilder {
    endpoint: Result<Endpoint, ConfigError>,
    settings: Settings,
}

/// What a [`JwksKeys`] source holds now, for health checks and logs.
///
/// ```
/// let jwks = tower_jwt_guard::keys::JwksKeys::builder("https://auth.example.com/jwks.json").build()?;
/// let status = jwks.status();
/// assert_eq!(status.keys, 0);
/// assert!(!status.usable);
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwksStatus {
    /// The number of usable keys held.
    pub keys: usize,
    /// Whether there are keys to use (fetched, not older than the maximum staleness, not empty).
    pub usable: bool,
    /// Time since the last successful fetch.
    pub age: Option<Duration>,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<JwksError>,
    /// JWKS documents requested so far.
    pub fetches: u64,
}

#[derive(Debug, Clone)]
enum Endpoint {
    Jwks(Url),
    Oidc { issuer: String, discovery: Url },
}

#[derive(Debug, Clone)]
struct Settings {
    refresh_interval: Duration,
    min_refresh_interval: Duration,
    max_refresh_interval: Duration,
    unknown_kid_interval: Duration,
    max_staleness: Duration,
    retry_interval: Duration,
    max_retry_interval: Duration,
    timeout: Duration,
    max_response_size: usize,
    algorithms: Option<Vec<Algorithm>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            max_refresh_interval: DEFAULT_MAX_REFRESH_INTERVAL,
            unknown_kid_interval: DEFAULT_UNKNOWN_KID_INTERVAL,
            max_staleness: DEFAULT_MAX_STALENESS,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            max_retry_interval: DEFAULT_MAX_RETRY_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            algorithms: None,
        }
    }
}

impl Settings {
    /// The refresh delay after a successful fetch: the server's `max-age` within the bounds.
    fn refresh_after(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.refresh_interval)
            .clamp(self.min_refresh_interval, self.max_refresh_interval.max(self.min_refresh_interval))
    }

    /// The retry delay after `failures` failed fetches in a row: doubling, bounded.
    fn retry_after(&self, failures: u32) -> Duration {
        let doubled = self.retry_interval.saturating_mul(1 << failures.saturating_sub(1).min(16));
        doubled.min(self.max_retry_interval)
    }
}

struct Inner {
    endpoint: Endpoint,
    settings: Settings,
    fetcher: Fetcher,
    loaded: RwLock<Loaded>,
    control: Mutex<Control>,
    /// Bumped after every fetch (success or failure): what waiting requests watch.
    completed: watch::Sender<u64>,
    /// Set while a background refresh task exists; cleared when that task ends or is dropped with
    /// its runtime, so the next lookup starts another.
    refresher_started: AtomicBool,
    fetches: AtomicU64,
}

#[derive(Default)]
struct Loaded {
    set: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
}

impl Loaded {
    /// The keys, unless none were fetched yet or they are older than `max_staleness`.
    fn usable(&self, max_staleness: Duration) -> Option<&KeySet> {
        let fresh_enough = self.fetched_at.is_some_and(|at| at.elapsed() <= max_staleness);
        self.set.as_deref().filter(|_| fresh_enough)
    }

    /// Whether a set is held that is too old to be used.
    fn holds_stale(&self, max_staleness: Duration) -> bool {
        self.set.is_some() && self.usable(max_staleness).is_none()
    }

    /// When the set held goes stale (just after `fetched_at + max_staleness`).
    fn stale_at(&self, max_staleness: Duration) -> Option<Instant> {
        self.set.as_ref()?;
        self.fetched_at?.checked_add(max_staleness)?.checked_add(Duration::from_millis(1))
    }
}

#[derive(Default)]
struct Control {
    in_flight: bool,
    last_on_demand: Option<Instant>,
    last_error: Option<JwksError>,
    failures: u32,
    next_refresh: Duration,
    /// The `jwks_uri` found by discovery (forgotten after a failed fetch, so it is looked up again).
    jwks_uri: Option<Url>,
}

/// How a request for a fetch was answered.
enum Start {
    /// A fetch started; the receiver sees it complete.
    Started(watch::Receiver<u64>),
    /// A fetch was already running; the receiver sees it complete.
    Joined(watch::Receiver<u64>),
    /// The unknown-kid rate limit refused a fetch.
    RateLimited,
    /// No tokio runtime to fetch on.
    NoRuntime,
}

impl fmt::Debug for JwksKeysBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = match &self.endpoint {
            Ok(Endpoint::Jwks(url)) => redacted(url),
            Ok(Endpoint::Oidc { discovery, .. }) => redacted(discovery),
            Err(_) => "(invalid)".to_owned(),
        };
        f.debug_struct("JwksKeysBuilder")
            .field("endpoint", &endpoint)
            .field("settings", &self.settings)
            .finish()
    }
}

impl JwksKeysBuilder {
    fn new(endpoint: Result<Endpoint, ConfigError>) -> Self {
        JwksKeysBuilder { endpoint, settings: Settings::default() }
    }

    /// Refresh interval when the server sends no `Cache-Control: max-age` (default 5 minutes).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.settings.refresh_interval = interval;
        self
    }

    /// Shortest refresh interval a `max-age` (or `no-cache`) can ask for (default 30 s).
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.settings.min_refresh_interval = interval;
        self
    }

    /// Longest refresh interval a `max-age` can ask for (default 1 hour).
    pub fn max_refresh_interval(mut self, interval: Duration) -> Self {
        self.settings.max_refresh_interval = interval;
        self
    }

    /// At most one refetch per `interval` is triggered by tokens whose `kid` is unknown, and by
    /// requests while no keys are held (default 10 s; must be positive).
    pub fn unknown_kid_interval(mut self, interval: Duration) -> Self {
        self.settings.unknown_kid_interval = interval;
        self
    }

    /// How long after the last successful fetch the keys are still used while the endpoint fails
    /// (default 24 hours). Past it, requests are refused with 503 until a fetch succeeds.
    pub fn max_staleness(mut self, staleness: Duration) -> Self {
        self.settings.max_staleness = staleness;
        self
    }

    /// Delay before the first retry after a failed fetch (default 1 s); it doubles with each
    /// failure up to `max` (default 60 s).
    pub fn retry_interval(mut self, first: Duration, max: Duration) -> Self {
        self.settings.retry_interval = first;
        self.settings.max_retry_interval = max;
        self
    }

    /// Time limit of one HTTP request, body included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Largest document accepted, in bytes (default 256 KiB).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.settings.max_response_size = bytes;
        self
    }

    /// Use only keys bound to these (asymmetric) algorithms; other keys in the JWKS are skipped.
    /// The source then reports them, so the layer's allow-list may be left to default to them.
    ///
    /// ```
    /// use tower_jwt_guard::keys::JwksKeys;
    /// use tower_jwt_guard::{Algorithm, JwtAuth};
    ///
    /// let jwks = JwksKeys::builder("https://auth.example.com/jwks.json")
    ///     .algorithms([Algorithm::ES256])
    ///     .build()?;
    /// assert!(JwtAuth::builder().key_source(jwks).build().is_ok());
    ///
    /// // HMAC is never taken from a JWKS.
    /// assert!(JwksKeys::builder("https://auth.example.com/jwks.json")
    ///     .algorithms([Algorithm::HS256])
    ///     .build()
    ///     .is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.settings.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Checks the settings, prepares the HTTP client (rustls) and, inside a tokio runtime,
    /// starts the background refresh (otherwise it starts with the first lookup).
    pub fn build(self) -> Result<JwksKeys, ConfigError> {
        let endpoint = self.endpoint?;
        let settings = self.settings;
        if settings.unknown_kid_interval.is_zero() {
            return Err(ConfigError::Invalid("the unknown-kid refetch interval must be positive"));
        }
        if settings.timeout.is_zero() || settings.max_response_size == 0 {
            return Err(ConfigError::Invalid("the JWKS timeout and response size cap must be positive"));
        }
        if settings.min_refresh_interval > settings.max_refresh_interval {
            return Err(ConfigError::Invalid("the minimum refresh interval exceeds the maximum"));
        }
        if let Some(algorithms) = &settings.algorithms {
            if algorithms.is_empty() {
                return Err(ConfigError::NoAlgorithms);
            }
            if let Some(alg) = algorithms.iter().find(|alg| alg.family() == AlgorithmFamily::Hmac) {
                return Err(ConfigError::KeyAlgorithmMismatch { algorithm: *alg });
            }
        }
        // An endpoint reached over TLS is never left for plain HTTP (redirects, jwks_uri).
        let https_only = match &endpoint {
            Endpoint::Jwks(url) | Endpoint::Oidc { discovery: url, .. } => url.scheme() == "https",
        };
        let fetcher = Fetcher::new(settings.timeout, settings.max_response_size, https_only)
            .map_err(|_| ConfigError::Invalid("the HTTP client for JWKS could not be set up"))?;
        let inner = Arc::new(Inner {
            endpoint,
            settings,
            fetcher,
            loaded: RwLock::new(Loaded::default()),
            control: Mutex::new(Control::default()),
            completed: watch::channel(0).0,
            refresher_started: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
        });
        inner.ensure_refresher();
        Ok(JwksKeys { inner })
    }
}

impl JwksKeys {
    /// A source reading the JWKS at `url` (http or https).
    pub fn builder(url: impl AsRef<str>) -> JwksKeysBuilder {
        let endpoint = match Url::parse(url.as_ref()) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(Endpoint::Jwks(url)),
            Ok(_) => Err(ConfigError::Invalid("the JWKS URL must be an http(s) URL")),
            Err(_) => Err(ConfigError::Invalid("the JWKS URL is not a URL")),
        };
        JwksKeysBuilder::new(endpoint)
    }

    /// A source that finds the JWKS by OIDC discovery: it reads
    /// `{issuer}/.well-known/openid-configuration`, checks that the document names exactly this
    /// issuer, and uses its `jwks_uri`. Discovery is retried like a fetch while the issuer is down.
    ///
    /// The source reports the issuer ([`KeySource::issuer`]), so a layer built with it accepts only
    /// tokens whose `iss` is exactly this issuer, unless
    /// [`JwtAuthBuilder::issuer`](crate::JwtAuthBuilder::issuer) names the accepted issuers itself.
    ///
    /// ```
    /// use tower_jwt_guard::keys::JwksKeys;
    ///
    /// let keys = JwksKeys::discover("https://accounts.example.com").build()?;
    /// assert_eq!(keys.issuer(), Some("https://accounts.example.com"));
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn discover(issuer: impl Into<String>) -> JwksKeysBuilder {
        let issuer = issuer.into();
        let endpoint = oidc::discovery_url(&issuer)
            .map(|discovery| Endpoint::Oidc { issuer, discovery })
            .map_err(ConfigError::Invalid);
        JwksKeysBuilder::new(endpoint)
    }

    /// The issuer, for a source made by [`JwksKeys::discover`].
    pub fn issuer(&self) -> Option<&str> {
        match &self.inner.endpoint {
            Endpoint::Oidc { issuer, .. } => Some(issuer),
            Endpoint::Jwks(_) => None,
        }
    }

    /// Fetches the document now (joining no fetch that started earlier) and returns the number of
    /// usable keys, or why the fetch failed (the previous keys are then kept).
    ///
    /// Not rate limited: meant for start-up, admin endpoints and tests, not for the request path.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        loop {
            match self.inner.start_fetch(false) {
                Start::Started(started) => {
                    if !self.inner.wait_for(started).await {
                        return Err(JwksError::Request("the fetch did not finish in time".into()));
                    }
                    break;
                }
                Start::Joined(earlier) => {
                    if !self.inner.wait_for(earlier).await {
                        return Err(JwksError::Request("a running fetch did not finish in time".into()));
                    }
                }
                Start::RateLimited | Start::NoRuntime => return Err(JwksError::NoRuntime),
            }
        }
        let last_error = self.inner.control().last_error.clone();
        match last_error {
            Some(err) => Err(err),
            None => Ok(self.status().keys),
        }
    }

    /// What the source holds now.
    pub fn status(&self) -> JwksStatus {
        let inner = &self.inner;
        let (keys, usable, age) = {
            let loaded = inner.loaded();
            let usable = loaded.usable(inner.settings.max_staleness).is_some_and(|set| set.len() > 0);
            (loaded.set.as_ref().map_or(0, |set| set.len()), usable, loaded.fetched_at.map(|at| at.elapsed()))
        };
        JwksStatus {
            keys,
            usable,
            age,
            last_error: inner.control().last_error.clone(),
            fetches: inner.fetches.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for JwksKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = match &self.inner.endpoint {
            Endpoint::Jwks(url) => redacted(url),
            Endpoint::Oidc { issuer, .. } => issuer.clone(),
        };
        f.debug_struct("JwksKeys").field("endpoint", &endpoint).field("status", &self.status()).finish()
    }
}

/// A URL without credentials or query (either may hold a secret), for logs and `Debug`.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

impl KeySource for JwksKeys {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let inner = &self.inner;
        inner.ensure_refresher();
        let (held, stale) = {
            let loaded = inner.loaded();
            match loaded.usable(inner.settings.max_staleness) {
                Some(set) => match set.find(kid, alg) {
                    KeyLookup::Unknown => (true, false),
                    found => return found,
                },
                None => (false, loaded.set.is_some()),
            }
        };
        if stale {
            inner.drop_if_stale();
        }
        // An unknown kid, or no usable keys: fetch (rate limited), or wait for the running fetch.
        match inner.start_fetch(true) {
            Start::Started(done) | Start::Joined(done) => {
                let kid = kid.map(str::to_owned);
                KeyLookup::Pending(Box::pin(Arc::clone(inner).answer_after(done, kid, alg)))
            }
            Start::RateLimited if held => KeyLookup::Unknown,
            Start::RateLimited | Start::NoRuntime => KeyLookup::Unavailable,
        }
    }

    fn algorithms(&self) -> Option<Vec<Algorithm>> {
        self.inner.settings.algorithms.clone()
    }

    fn issuer(&self) -> Option<&str> {
        JwksKeys::issuer(self)
    }
}

impl Inner {
    fn loaded(&self) -> RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the background refresh on the current tokio runtime (if any), unless it runs: once,
    /// and again after the runtime it ran on shut down.
    fn ensure_refresher(self: &Arc<Self>) {
        if self.refresher_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = Handle::try_current() else { return };
        if !self.refresher_started.swap(true, Ordering::AcqRel) {
            // Moved into the task: dropped when it ends, even if it is dropped before it ever runs.
            let running = RefresherRunning(Arc::downgrade(self));
            runtime.spawn(refresh_loop(Arc::downgrade(self), running));
        }
    }

    /// Drops a set older than `max_staleness`, so its keys' `Arc`s die and the tokens they verified
    /// leave the verified-token cache (which is consulted before any lookup).
    fn drop_if_stale(&self) {
        let max_staleness = self.settings.max_staleness;
        if !self.loaded().holds_stale(max_staleness) {
            return;
        }
        let stale = {
            let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
            if !loaded.holds_stale(max_staleness) {
                return;
            }
            loaded.set.take()
        };
        tracing::error!(
            target: "tower_jwt_guard",
            ?max_staleness,
            "JWKS keys dropped: no successful fetch within the maximum staleness; requests are refused (503)"
        );
        drop(stale);
    }

    /// Waits for the fetch `done` watches, at most as long as a fetch can take (discovery and JWKS
    /// requests, each within the timeout) plus a margin. Whether it completed.
    async fn wait_for(&self, mut done: watch::Receiver<u64>) -> bool {
        let longest = self.settings.timeout.saturating_mul(2).saturating_add(Duration::from_secs(1));
        matches!(tokio::time::timeout(longest, done.changed()).await, Ok(Ok(())))
    }

    /// Starts a fetch unless one is running (single flight); `on_demand` fetches (triggered by
    /// requests) are rate limited.
    fn start_fetch(self: &Arc<Self>, on_demand: bool) -> Start {
        let Ok(runtime) = Handle::try_current() else { return Start::NoRuntime };
        let done = self.completed.subscribe();
        let mut control = self.control();
        if control.in_flight {
            return Start::Joined(done);
        }
        if on_demand {
            let now = Instant::now();
            let interval = self.settings.unknown_kid_interval;
            if control.last_on_demand.is_some_and(|last| now.duration_since(last) < interval) {
                return Start::RateLimited;
            }
            control.last_on_demand = Some(now);
        }
        control.in_flight = true;
        drop(control);
        // Moved into the task: whatever becomes of it, the flag is cleared and waiters are woken.
        let in_flight = InFlight { source: Arc::clone(self), finished: false };
        runtime.spawn(Arc::clone(self).run_fetch(in_flight));
        Start::Started(done)
    }

    /// One fetch, run as its own task so a client going away does not cancel it.
    async fn run_fetch(self: Arc<Self>, mut in_flight: InFlight) {
        let result = self.fetch().await;
        let kept = self.loaded().set.as_ref().map_or(0, |set| set.len());
        {
            let mut control = self.control();
            match result {
                Ok((keys, refresh_after)) => {
                    tracing::debug!(target: "tower_jwt_guard", keys, ?refresh_after, "JWKS fetched");
                    control.last_error = None;
                    control.failures = 0;
                    control.next_refresh = refresh_after;
                }
                Err(err @ JwksError::NoUsableKeys { .. }) => {
                    tracing::error!(
                        target: "tower_jwt_guard",
                        error = %err,
                        "the JWKS holds no usable key; the keys held before are withdrawn, tokens are refused (401)"
                    );
                    control.last_error = Some(err);
                    control.failures = control.failures.saturating_add(1);
                }
                Err(err) if kept == 0 => {
                    tracing::warn!(
                        target: "tower_jwt_guard",
                        error = %err,
                        "JWKS fetch failed; no keys yet, requests are refused (503) until a fetch succeeds"
                    );
                    control.last_error = Some(err);
                    control.failures = control.failures.saturating_add(1);
                }
                Err(err) => {
                    tracing::warn!(
                        target: "tower_jwt_guard",
                        error = %err,
                        kept,
                        "JWKS fetch failed; the last good keys stay in use"
                    );
                    control.last_error = Some(err);
                    control.failures = control.failures.saturating_add(1);
                }
            }
        }
        in_flight.finished = true;
        drop(in_flight);
    }

    /// Discovery (if needed), GET, parse, swap the key set. Returns the number of keys and when
    /// to refresh next.
    async fn fetch(&self) -> Result<(usize, Duration), JwksError> {
        let url = match &self.endpoint {
            Endpoint::Jwks(url) => url.clone(),
            Endpoint::Oidc { issuer, discovery } => {
                let known = self.control().jwks_uri.clone();
                match known {
                    Some(url) => url,
                    None => {
                        let url = oidc::discover(&self.fetcher, issuer, discovery).await?;
                        self.control().jwks_uri = Some(url.clone());
                        url
                    }
                }
            }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = match self.fetcher.get(&url).await {
            Ok(fetched) => fetched,
            Err(err) => {
                self.control().jwks_uri = None;
                return Err(err);
            }
        };
        let previous = self.loaded().set.clone();
        let set = KeySet::parse(&fetched.body, previous.as_deref(), self.settings.algorithms.as_deref())?;
        let (keys, skipped) = (set.len(), set.skipped());
        {
            let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
            loaded.set = Some(Arc::new(set));
            loaded.fetched_at = Some(Instant::now());
        }
        // The old set (and with it every retired key) is dropped here. A well-formed document
        // without usable keys is honoured too: the provider may have withdrawn a compromised key.
        drop(previous);
        if keys == 0 {
            return Err(JwksError::NoUsableKeys { skipped });
        }
        Ok((keys, self.settings.refresh_after(fetched.max_age)))
    }

    /// The answer for a request that waited for a fetch. Never fetches again.
    async fn answer_after(
        self: Arc<Self>,
        done: watch::Receiver<u64>,
        kid: Option<String>,
        alg: Algorithm,
    ) -> KeyLookup {
        if !self.wait_for(done).await {
            return KeyLookup::Unavailable;
        }
        let loaded = self.loaded();
        match loaded.usable(self.settings.max_staleness) {
            Some(set) => set.find(kid.as_deref(), alg),
            None => KeyLookup::Unavailable,
        }
    }

    /// The delay before the next background fetch.
    fn next_delay(&self) -> Duration {
        let control = self.control();
        match control.last_error {
            None => control.next_refresh,
            Some(_) => self.settings.retry_after(control.failures),
        }
    }
}

/// Clears `in_flight` and wakes the waiters when a fetch task ends, or is dropped unfinished
/// (its runtime shut down): a fetch that never completes must not hold the source forever.
struct InFlight {
    source: Arc<Inner>,
    finished: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut control = self.source.control();
            if !self.finished {
                control.last_error = Some(JwksError::Request("the fetch was cancelled".into()));
                control.failures = control.failures.saturating_add(1);
            }
            control.in_flight = false;
        }
        self.source.completed.send_modify(|generation| *generation = generation.wrapping_add(1));
    }
}

/// Clears `refresher_started` when the refresh task ends or is dropped with its runtime.
struct RefresherRunning(Weak<Inner>);

impl Drop for RefresherRunning {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.refresher_started.store(false, Ordering::Release);
        }
    }
}

/// The background refresh: fetch, sleep as long as the answer stays fresh, again; and drop the
/// keys when they pass `max_staleness`. It holds only a weak reference while sleeping, and ends
/// when the source is dropped.
async fn refresh_loop(source: Weak<Inner>, _running: RefresherRunning) {
    let mut next_fetch = Instant::now();
    loop {
        let wake = {
            let Some(inner) = source.upgrade() else { return };
            inner.drop_if_stale();
            if Instant::now() >= next_fetch {
                match inner.start_fetch(false) {
                    Start::Started(done) | Start::Joined(done) => {
                        // A fetch that overran its time limit is waited for again on the next round.
                        inner.wait_for(done).await;
                    }
                    Start::RateLimited | Start::NoRuntime => return,
                }
                inner.drop_if_stale();
                let delay = inner.next_delay();
                next_fetch = Instant::now().checked_add(delay).unwrap_or_else(far_future);
            }
            let stale_at = inner.loaded().stale_at(inner.settings.max_staleness);
            stale_at.map_or(next_fetch, |stale_at| stale_at.min(next_fetch))
        };
        tokio::time::sleep_until(wake.into()).await;
    }
}

/// A wake-up time that never comes in practice (for delays that overflow `Instant`).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 60 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_bounded() {
        let settings = Settings {
            min_refresh_interval: Duration::from_secs(30),
            max_refresh_interval: Duration::from_secs(3600),
            refresh_interval: Duration::from_secs(300),
            ..Settings::default()
        };
        assert_eq!(settings.refresh_after(None), Duration::from_secs(300));
        assert_eq!(settings.refresh_after(Some(Duration::ZERO)), Duration::from_secs(30));
        assert_eq!(settings.refresh_after(Some(Duration::from_secs(600))), Duration::from_secs(600));
        assert_eq!(settings.refresh_after(Some(Duration::from_secs(86_400))), Duration::from_secs(3600));
    }

    #[test]
    fn retries_back_off_up_to_the_maximum() {
        let settings = Settings::default();
        assert_eq!(settings.retry_after(1), Duration::from_secs(1));
        assert_eq!(settings.retry_after(2), Duration::from_secs(2));
        assert_eq!(settings.retry_after(4), Duration::from_secs(8));
        assert_eq!(settings.retry_after(40), DEFAULT_MAX_RETRY_INTERVAL);
    }

    #[test]
    fn debug_hides_credentials_in_the_url() {
        let keys =
            JwksKeys::builder("https://user:secret@auth.example.com/jwks?api_key=secret").build().unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("auth.example.com/jwks"));
    }

    #[test]
    fn builder_debug_hides_credentials_in_the_url() {
        let builder = JwksKeys::builder("https://user:secret@auth.example.com/jwks?api_key=secret#secret")
            .timeout(Duration::from_secs(3));
        let shown = format!("{builder:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("user"), "{shown}");
        assert!(shown.contains("https://auth.example.com/jwks"), "{shown}");
        assert!(shown.contains("3s"), "{shown}");
        let discovered = format!("{:?}", JwksKeys::discover("https://u:secret@idp.example.com/realm"));
        assert!(!discovered.contains("secret"), "{discovered}");
        assert!(discovered.contains("idp.example.com/realm"), "{discovered}");
    }

    #[test]
    fn settings_are_checked() {
        let url = "https://auth.example.com/jwks";
        assert!(JwksKeys::builder(url).unknown_kid_interval(Duration::ZERO).build().is_err());
        assert!(JwksKeys::builder(url).max_response_size(0).build().is_err());
        assert!(JwksKeys::builder(url)
            .min_refresh_interval(Duration::from_secs(10))
            .max_refresh_interval(Duration::from_secs(1))
            .build()
            .is_err());
        assert!(JwksKeys::builder("not a url").build().is_err());
        assert!(JwksKeys::discover("ftp://auth.example.com").build().is_err());
    }
}
