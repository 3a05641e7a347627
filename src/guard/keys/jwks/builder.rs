//! The settings of a [`JwksKeys`] source and their defaults, and the builder that checks them:
//! [`JwksKeys::builder`] (a JWKS URL) or [`JwksKeys::discover`] (an OIDC issuer).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jsonwebtoken::AlgorithmFamily;

use reqwest::Url;
use tokio::sync::watch;

use super::fetch::Fetcher;
use super::oidc;
use super::state::{Control, Inner, Loaded};
use super::JwksKeys;
use crate::guard::observe::metrics::JwksMetrics;
use crate::primitives::algorithm::Algorithm;
use crate::primitives::error::ConfigError;

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
/// Most requests waiting for a running fetch at once; beyond it they are refused at once.
pub const DEFAULT_MAX_WAITING_REQUESTS: usize = 128;
/// Largest JWKS or discovery document accepted.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 256 * 1024;

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
    /// An HTTP client made by another source with the same settings, to share.
    client: Option<reqwest::Client>,
}

#[derive(Debug, Clone)]
pub(super) enum Endpoint {
    Jwks(Url),
    Oidc { issuer: String, discovery: Url },
}

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) refresh_interval: Duration,
    pub(super) min_refresh_interval: Duration,
    pub(super) max_refresh_interval: Duration,
    pub(super) unknown_kid_interval: Duration,
    pub(super) max_staleness: Duration,
    pub(super) retry_interval: Duration,
    pub(super) max_retry_interval: Duration,
    pub(super) timeout: Duration,
    pub(super) max_waiting_requests: usize,
    pub(super) max_response_size: usize,
    pub(super) algorithms: Option<Vec<Algorithm>>,
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
            max_waiting_requests: DEFAULT_MAX_WAITING_REQUESTS,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            algorithms: None,
        }
    }
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
        JwksKeysBuilder { endpoint, settings: Settings::default(), client: None }
    }

    /// Use `client` (from [`JwksKeys::http_client`] of a source built with the same settings and
    /// the same URL scheme) instead of making one: the tenants of one pattern share one client,
    /// so a thousand tenants hold one TLS configuration and one pool of connections to their
    /// provider, not a thousand.
    pub(crate) fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
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

    /// Time limit of one HTTP request, body included (default 10 s). It is also the longest a
    /// request waits for a fetch, counted from when that request began waiting.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// How many requests may wait for a running fetch at once (default
    /// [`DEFAULT_MAX_WAITING_REQUESTS`], 128; 0: none waits, a refetch still starts).
    ///
    /// A request waits only when its token's `kid` is not among the keys held (or no keys are
    /// held), and only for the refetch the unknown-kid rate limit granted
    /// ([`unknown_kid_interval`](Self::unknown_kid_interval)); it waits at most the
    /// [`timeout`](Self::timeout). Beyond the cap a request is answered at once from the keys held:
    /// `INVALID_TOKEN` (401) when keys are held, 503 `AUTH_UNAVAILABLE` when none are. So a hung or
    /// slowloris endpoint parks at most this many requests. Tokens whose `kid` is held never wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jwt_guard::keys::JwksKeys;
    ///
    /// let jwks = JwksKeys::builder("https://auth.example.com/jwks.json")
    ///     .timeout(Duration::from_secs(2))
    ///     .max_waiting_requests(32)
    ///     .build()?;
    /// assert_eq!(jwks.status().waiting, 0);
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn max_waiting_requests(mut self, requests: usize) -> Self {
        self.settings.max_waiting_requests = requests;
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
        let fetcher = match self.client {
            Some(client) => Fetcher::sharing(client, settings.max_response_size),
            None => Fetcher::new(settings.timeout, settings.max_response_size, https_only)
                .map_err(|_| ConfigError::Invalid("the HTTP client for JWKS could not be set up"))?,
        };
        let source = match &endpoint {
            Endpoint::Jwks(url) => redacted(url),
            Endpoint::Oidc { issuer, .. } => issuer.clone(),
        };
        let inner = Arc::new(Inner {
            metrics: JwksMetrics::new(source),
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
    /// The source reports the issuer ([`KeySource::issuer`](crate::guard::keys::KeySource::issuer)), so a
    /// layer built with it accepts only tokens whose `iss` is exactly this issuer, unless
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
}

/// A URL without credentials or query (either may hold a secret), for logs and `Debug`.
pub(super) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
