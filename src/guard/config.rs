//! [`JwtAuth`]: the builder that turns settings into an immutable, shared configuration.
//!
//! Everything that can be wrong is found by [`JwtAuthBuilder::build`] (a [`ConfigError`]),
//! never at request time and never by a panic.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response};
use jsonwebtoken::Algorithm;

use crate::authorize::resource_metadata::ProtectedResource;
use crate::error::{AuthError, ConfigError};
use crate::guard::binding::BindingPolicy;
use crate::guard::context::ContextPolicy;
use crate::guard::keys::{KeySource, StaticKeys, VerificationKey};
use crate::guard::layer::JwtLayer;
use crate::guard::mfa_policy::MfaPolicy;
use crate::guard::rejection::{Protocol, RejectionHook, Responder};
use crate::guard::revocation::RevocationStore;
use crate::guard::source::{TokenSource, TokenSources};
use crate::guard::verify::{AlgorithmSet, ClaimRules, HeaderCache, RequiredClaim, TokenVerifier};

/// Default cap on the token's length, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default capacity of the verified-token cache.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Default length above which a verified token is not cached (it is still verified):
/// with the default capacity the cache's tokens then take at most about 20 MiB.
pub const DEFAULT_MAX_CACHED_TOKEN_LEN: usize = 2 * 1024;

/// The immutable configuration shared by every clone of the layer.
pub(crate) struct Shared {
    pub(crate) sources: TokenSources,
    pub(crate) verifier: TokenVerifier,
    pub(crate) bindings: Vec<Arc<dyn BindingPolicy>>,
    pub(crate) revocation: Option<Box<dyn RevocationStore>>,
    pub(crate) revocation_fail_open: bool,
    pub(crate) optional: bool,
    pub(crate) cache_capacity: usize,
    pub(crate) cache_max_token_len: usize,
    pub(crate) context: Arc<ContextPolicy>,
    pub(crate) audit: crate::guard::audit::Audit,
    pub(crate) metrics: crate::guard::metrics::GuardMetrics,
    pub(crate) resource_metadata: Option<ProtectedResource>,
}

/// A built, immutable JWT configuration. Cheap to clone; make layers from it with
/// [`JwtAuth::layer`].
///
/// ```
/// use tower_jwt_guard::JwtAuth;
///
/// #[derive(serde::Deserialize)]
/// struct MyClaims { sub: String }
///
/// let auth = JwtAuth::builder()
///     .hmac_secret(b"0123456789abcdef0123456789abcdef")
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .build()?;
/// let layer = auth.layer::<MyClaims>();
/// # let _ = layer;
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct JwtAuth {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("sources", &self.shared.sources)
            .field("verifier", &self.shared.verifier)
            .field("bindings", &self.shared.bindings.iter().map(|b| b.name()).collect::<Vec<_>>())
            .field("revocation", &self.shared.revocation.is_some())
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

impl JwtAuth {
    /// Starts a configuration.
    pub fn builder() -> JwtAuthBuilder {
        JwtAuthBuilder::default()
    }

    /// A layer that verifies tokens and decodes their claims into `C`.
    pub fn layer<C>(&self) -> JwtLayer<C>
    where
        C: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        JwtLayer::new(self.clone())
    }

    /// How many requests the layers of this configuration accepted and rejected, by code.
    /// See [`audit`](crate::audit).
    pub fn audit_counts(&self) -> crate::guard::audit::AuditCounts {
        self.shared.audit.counts()
    }
}

