//! The state of a [`JwksKeys`] source (the key set held, the fetch bookkeeping) and the lookup
//! decisions: answer from the keys held, or wait for a fetch.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::watch;

use super::builder::{redacted, Endpoint, Settings};
use super::fetch::Fetcher;
use super::key_set::KeySet;
use super::refresher::{Wait, Waiting};
use super::JwksError;
use crate::guard::keys::{KeyLookup, KeySource};
use crate::guard::observe::metrics::{JwksMetrics, Refetch};
use crate::guard::observe::readiness::Readiness;
use crate::primitives::algorithm::Algorithm;

/// A [`KeySource`] that fetches keys from a JWKS endpoint and keeps them fresh.
///
/// - **Refresh**: a background task refetches the document when the server's
///   `Cache-Control: max-age` says (bounded by
///   [`min_refresh_interval`](super::JwksKeysBuilder::min_refresh_interval) and
///   [`max_refresh_interval`](super::JwksKeysBuilder::max_refresh_interval)), or every
///   [`refresh_interval`](super::JwksKeysBuilder::refresh_interval) without one; after a failure it
///   retries with a growing delay.
/// - **Single flight**: however many requests miss at once, one fetch runs.
/// - **Known `kid`**: a token whose key is held is answered from memory at once, even while a
///   fetch runs or hangs.
/// - **Unknown `kid`**: a token naming a key not in the set triggers a refetch at most once per
///   [`unknown_kid_interval`](super::JwksKeysBuilder::unknown_kid_interval) (default 10 s), so a
///   flood of random kids cannot turn the service into a JWKS-fetching amplifier. The requests
///   that arrive while that refetch runs may wait for it, at most
///   [`max_waiting_requests`](super::JwksKeysBuilder::max_waiting_requests) of them (default 128),
///   each at most the [`timeout`](super::JwksKeysBuilder::timeout) from when it began waiting;
///   every other request with an unknown `kid` is refused at once (`INVALID_TOKEN`), and so is one
///   arriving while a fetch runs that no request triggered (a background refresh or retry).
/// - **Outages**: a failed refresh keeps the last good keys, for at most
///   [`max_staleness`](super::JwksKeysBuilder::max_staleness) after the last successful fetch; then
///   they are dropped, and tokens they verified leave the verified-token cache too. A service that
///   starts while the endpoint is down (or whose keys went stale) answers 503 `AUTH_UNAVAILABLE`
///   until keys arrive (under the same limits: the cold-start requests wait for the first fetch,
///   at most the cap of them, each at most the timeout; the others get 503 at once). A hung or
///   slowloris endpoint thus holds at most the cap of requests, each at most the timeout.
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
///   [`MAX_KID_LESS_CANDIDATES`](crate::guard::keys::MAX_KID_LESS_CANDIDATES) keys refuse the token).
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
/// [`JwksKeysBuilder::algorithms`]: super::JwksKeysBuilder::algorithms
#[derive(Clone)]
pub struct JwksKeys {
    pub(super) inner: Arc<Inner>,
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
    /// Requests waiting for a fetch now (at most
    /// [`max_waiting_requests`](super::JwksKeysBuilder::max_waiting_requests)).
    pub waiting: usize,
}

pub(super) struct Inner {
    pub(super) endpoint: Endpoint,
    pub(super) settings: Settings,
    pub(super) fetcher: Fetcher,
    pub(super) loaded: RwLock<Loaded>,
    pub(super) control: Mutex<Control>,
    /// Bumped after every fetch (success or failure): what waiting requests watch.
    pub(super) completed: watch::Sender<u64>,
    /// Set while a background refresh task exists; cleared when that task ends or is dropped with
    /// its runtime, so the next lookup starts another.
    pub(super) refresher_started: AtomicBool,
    pub(super) fetches: AtomicU64,
    /// Labelled with the endpoint (without credentials) or the issuer.
    pub(super) metrics: JwksMetrics,
}

#[derive(Default)]
pub(super) struct Loaded {
    pub(super) set: Option<Arc<KeySet>>,
    pub(super) fetched_at: Option<Instant>,
}

impl Loaded {
    /// The keys, unless none were fetched yet or they are older than `max_staleness`.
    pub(super) fn usable(&self, max_staleness: Duration) -> Option<&KeySet> {
        let fresh_enough = self.fetched_at.is_some_and(|at| at.elapsed() <= max_staleness);
        self.set.as_deref().filter(|_| fresh_enough)
    }

    /// Whether a set is held that is too old to be used.
    fn holds_stale(&self, max_staleness: Duration) -> bool {
        self.set.is_some() && self.usable(max_staleness).is_none()
    }

