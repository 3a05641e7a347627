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

use crate::binding::BindingPolicy;
use crate::context::ContextPolicy;
use crate::error::AuthError;
use crate::keys::{Issuer, KeySource, VerificationKey};
use crate::layer::JwtLayer;
use crate::mfa::MfaPolicy;
use crate::rejection::{Protocol, RejectionHook, Responder};
use crate::revocation::RevocationStore;
use crate::source::{TokenSource, TokenSources};
use crate::verify::{HeaderCache, Issuers, RequiredClaim, TokenVerifier};

/// Default cap on the token's length, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default capacity of the verified-token cache.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Default length above which a verified token is not cached (it is still verified):
/// with the default capacity the cache's tokens then take at most about 20 MiB.
pub const DEFAULT_MAX_CACHED_TOKEN_LEN: usize = 2 * 1024;

/// A configuration mistake, found when the configuration is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An HMAC secret shorter than the hash output (RFC 7518 §3.2).
    WeakSecret {
        /// The algorithm the secret was meant for.
        algorithm: Algorithm,
        /// The shortest length accepted.
        min_len: usize,
        /// The length given.
        len: usize,
    },
    /// A key cannot be used with this algorithm (an RSA key for `ES256`, ...).
    KeyAlgorithmMismatch {
        /// The algorithm asked for.
        algorithm: Algorithm,
    },
    /// A key could not be read.
    InvalidKey(&'static str),
    /// No key and no key source was configured.
    NoKeys,
    /// A configured key's algorithm is not in the allow-list.
    AlgorithmNotAllowed(Algorithm),
    /// The allow-list is empty.
    NoAlgorithms,
    /// Another setting is invalid.
    Invalid(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::WeakSecret { algorithm, min_len, len } => {
                write!(f, "the {algorithm:?} secret is {len} bytes, at least {min_len} are required")
            }
            ConfigError::KeyAlgorithmMismatch { algorithm } => {
                write!(f, "the key cannot be used with {algorithm:?}")
            }
            ConfigError::InvalidKey(why) => write!(f, "invalid key: {why}"),
            ConfigError::NoKeys => f.write_str("no verification key or key source is configured"),
            ConfigError::AlgorithmNotAllowed(alg) => {
                write!(f, "a key uses {alg:?}, which is not in the allow-list")
            }
            ConfigError::NoAlgorithms => f.write_str("the algorithm allow-list is empty"),
            ConfigError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ConfigError {}

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
    pub(crate) audit: crate::audit::Audit,
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
    pub fn audit_counts(&self) -> crate::audit::AuditCounts {
        self.shared.audit.counts()
    }
}

/// Builds a [`JwtAuth`]. Every setting has a safe default; only a key is required.
///
/// Defaults: token from `Authorization: Bearer`, `exp` required, leeway 30 s, `nbf` and
/// future `iat` checked, tokens up to 8 KiB, verified-token cache of 10 000 tokens, realm `api`.
#[must_use]
pub struct JwtAuthBuilder {
    /// The one-issuer settings (`key`, `audience`, ...).
    shorthand: Issuer,
    /// The issuers added with `trust`.
    trusted: Vec<Issuer>,
    sources: Vec<TokenSource>,
    max_token_len: usize,
    cache_capacity: usize,
    cache_max_token_len: usize,
    optional: bool,
    realm: String,
    hook: Option<RejectionHook>,
    mfa: MfaPolicy,
    bindings: Vec<Arc<dyn BindingPolicy>>,
    revocation: Option<Box<dyn RevocationStore>>,
    revocation_fail_open: bool,
    audit_hook: Option<crate::audit::AuditHook>,
}

impl Default for JwtAuthBuilder {
    fn default() -> Self {
        JwtAuthBuilder {
            shorthand: Issuer::shorthand(),
            trusted: Vec::new(),
            sources: vec![TokenSource::Bearer],
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            cache_max_token_len: DEFAULT_MAX_CACHED_TOKEN_LEN,
            optional: false,
            realm: "api".into(),
            hook: None,
            mfa: MfaPolicy::default(),
            bindings: Vec::new(),
            revocation: None,
            revocation_fail_open: false,
            audit_hook: None,
        }
    }
}

impl fmt::Debug for JwtAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthBuilder")
            .field("shorthand", &self.shorthand)
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

impl JwtAuthBuilder {
    /// Applies a one-issuer setting to the builder's own issuer.
    fn shorthand(mut self, set: impl FnOnce(Issuer) -> Issuer) -> Self {
        self.shorthand = set(self.shorthand);
        self
    }

    /// Adds a verification key (bound to its one algorithm).
    pub fn key(self, key: VerificationKey) -> Self {
        self.shorthand(|issuer| issuer.key(key))
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
        self.shorthand(|issuer| issuer.try_key(key))
    }

    /// Shorthand for an `HS256` secret (at least 32 bytes).
    pub fn hmac_secret(self, secret: impl AsRef<[u8]>) -> Self {
        self.try_key(VerificationKey::hmac(Algorithm::HS256, secret))
    }

    /// A key source (JWKS, or your own) consulted for every token, besides any static keys.
    pub fn key_source(self, source: impl KeySource) -> Self {
        self.shorthand(|issuer| issuer.key_source(source))
    }

    /// The algorithm allow-list. By default it is exactly the algorithms of the configured keys;
    /// with a key source whose algorithms are not known in advance (JWKS) it must be given.
    pub fn algorithms(self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.shorthand(|issuer| issuer.algorithms(algorithms))
    }

    /// Accept tokens from this issuer (`iss`); may be called several times. Without it, the issuer
    /// of a key source that knows one (`JwksKeys::discover`) is required; with it, only the issuers
    /// named here are accepted.
    ///
    /// Several names share the builder's one key set: every configured key is trusted for each
    /// of them (as when one provider signs under two names, like Entra ID's v1 and v2 issuers).
    /// For issuers with keys of their own, use [`trust`](Self::trust) with an [`Issuer`] each.
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        let name = issuer.into();
        self.shorthand(|issuer| issuer.also_named(name))
    }

    /// Accept tokens for this audience (`aud`); may be called several times.
    ///
    /// Without any audience configured, a token that names an audience is refused
    /// (RFC 7519 §4.1.3: this service cannot tell it is the one meant), unless
    /// [`accept_any_audience`](Self::accept_any_audience) says otherwise.
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.shorthand(|issuer| issuer.audience(audience))
    }

    /// Accept tokens whatever audience they name, when no [`audience`](Self::audience) is
    /// configured. Only for services that share their tokens with every other service of the
    /// issuer: a token minted for another service then works here too (RFC 8725 §3.9).
    ///
    /// ```
    /// use tower_jwt_guard::JwtAuth;
    ///
    /// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).accept_any_audience().build()?;
    /// # let _ = auth;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn accept_any_audience(self) -> Self {
        self.shorthand(Issuer::accept_any_audience)
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(self, leeway: Duration) -> Self {
        self.shorthand(|issuer| issuer.leeway(leeway))
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
    pub fn require(self, claims: impl IntoIterator<Item = RequiredClaim>) -> Self {
        self.shorthand(|issuer| issuer.require(claims))
    }

    /// Whether `nbf` is checked (default: yes).
    pub fn validate_nbf(self, validate: bool) -> Self {
        self.shorthand(|issuer| issuer.validate_nbf(validate))
    }

    /// Whether a token issued in the future (`iat` beyond the leeway) is refused (default: yes).
    pub fn reject_future_iat(self, reject: bool) -> Self {
        self.shorthand(|issuer| issuer.reject_future_iat(reject))
    }

    /// Refuse tokens issued (`iat`) longer ago than `age` (`TOKEN_TOO_OLD`); `iat` becomes required.
    pub fn max_token_age(self, age: Duration) -> Self {
        self.shorthand(|issuer| issuer.max_token_age(age))
    }

    /// Require this header `typ` (for example `at+jwt`, RFC 9068), compared as RFC 7515 says.
    pub fn token_type(self, typ: impl Into<String>) -> Self {
        self.shorthand(|issuer| issuer.token_type(typ))
    }

    /// Accept tokens of this [`TokenKind`](crate::TokenKind); may be called several times.
    /// Once a kind is accepted, a token is let through only when it is exactly one of the
    /// accepted kinds (its `typ`, audience, issuer and required claims), RFC 8725 §3.12.
    /// The settings above ([`issuer`](Self::issuer), [`audience`](Self::audience), ...)
    /// still apply to every token.
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
    pub fn accept(self, kind: crate::profile::TokenKind) -> Self {
        self.shorthand(|issuer| issuer.accept(kind))
    }

    /// Trust one more issuer, with its own keys and rules (see [`Issuer`]); may be called several
    /// times. A token is then verified only with the keys of the issuer its `iss` names, and a
    /// token naming no trusted issuer is refused before any key is looked up.
    ///
    /// The one-issuer settings of this builder ([`key`](Self::key), [`audience`](Self::audience),
    /// ...) may be used besides, for one more issuer, only when they name it
    /// ([`issuer`](Self::issuer), or a key source that knows its issuer); claim rules on the
    /// builder without keys on the builder are refused, as are two issuers of the same name.
    ///
    /// ```
    /// use tower_jwt_guard::{ConfigError, Issuer, JwtAuth};
    ///
    /// let auth = JwtAuth::builder()
    ///     .trust(Issuer::new("https://a.example.com").hmac_secret([1u8; 32]).audience("api"))
    ///     .trust(Issuer::new("https://b.example.com").hmac_secret([2u8; 32]).audience("api"))
    ///     .build();
    /// assert!(auth.is_ok());
    ///
    /// // Keys on the builder that name no issuer: which tokens would they verify?
    /// let unnamed = JwtAuth::builder()
    ///     .hmac_secret([3u8; 32])
    ///     .trust(Issuer::new("https://a.example.com").hmac_secret([1u8; 32]))
    ///     .build();
    /// assert!(matches!(unnamed, Err(ConfigError::Invalid(_))));
    ///
    /// // A rule on the builder with no keys on the builder would apply to nothing.
    /// let ignored = JwtAuth::builder()
    ///     .audience("api")
    ///     .trust(Issuer::new("https://a.example.com").hmac_secret([1u8; 32]))
    ///     .build();
    /// assert!(matches!(ignored, Err(ConfigError::Invalid(_))));
    ///
    /// // Two issuers of one name.
    /// let twice = JwtAuth::builder()
    ///     .trust(Issuer::new("https://a.example.com").hmac_secret([1u8; 32]))
    ///     .trust(Issuer::new("https://a.example.com").hmac_secret([2u8; 32]))
    ///     .build();
    /// assert!(matches!(twice, Err(ConfigError::Invalid(_))));
    /// ```
    pub fn trust(mut self, issuer: Issuer) -> Self {
        self.trusted.push(issuer);
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
        F: Fn(&crate::audit::AuditEvent<'_>) + Send + Sync + 'static,
    {
        self.audit_hook = Some(Arc::new(hook));
        self
    }

    /// Checks the settings and freezes them.
    pub fn build(mut self) -> Result<JwtAuth, ConfigError> {
        let issuers = self.trusted_issuers()?;
        let verifier =
            TokenVerifier { algorithms: issuers.algorithms(), issuers, headers: HeaderCache::new() };
        let forgets_early = self.revocation.as_ref().and_then(|store| store.retention_margin());
        if forgets_early.is_some_and(|margin| margin.as_secs() < verifier.max_leeway()) {
            return Err(ConfigError::Invalid(
                "the revocation store forgets a revoked token before the leeway ends: \
                 give it an expiry margin of at least the leeway",
            ));
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
        let shared = Shared {
            sources: TokenSources::new(self.sources, self.max_token_len),
            verifier,
            bindings: self.bindings,
            revocation: self.revocation,
            revocation_fail_open: self.revocation_fail_open,
            optional: self.optional,
            cache_capacity: self.cache_capacity,
            cache_max_token_len: self.cache_max_token_len,
            context: Arc::new(ContextPolicy { mfa: self.mfa, responder: Responder::new(realm, self.hook) }),
            audit: crate::audit::Audit::new(self.audit_hook),
        };
        Ok(JwtAuth { shared: Arc::new(shared) })
    }

    /// The builder's own issuer and the trusted ones, frozen; the mixing rules of
    /// [`trust`](Self::trust).
    fn trusted_issuers(&mut self) -> Result<Issuers, ConfigError> {
        let mut issuers = Vec::with_capacity(self.trusted.len() + 1);
        let shorthand = std::mem::replace(&mut self.shorthand, Issuer::shorthand());
        if self.trusted.is_empty() {
            issuers.push(shorthand.trusted()?);
        } else if shorthand.has_keys() {
            let own = shorthand.trusted()?;
            if own.rules.issuers.is_empty() {
                return Err(ConfigError::Invalid(
                    "keys set on the builder next to trust(..) must name their issuer: \
                     add issuer(..), or give them to an Issuer",
                ));
            }
            issuers.push(own);
        } else if shorthand.has_rules() {
            return Err(ConfigError::Invalid(
                "claim rules set on the builder apply to the builder's own keys, and there are none: \
                 set them on each Issuer given to trust(..)",
            ));
        }
        for issuer in std::mem::take(&mut self.trusted) {
            issuers.push(issuer.trusted()?);
        }
        // A name given twice to one issuer is harmless; to two issuers it is ambiguous.
        let mut names: Vec<&str> = Vec::new();
        for issuer in &issuers {
            let mut own: Vec<&str> = issuer.rules.issuers.iter().map(String::as_str).collect();
            own.sort_unstable();
            own.dedup();
            names.extend(own);
        }
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(ConfigError::Invalid("two trusted issuers have the same name: give each one Issuer"));
        }
        Ok(Issuers::new(issuers))
    }
}