/// Builds a [`JwtAuth`]. Every setting has a safe default; only a key is required.
///
/// Defaults: token from `Authorization: Bearer`, `exp` required, leeway 30 s, `nbf` and
/// future `iat` checked, tokens up to 8 KiB, verified-token cache of 10 000 tokens, realm `api`.
#[must_use]
pub struct JwtAuthBuilder {
    keys: StaticKeys,
    key_source: Option<Arc<dyn KeySource>>,
    algorithms: Option<Vec<Algorithm>>,
    rules: ClaimRules,
    sources: Vec<TokenSource>,
    max_token_len: usize,
    cache_capacity: usize,
    cache_max_token_len: usize,
    optional: bool,
    realm: String,
    expose_error_details: bool,
    hook: Option<RejectionHook>,
    mfa: MfaPolicy,
    bindings: Vec<Arc<dyn BindingPolicy>>,
    revocation: Option<Box<dyn RevocationStore>>,
    revocation_fail_open: bool,
    error: Option<ConfigError>,
    audit_hook: Option<crate::guard::audit::AuditHook>,
    protected_resource: Option<ProtectedResource>,
}

impl Default for JwtAuthBuilder {
    fn default() -> Self {
        JwtAuthBuilder {
            keys: StaticKeys::default(),
            key_source: None,
            algorithms: None,
            rules: ClaimRules::default(),
            sources: vec![TokenSource::Bearer],
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            cache_max_token_len: DEFAULT_MAX_CACHED_TOKEN_LEN,
            optional: false,
            realm: "api".into(),
            expose_error_details: false,
            hook: None,
            mfa: MfaPolicy::default(),
            bindings: Vec::new(),
            revocation: None,
            revocation_fail_open: false,
            error: None,
            audit_hook: None,
            protected_resource: None,
        }
    }
}