    /// When the set held goes stale (just after `fetched_at + max_staleness`).
    pub(super) fn stale_at(&self, max_staleness: Duration) -> Option<Instant> {
        self.set.as_ref()?;
        self.fetched_at?.checked_add(max_staleness)?.checked_add(Duration::from_millis(1))
    }
}

#[derive(Default)]
pub(super) struct Control {
    pub(super) in_flight: bool,
    pub(super) last_on_demand: Option<Instant>,
    pub(super) last_error: Option<JwksError>,
    pub(super) failures: u32,
    pub(super) next_refresh: Duration,
    /// Fetches started so far: the id of the running fetch, while `in_flight`.
    pub(super) fetches_started: u64,
    /// The fetch the unknown-kid rate limit last granted to requests (started, or joined, by the
    /// request that opened the interval): requests may wait for that one only.
    pub(super) granted_fetch: Option<u64>,
    /// Requests waiting for a fetch now.
    pub(super) waiting: usize,
    /// The `jwks_uri` found by discovery (forgotten after a failed fetch, so it is looked up again).
    pub(super) jwks_uri: Option<Url>,
}

impl Control {
    /// Marks a fetch as running; the caller spawns it.
    pub(super) fn start(&mut self) {
        self.in_flight = true;
        self.fetches_started = self.fetches_started.wrapping_add(1);
    }
}

impl JwksKeys {
    /// The issuer, for a source made by [`JwksKeys::discover`].
    pub fn issuer(&self) -> Option<&str> {
        match &self.inner.endpoint {
            Endpoint::Oidc { issuer, .. } => Some(issuer),
            Endpoint::Jwks(_) => None,
        }
    }

    /// Why the last fetch failed, when no usable keys are held and no fetch runs: a source that
    /// cannot answer until a later fetch succeeds.
    pub(crate) fn failure_without_keys(&self) -> Option<JwksError> {
        if self.inner.loaded().usable(self.inner.settings.max_staleness).is_some() {
            return None;
        }
        let control = self.inner.control();
        if control.in_flight {
            return None;
        }
        control.last_error.clone()
    }

    /// The source's HTTP client (a handle on its connection pool), for
    /// [`JwksKeysBuilder::http_client`](super::JwksKeysBuilder::http_client).
    pub(crate) fn http_client(&self) -> reqwest::Client {
        self.inner.fetcher.client().clone()
    }

    /// Whether both are the same source (clones of one).
    pub(crate) fn same_source(&self, other: &JwksKeys) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// What the source holds now.
    pub fn status(&self) -> JwksStatus {
        let inner = &self.inner;
        let (keys, usable, age) = {
            let loaded = inner.loaded();
            let usable = loaded.usable(inner.settings.max_staleness).is_some_and(|set| set.len() > 0);
            (loaded.set.as_ref().map_or(0, |set| set.len()), usable, loaded.fetched_at.map(|at| at.elapsed()))
        };
        let (last_error, waiting) = {
            let control = inner.control();
            (control.last_error.clone(), control.waiting)
        };
        JwksStatus { keys, usable, age, last_error, fetches: inner.fetches.load(Ordering::Relaxed), waiting }
    }
}

