//! [`TenantKeys`]: the keys of the tenants of one issuer pattern, such as
//! `https://login.example.com/{tenant}/v2.0` (Entra ID, Keycloak realms), discovered on demand
//! (feature `jwks`). The parts: `pattern` (which `iss` matches, and its tenant), `registry` (the
//! tenants held, the refused ones, and the limits on new ones).

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::primitives::algorithm::Algorithm;

use crate::guard::keys::{JwksKeysBuilder, JwksStatus, KeyLookup};
use crate::primitives::error::ConfigError;

mod pattern;
mod registry;

pub use pattern::MAX_TENANT_LEN;
use registry::{Allow, Configure, Limits, Registry};

/// Default cap on the tenants whose keys are held at once.
pub const DEFAULT_MAX_TENANTS: usize = 1000;
/// Default number of new tenants admitted (each one discovery) per [`DEFAULT_NEW_TENANTS_INTERVAL`].
pub const DEFAULT_NEW_TENANTS: usize = 20;
/// Default interval of the new-tenant limit.
pub const DEFAULT_NEW_TENANTS_INTERVAL: Duration = Duration::from_secs(10);
/// Default time a tenant whose discovery failed is refused without a new attempt.
pub const DEFAULT_TENANT_FAILURE_TTL: Duration = Duration::from_secs(60);

/// The keys of every tenant of an issuer pattern, each found by OIDC discovery on its first token
/// (feature `jwks`). Give it to [`Issuer::tenants`](crate::Issuer::tenants): the rules of that
/// issuer (algorithms, audiences, leeway, token kinds, ...) apply to every tenant.
///
/// A token whose `iss` names no exactly configured issuer and matches the pattern is a tenant's:
/// its issuer is its whole `iss`, whose discovery document
/// (`{iss}/.well-known/openid-configuration`) must name exactly that issuer, and only that
/// tenant's keys verify it. The tenant (the `{tenant}` segment) must be a plain path segment
/// (letters, digits, `-`, `.`, `_`, `~`; at most [`MAX_TENANT_LEN`]) and accepted by the
/// allow-list ([`allow`](TenantKeysBuilder::allow)) or the predicate
/// ([`allow_if`](TenantKeysBuilder::allow_if)); any other token is refused (`INVALID_TOKEN`)
/// without a fetch.
///
/// A flood of invented tenants cannot make the service fetch without limit:
/// - refused tenants never fetch;
/// - at most [`new_tenants`](TenantKeysBuilder::new_tenants) tenants are admitted per interval
///   (default 20 per 10 s), each costing one discovery and one JWKS fetch; a tenant beyond that
///   is answered 503 without a fetch;
/// - at most [`max_tenants`](TenantKeysBuilder::max_tenants) tenants' keys are held (default
///   1000); the least used are evicted (their background refresh stops, and the tokens their
///   keys verified leave the verified-token cache) and discovered again when they return;
/// - a tenant whose discovery fails is forgotten and refused for
///   [`failure_ttl`](TenantKeysBuilder::failure_ttl) (default 60 s) without a fetch: 401 when the
///   provider says it does not exist (4xx, another issuer), 503 when it could not be reached;
/// - each tenant's [`JwksKeys`](crate::guard::keys::JwksKeys) keeps its own limits (unknown-`kid` refetch
///   interval, waiting requests, timeout, size cap), set with [`jwks`](TenantKeysBuilder::jwks).
///
/// ```
/// use tower_jwt_guard::keys::TenantKeys;
/// use tower_jwt_guard::{Algorithm, Issuer, JwtAuth};
///
/// let tenants = TenantKeys::builder("https://login.example.com/{tenant}/v2.0")
///     .allow(["contoso", "fabrikam"])
///     .build()?;
/// let auth = JwtAuth::builder()
///     .trust(Issuer::tenants(tenants.clone()).algorithms([Algorithm::RS256]).audience("api"))
///     .build()?;
/// assert_eq!(tenants.tenants_held(), 0);
///
/// // Without an allow-list or a predicate, nothing says which tenants to trust.
/// assert!(TenantKeys::builder("https://login.example.com/{tenant}/v2.0").build().is_err());
/// // The tenant is a whole path segment.
/// assert!(TenantKeys::builder("https://login.example.com/t-{tenant}").allow_if(|_| true).build().is_err());
/// # let _ = auth;
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct TenantKeys {
    registry: Arc<Registry>,
}

/// What a [`TenantKeys`] holds now and has done, for health checks and logs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TenantStatus {
    /// Tenants whose keys are held now (at most [`TenantKeysBuilder::max_tenants`]).
    pub held: usize,
    /// Tenants refused now because their discovery failed (at most the same cap).
    pub failed: usize,
    /// Tenants admitted so far (each one discovery).
    pub admitted: u64,
    /// Tokens of new tenants refused so far by the new-tenant limit.
    pub rate_limited: u64,
    /// Discoveries that failed so far.
    pub failures: u64,
}

impl TenantKeys {
    /// Starts the settings of the tenants of `pattern`, an http(s) URL with `{tenant}` as one
    /// whole path segment, like `https://login.example.com/{tenant}/v2.0`.
    pub fn builder(pattern: impl AsRef<str>) -> TenantKeysBuilder {
        TenantKeysBuilder {
            pattern: pattern.as_ref().to_owned(),
            allow: None,
            limits: Limits {
                max_held: DEFAULT_MAX_TENANTS,
                new_tenants: DEFAULT_NEW_TENANTS,
                interval: DEFAULT_NEW_TENANTS_INTERVAL,
                failure_ttl: DEFAULT_TENANT_FAILURE_TTL,
            },
            configure: None,
        }
    }