impl fmt::Debug for JwtAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthBuilder")
            .field("keys", &self.keys)
            .field("algorithms", &self.algorithms)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl JwtAuthBuilder {
    fn record(mut self, result: Result<(), ConfigError>) -> Self {
        if let Err(err) = result {
            self.error.get_or_insert(err);
        }
        self
    }

    /// Adds a verification key (bound to its one algorithm).
    pub fn key(mut self, key: VerificationKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds a key that failed or succeeded to load: a failure is reported by [`build`](Self::build).
    ///
    /// ```
    /// use jsonwebtoken::Algorithm;
    /// use tower_jwt_guard::{ConfigError, JwtAuth, VerificationKey};
    ///
    /// let err = JwtAuth::builder()
    ///     .try_key(VerificationKey::hmac(Algorithm::HS256, b"too short"))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, ConfigError::WeakSecret { .. }));
    /// ```
    pub fn try_key(self, key: Result<VerificationKey, ConfigError>) -> Self {
        match key {
            Ok(key) => self.key(key),
            Err(err) => self.record(Err(err)),
        }
    }

    /// Shorthand for an `HS256` secret (at least 32 bytes).
    pub fn hmac_secret(self, secret: impl AsRef<[u8]>) -> Self {
        self.try_key(VerificationKey::hmac(Algorithm::HS256, secret))
    }

    /// A key source (JWKS, or your own) consulted for every token, besides any static keys.
    pub fn key_source(mut self, source: impl KeySource) -> Self {
        self.key_source = Some(Arc::new(source));
        self
    }

    /// The algorithm allow-list. By default it is exactly the algorithms of the configured keys;
    /// with a key source whose algorithms are not known in advance (JWKS) it must be given.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Accept tokens from this issuer (`iss`); may be called several times. Without it, the issuer
    /// of a key source that knows one (`JwksKeys::discover`) is required; with it, only the issuers
    /// named here are accepted. An accepted [`TokenKind`](crate::TokenKind)'s own issuers add
    /// to these ([`TokenKind::issuer`](crate::TokenKind::issuer)).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.rules.issuers.push(issuer.into());
        self
    }

    /// Accept tokens for this audience (`aud`); may be called several times.
    ///
    /// Without any audience configured (here or on the token's [`TokenKind`](crate::TokenKind)),
    /// a token that names an audience is refused (RFC 7519 §4.1.3: this service cannot tell it
    /// is the one meant), unless [`accept_any_audience`](Self::accept_any_audience) says
    /// otherwise. An accepted kind's own audiences add to these
    /// ([`TokenKind::audience`](crate::TokenKind::audience)); a kind without any adds nothing.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.rules.audiences.push(audience.into());
        self
    }

    /// Accept tokens whatever audience they name, when no [`audience`](Self::audience) is
    /// configured (here or on the token's [`TokenKind`](crate::TokenKind)). Only for services that share their tokens with every other service of the
    /// issuer: a token minted for another service then works here too (RFC 8725 §3.9).
    ///
    /// ```
    /// use tower_jwt_guard::JwtAuth;
    ///
    /// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).accept_any_audience().build()?;
    /// # let _ = auth;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn accept_any_audience(mut self) -> Self {
        self.rules.accept_any_audience = true;
        self
    }

    /// This service is the resource `url` (RFC 8707): every token must name it in `aud`, and a
    /// token that names it needs no other [`audience`](Self::audience). The comparison is exact
    /// after normalisation: scheme and host are lowercased, the default port is dropped, and the
    /// path and query compare byte for byte. **A trailing slash counts**: a token for
    /// `https://api.example.com/mcp/` is refused by `https://api.example.com/mcp` (only the
    /// root's `/` is optional). An invalid URL is reported by [`build`](Self::build).
    ///
    /// ```
    /// use tower_jwt_guard::JwtAuth;
    ///
    /// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).resource("https://api.example.com/mcp").build();
    /// assert!(auth.is_ok());
    /// let bad = JwtAuth::builder().hmac_secret([7u8; 32]).resource("api").build();
    /// assert!(bad.is_err());
    /// ```
    pub fn resource(mut self, url: impl AsRef<str>) -> Self {
        match crate::guard::verify::ResourceId::parse(url.as_ref()) {
            Ok(resource) => {
                self.rules.resource = Some(resource);
                self
            }
            Err(err) => self.record(Err(err)),
        }
    }

    /// Publishes this protected-resource metadata (RFC 9728) and names its URL in every
    /// `WWW-Authenticate` challenge (`resource_metadata="…"`), from this layer and from the
    /// scope and MFA layers behind it. What the metadata leaves unset is taken from this
    /// configuration: the accepted issuers become `authorization_servers`, the token sources
    /// `bearer_methods_supported`. Serve it with
    /// [`JwtAuth::resource_metadata_router`] (axum) or [`ProtectedResource::service`].
    /// With [`resource`](Self::resource) also set, both must name the same resource.
    /// A [rejection hook](Self::on_rejection) replaces the whole response, challenge included.
    pub fn protected_resource(mut self, metadata: ProtectedResource) -> Self {
        self.protected_resource = Some(metadata);
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules.leeway = leeway.as_secs();
        self
    }

    /// The registered claims every token must carry (default: `exp`). Replaces the list.
    ///
    /// ```
    /// use tower_jwt_guard::{JwtAuth, RequiredClaim};
    /// let auth = JwtAuth::builder()
    ///     .hmac_secret([7u8; 32])
    ///     .require([RequiredClaim::Exp, RequiredClaim::Sub, RequiredClaim::Jti])
    ///     .build();
    /// assert!(auth.is_ok());
    /// ```
    pub fn require(mut self, claims: impl IntoIterator<Item = RequiredClaim>) -> Self {
        self.rules.required = claims.into_iter().collect();
        self
    }

    /// Whether `nbf` is checked (default: yes).
    pub fn validate_nbf(mut self, validate: bool) -> Self {
        self.rules.validate_nbf = validate;
        self
    }

    /// Whether a token issued in the future (`iat` beyond the leeway) is refused (default: yes).
    pub fn reject_future_iat(mut self, reject: bool) -> Self {
        self.rules.reject_future_iat = reject;
        self
    }

    /// Refuse tokens issued (`iat`) longer ago than `age` (`TOKEN_TOO_OLD`); `iat` becomes required.
    pub fn max_token_age(mut self, age: Duration) -> Self {
        self.rules.max_age = Some(age.as_secs());
        self
    }

    /// Require this header `typ` (for example `at+jwt`, RFC 9068), compared as RFC 7515 says.
    pub fn token_type(mut self, typ: impl Into<String>) -> Self {
        self.rules.token_type = Some(typ.into());
        self
    }

    /// Accept tokens of this [`TokenKind`](crate::TokenKind); may be called several times.
    /// Once a kind is accepted, a token is let through only when it is exactly one of the
    /// accepted kinds (its `typ`, audience, issuer and required claims), RFC 8725 §3.12.
    /// The settings above ([`issuer`](Self::issuer), [`audience`](Self::audience), ...)
    /// still apply to every token: a kind's audiences and issuers are conditions on top of the
    /// layer's, and a kind that has none of its own adds none (it is held to the layer's alone).
    ///
    /// ```
    /// use tower_jwt_guard::{JwtAuth, TokenKind};
    ///
    /// let service_only = JwtAuth::builder()
    ///     .hmac_secret([7u8; 32])
    ///     .accept(TokenKind::new("service", "service+jwt").audience("orders"))
    ///     .build();
    /// assert!(service_only.is_ok());
    /// ```
    pub fn accept(mut self, kind: crate::guard::verify::TokenKind) -> Self {
        self.rules.kinds.push(kind);
        self
    }

    /// Where tokens are read from (default: the bearer header). Replaces the list.
    pub fn sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// Longest token accepted, checked before decoding (default 8 KiB).
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// Capacity of the verified-token cache (default 10 000; 0 disables it).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Tokens longer than this are verified on every request instead of cached
    /// (default [`DEFAULT_MAX_CACHED_TOKEN_LEN`]), which bounds the cache's memory.
    ///
    /// ```
    /// use tower_jwt_guard::JwtAuth;
    ///
    /// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).cache_max_token_len(1024).build()?;
    /// # let _ = auth;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn cache_max_token_len(mut self, len: usize) -> Self {
        self.cache_max_token_len = len;
        self
    }

    /// Let requests without a token through anonymously (no claims in the extensions).
    /// A request with a bad token is still refused.
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// The `realm` of the `WWW-Authenticate` challenge (default `api`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Tells clients the precise reason of each refusal (default `false`): for development only.
    ///
    /// By default every refusal of a code reads the same ("the token is not valid" for a bad
    /// signature, an unknown `kid`, a refused algorithm or a wrong claim alike), and the precise
    /// reason goes only to the [audit event](crate::audit) (`reason`). With `true`, the reason is
    /// also the JSON `error`, the `error_description` of the challenge and the `grpc-message`,
    /// like ASP.NET's `IncludeErrorDetails`.
    ///
    /// **Warning:** the reasons are an oracle. They tell whoever sends a token which of the
    /// server's keys exist, which algorithms it accepts and which check failed: a forger learns
    /// with each try. Never enable this where untrusted clients can reach the service.
    ///
    /// ```
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_jwt_guard::JwtAuth;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// // The challenge of a refused request, with or without the details.
    /// let challenge = |expose: bool| -> Result<String, Box<dyn std::error::Error>> {
    ///     let auth = JwtAuth::builder().hmac_secret([7u8; 32]).expose_error_details(expose).build()?;
    ///     let service = ServiceBuilder::new().layer(auth.layer::<serde_json::Value>()).service_fn(
    ///         |_request: http::Request<String>| async {
    ///             Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///         },
    ///     );
    ///     // An RS256 token: this service allows HS256 only.
    ///     let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
    ///     let request = http::Request::builder()
    ///         .header("authorization", format!("Bearer {token}"))
    ///         .body(String::new())?;
    ///     let response = runtime.block_on(service.oneshot(request))?;
    ///     assert_eq!(response.status(), 401);
    ///     Ok(response.headers()["www-authenticate"].to_str()?.to_owned())
    /// };
    /// assert!(challenge(false)?.ends_with(r#"error_description="the token is not valid""#));
    /// assert!(challenge(true)?.ends_with(r#"error_description="the token's algorithm is not allowed""#));
    /// # Ok(())
    /// # }
    /// ```
    pub fn expose_error_details(mut self, expose: bool) -> Self {
        self.expose_error_details = expose;
        self
    }

    /// Replaces the rejection response.
    ///
    /// ```
    /// use tower_jwt_guard::{JwtAuth, Protocol};
    ///
    /// let auth = JwtAuth::builder()
    ///     .hmac_secret([7u8; 32])
    ///     .on_rejection(|err, _protocol: Protocol| {
    ///         http::Response::builder()
    ///             .status(err.status())
    ///             .body(bytes::Bytes::from(format!("denied: {}", err.code())))
    ///             .unwrap()
    ///     })
    ///     .build();
    /// assert!(auth.is_ok());
    /// ```
    pub fn on_rejection<F>(mut self, hook: F) -> Self
    where
        F: Fn(&AuthError, Protocol) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// When a token counts as multi-factor for [`RequireMfa`](crate::RequireMfa).
    pub fn mfa(mut self, policy: MfaPolicy) -> Self {
        self.mfa = policy;
        self
    }

    /// Adds a binding policy, checked on every request.
    pub fn binding(mut self, policy: impl BindingPolicy) -> Self {
        self.bindings.push(Arc::new(policy));
        self
    }

    /// The revocation store consulted on every request.
    pub fn revocation(mut self, store: impl RevocationStore) -> Self {
        self.revocation = Some(Box::new(store));
        self
    }

    /// Let requests through when the revocation store is down (default: refuse with 503).
    /// Only for deployments that prefer availability over immediate revocation.
    pub fn revocation_fail_open(mut self, fail_open: bool) -> Self {
        self.revocation_fail_open = fail_open;
        self
    }

    /// Hands every decision (accepted, anonymous, rejected) to `hook`, besides the `tracing`
    /// event. The hook runs on the request path: keep it quick (send to a channel).
    /// See [`audit`](crate::audit).
    ///
    /// ```
    /// use tower_jwt_guard::JwtAuth;
    ///
    /// let auth = JwtAuth::builder()
    ///     .hmac_secret([7u8; 32])
    ///     .on_audit(|event| println!("{} {} {}", event.code, event.method, event.path))
    ///     .build();
    /// assert!(auth.is_ok());
    /// ```
    pub fn on_audit<F>(mut self, hook: F) -> Self
    where
        F: Fn(&crate::guard::audit::AuditEvent<'_>) + Send + Sync + 'static,
    {
        self.audit_hook = Some(Arc::new(hook));
        self
    }

    /// Checks the settings and freezes them.
    pub fn build(mut self) -> Result<JwtAuth, ConfigError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let algorithms = self.allowed_algorithms()?;
        let forgets_early = self.revocation.as_ref().and_then(|store| store.retention_margin());
        if forgets_early.is_some_and(|margin| margin.as_secs() < self.rules.leeway) {
            return Err(ConfigError::Invalid(
                "the revocation store forgets a revoked token before the leeway ends: \
                 give it an expiry margin of at least the leeway",
            ));
        }
        if self.keys.duplicate_kid().is_some() {
            return Err(ConfigError::Invalid("two keys share a kid"));
        }
        if self.sources.is_empty() {
            return Err(ConfigError::Invalid("at least one token source is required"));
        }
        if self.max_token_len == 0 {
            return Err(ConfigError::Invalid("the token length cap must be positive"));
        }
        let realm = HeaderValue::from_str(&self.realm)
            .ok()
            .filter(|_| !self.realm.contains(['"', '\\']))
            .ok_or(ConfigError::Invalid("the realm must be visible ASCII without quotes"))?;
        let keys: Arc<dyn KeySource> = match (self.keys.is_empty(), self.key_source) {
            (true, None) => return Err(ConfigError::NoKeys),
            (true, Some(source)) => source,
            (false, None) => Arc::new(self.keys),
            (false, Some(source)) => Arc::new(crate::guard::keys::Chain::new(self.keys, source)),
        };
        // A source that knows its issuer (OIDC discovery) makes `iss` required, unless set here.
        if self.rules.issuers.is_empty() {
            if let Some(issuer) = keys.issuer() {
                self.rules.issuers.push(issuer.to_owned());
            }
        }
        self.rules.kinds.validate(&self.rules.issuers)?;
        if let (Some(metadata), Some(resource)) = (&self.protected_resource, &self.rules.resource) {
            if metadata.id() != resource {
                return Err(ConfigError::Invalid(
                    "the protected-resource metadata and resource(..) name different resources",
                ));
            }
        }
        let decision_metrics = decision_metrics(&self.rules);
        let verifier = TokenVerifier { keys, algorithms, rules: self.rules, headers: HeaderCache::new() };
        let resource_metadata =
            self.protected_resource.map(|metadata| metadata.complete(verifier.issuers(), &self.sources));
        let responder = Responder::new(realm, self.expose_error_details, self.hook)
            .with_resource_metadata(resource_metadata.as_ref().and_then(ProtectedResource::challenge_value));
        let shared = Shared {
            sources: TokenSources::new(self.sources, self.max_token_len),
            verifier,
            bindings: self.bindings,
            revocation: self.revocation,
            revocation_fail_open: self.revocation_fail_open,
            optional: self.optional,
            cache_capacity: self.cache_capacity,
            cache_max_token_len: self.cache_max_token_len,
            context: Arc::new(ContextPolicy { mfa: self.mfa, responder }),
            audit: crate::guard::audit::Audit::new(self.audit_hook).with_metrics(decision_metrics),
            metrics: crate::guard::metrics::GuardMetrics::default(),
            resource_metadata,
        };
        Ok(JwtAuth { shared: Arc::new(shared) })
    }

    fn allowed_algorithms(&self) -> Result<AlgorithmSet, ConfigError> {
        let key_algorithms: Vec<Algorithm> = self.keys.algorithms().unwrap_or_default();
        let mut set = AlgorithmSet::default();
        match &self.algorithms {
            Some(list) => {
                list.iter().for_each(|alg| set.insert(*alg));
                if let Some(alg) = key_algorithms.iter().find(|alg| !set.contains(**alg)) {
                    return Err(ConfigError::AlgorithmNotAllowed(*alg));
                }
            }
            None if self.key_source.is_some()
                && self.key_source.as_ref().and_then(|s| s.algorithms()).is_none() =>
            {
                return Err(ConfigError::Invalid(
                    "a key source without fixed algorithms needs an explicit allow-list (algorithms(..))",
                ));
            }
            None => {
                let from_source = self.key_source.as_ref().and_then(|s| s.algorithms()).unwrap_or_default();
                key_algorithms.iter().chain(&from_source).for_each(|alg| set.insert(*alg));
            }
        }
        if set.is_empty() {
            return Err(if self.keys.is_empty() && self.key_source.is_none() {
                ConfigError::NoKeys
            } else {
                ConfigError::NoAlgorithms
            });
        }
        Ok(set)
    }
}

/// The label values the decision metrics may take: the accepted kinds' names and the configured
/// issuers (the layer's and the kinds'), never a value read from a request.
fn decision_metrics(rules: &ClaimRules) -> crate::guard::metrics::DecisionMetrics {
    let kinds = rules.kinds.iter().map(|kind| Arc::clone(kind.shared_name())).collect();
    let kind_issuers = rules.kinds.iter().flat_map(|kind| kind.recipients().0);
    let issuers = rules.issuers.iter().chain(kind_issuers).map(String::as_str);
    crate::guard::metrics::DecisionMetrics::new(kinds, issuers)
}