/// The answer of [`JwksKeys::lookup_jwk`]: the JWKs of a `kid` (one, or several sharing it),
/// under the rules of a token's key.
pub(crate) enum JwkLookup {
    Found(Vec<serde_json::Value>),
    Unknown,
    Unavailable,
    Pending(futures_util::future::BoxFuture<'static, JwkLookup>),
}

impl JwksKeys {
    /// The JWK of the usable key `kid` (for HTTP message signatures), with the rules of
    /// [`KeySource::lookup`]: held keys answer at once; an unknown `kid`, or no keys, may wait for
    /// a fetch under the unknown-kid rate limit and the cap on waiters; no keys ever loaded (or
    /// stale ones) is [`JwkLookup::Unavailable`].
    pub(crate) fn lookup_jwk(&self, kid: &str) -> JwkLookup {
        let inner = &self.inner;
        inner.ensure_refresher();
        let (held, stale) = {
            let loaded = inner.loaded();
            match loaded.usable(inner.settings.max_staleness) {
                Some(set) => match set.find_jwks(kid) {
                    jwks if !jwks.is_empty() => return JwkLookup::Found(jwks),
                    _ => (true, false),
                },
                None => (false, loaded.set.is_some()),
            }
        };
        if stale {
            inner.drop_if_stale();
        }
        match inner.wait_for_fetch() {
            Wait::For(mut done, waiting) => {
                inner.metrics.refetch(if waiting.started { Refetch::Triggered } else { Refetch::Joined });
                let (inner, kid) = (Arc::clone(inner), kid.to_owned());
                JwkLookup::Pending(Box::pin(async move {
                    let _ = tokio::time::timeout(inner.settings.timeout, done.changed()).await;
                    drop(waiting);
                    let loaded = inner.loaded();
                    match loaded.usable(inner.settings.max_staleness) {
                        Some(set) => match set.find_jwks(&kid) {
                            jwks if jwks.is_empty() => JwkLookup::Unknown,
                            jwks => JwkLookup::Found(jwks),
                        },
                        None => JwkLookup::Unavailable,
                    }
                }))
            }
            Wait::RateLimited | Wait::Full | Wait::NoRuntime if held => JwkLookup::Unknown,
            _ => JwkLookup::Unavailable,
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
        // An unknown kid, or no usable keys: wait for a fetch if the limits allow it, or answer now.
        let refused = match inner.wait_for_fetch() {
            Wait::For(done, waiting) => {
                inner.metrics.refetch(if waiting.started { Refetch::Triggered } else { Refetch::Joined });
                let kid = kid.map(str::to_owned);
                return KeyLookup::Pending(Box::pin(Arc::clone(inner).answer_after(done, waiting, kid, alg)));
            }
            Wait::RateLimited => {
                inner.metrics.refetch(Refetch::RateLimited);
                "no refetch before the unknown-kid interval has passed"
            }
            Wait::Full => {
                inner.metrics.refetch(Refetch::QueueFull);
                "the cap on requests waiting for a fetch is reached"
            }
            Wait::NoRuntime => "no tokio runtime to fetch on",
        };
        tracing::debug!(target: "tower_jwt_guard", held, refused, "JWKS key lookup answered without a fetch");
        if held {
            KeyLookup::Unknown
        } else {
            KeyLookup::Unavailable
        }
    }

    fn algorithms(&self) -> Option<Vec<Algorithm>> {
        self.inner.settings.algorithms.clone()
    }

    fn issuer(&self) -> Option<&str> {
        JwksKeys::issuer(self)
    }

    /// Ready while usable keys are held. Asked inside a tokio runtime, it starts the background
    /// refresh if no lookup has yet, so a readiness probe loads the keys before the first request.
    fn readiness(&self) -> Readiness {
        self.inner.ensure_refresher();
        let status = self.status();
        if status.usable {
            return Readiness::Ready;
        }
        // Short and fixed texts: the probe may be public; the error itself is in the logs.
        Readiness::not_ready(match (&status.last_error, status.age) {
            (Some(JwksError::NoUsableKeys { .. }), _) => "the JWKS holds no usable key",
            (_, Some(_)) => "the JWKS keys are older than the maximum staleness",
            (Some(_), None) => "no JWKS fetched yet: the last fetch failed",
            (None, None) => "no JWKS fetched yet",
        })
    }
}

impl Inner {
    /// Brings the gauges of the keys held and of their age up to date.
    pub(super) fn publish_metrics(&self) {
        let loaded = self.loaded();
        let keys = loaded.usable(self.settings.max_staleness).map_or(0, KeySet::len);
        self.metrics.held(keys, loaded.fetched_at.map(|at| at.elapsed()));
    }

    pub(super) fn loaded(&self) -> RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops a set older than `max_staleness`, so its keys' `Arc`s die and the tokens they verified
    /// leave the verified-token cache (which is consulted before any lookup).
    pub(super) fn drop_if_stale(&self) {
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
        self.metrics.held(0, self.loaded().fetched_at.map(|at| at.elapsed()));
        tracing::error!(
            target: "tower_jwt_guard",
            ?max_staleness,
            "JWKS keys dropped: no successful fetch within the maximum staleness; requests are refused (503)"
        );
        drop(stale);
    }

    /// The answer for a request that waits for a fetch: from the keys held once the fetch is over,
    /// or once the timeout has passed since this request began waiting, whichever comes first
    /// (the fetch may run longer: discovery and JWKS requests, each within the timeout). Never
    /// fetches again.
    async fn answer_after(
        self: Arc<Self>,
        mut done: watch::Receiver<u64>,
        waiting: Waiting,
        kid: Option<String>,
        alg: Algorithm,
    ) -> KeyLookup {
        let _ = tokio::time::timeout(self.settings.timeout, done.changed()).await;
        drop(waiting);
        let loaded = self.loaded();
        match loaded.usable(self.settings.max_staleness) {
            Some(set) => set.find(kid.as_deref(), alg),
            None => KeyLookup::Unavailable,
        }
    }
}