    /// The number of tenants whose keys are held now.
    pub fn tenants_held(&self) -> usize {
        self.registry.held.len()
    }

    /// What the tenants hold now, and the counts so far.
    pub fn status(&self) -> TenantStatus {
        let registry = &self.registry;
        TenantStatus {
            held: registry.held.len(),
            failed: registry.failed.len(),
            admitted: registry.counters.admitted.load(Ordering::Relaxed),
            rate_limited: registry.counters.rate_limited.load(Ordering::Relaxed),
            failures: registry.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// The status of one tenant's keys, when they are held.
    pub fn tenant_status(&self, tenant: &str) -> Option<JwksStatus> {
        self.registry.held.peek(tenant).map(|keys| keys.status())
    }

    /// The tenant of `iss`, when it matches the pattern and is accepted (no fetch).
    pub(crate) fn accepts(&self, iss: &str) -> bool {
        self.registry.tenant(iss).is_some()
    }

    /// The key of a token of `iss` (a tenant [`accepts`](Self::accepts) names).
    pub(crate) fn lookup(&self, iss: &str, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        self.registry.lookup(iss, kid, alg)
    }
}

impl fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantKeys")
            .field("pattern", &self.registry.pattern.display())
            .field("limits", &self.registry.limits)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`TenantKeys`]; start with [`TenantKeys::builder`].
#[must_use]
pub struct TenantKeysBuilder {
    pattern: String,
    allow: Option<Allow>,
    limits: Limits,
    configure: Option<Configure>,
}

impl fmt::Debug for TenantKeysBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantKeysBuilder")
            .field("pattern", &self.pattern)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl TenantKeysBuilder {
    /// Accept exactly these tenants (the `{tenant}` segment, compared exactly). Replaces a
    /// predicate.
    ///
    /// ```
    /// let tenants = tower_jwt_guard::keys::TenantKeys::builder("https://idp.example.com/realms/{tenant}")
    ///     .allow(["sales", "support"])
    ///     .build();
    /// assert!(tenants.is_ok());
    /// ```
    pub fn allow(mut self, tenants: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut tenants: Vec<Box<str>> = tenants.into_iter().map(|t| t.into().into_boxed_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        self.allow = Some(Allow::List(tenants.into_boxed_slice()));
        self
    }

    /// Accept the tenants for which `predicate` holds (it sees only plain segments). It runs on
    /// the request path, before any fetch: keep it quick. Replaces an allow-list.
    ///
    /// ```
    /// // Entra ID tenant ids are GUIDs.
    /// let tenants = tower_jwt_guard::keys::TenantKeys::builder("https://login.microsoftonline.com/{tenant}/v2.0")
    ///     .allow_if(|tenant| tenant.len() == 36 && tenant.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
    ///     .build();
    /// assert!(tenants.is_ok());
    /// ```
    pub fn allow_if(mut self, predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.allow = Some(Allow::Predicate(Arc::new(predicate)));
        self
    }

    /// The most tenants whose keys are held at once (default [`DEFAULT_MAX_TENANTS`]); the least
    /// used are evicted beyond it. Also the most tenants remembered as failed.
    pub fn max_tenants(mut self, tenants: usize) -> Self {
        self.limits.max_held = tenants;
        self
    }

    /// At most `tenants` new tenants (each one discovery and one JWKS fetch) per `interval`
    /// (default [`DEFAULT_NEW_TENANTS`] per [`DEFAULT_NEW_TENANTS_INTERVAL`]); the tokens of
    /// other new tenants are answered 503 without a fetch until the next interval.
    pub fn new_tenants(mut self, tenants: usize, interval: Duration) -> Self {
        self.limits.new_tenants = tenants;
        self.limits.interval = interval;
        self
    }

    /// How long a tenant whose discovery failed is refused without a new attempt (default
    /// [`DEFAULT_TENANT_FAILURE_TTL`]).
    pub fn failure_ttl(mut self, ttl: Duration) -> Self {
        self.limits.failure_ttl = ttl;
        self
    }

    /// Settings of each tenant's [`JwksKeys`](crate::guard::keys::JwksKeys) (timeout, refresh and
    /// refetch intervals, ...), applied to the builder [`JwksKeys::discover`](crate::guard::keys::JwksKeys::discover)
    /// makes for it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let tenants = tower_jwt_guard::keys::TenantKeys::builder("https://idp.example.com/realms/{tenant}")
    ///     .allow(["sales"])
    ///     .jwks(|keys| keys.timeout(Duration::from_secs(2)))
    ///     .build();
    /// assert!(tenants.is_ok());
    /// ```
    pub fn jwks(
        mut self,
        configure: impl Fn(JwksKeysBuilder) -> JwksKeysBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<TenantKeys, ConfigError> {
        let pattern = pattern::Pattern::parse(&self.pattern)?;
        let allow = self.allow.ok_or(ConfigError::Invalid(
            "a tenant pattern needs allow(..) or allow_if(..): which tenants are trusted?",
        ))?;
        let limits = self.limits;
        if limits.max_held == 0 || limits.new_tenants == 0 || limits.interval.is_zero() {
            return Err(ConfigError::Invalid("the tenant limits must be positive"));
        }
        Ok(TenantKeys { registry: Arc::new(Registry::new(pattern, allow, limits, self.configure)) })
    }
}
