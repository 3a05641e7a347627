//! [`JwtAuth`]: the builder that turns settings into an immutable, shared configuration.
//!
//! Everything that can be wrong is found by [`JwtAuthBuilder::build`] (a [`ConfigError`]),
//! never at request time and never by a panic.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response};

use crate::guard::binding::{BindingPolicy, Dpop};
use crate::guard::context::ContextPolicy;
use crate::guard::keys::{Issuer, KeySource, VerificationKey};
use crate::guard::layer::JwtLayer;
use crate::guard::mfa_policy::MfaPolicy;
use crate::guard::observe::readiness::{Readiness, ReadinessReport, ReadyService};
use crate::guard::profile::{Fapi2Profile, Fapi2Rule, SenderConstrained, FAPI2_ALGORITHMS, FAPI2_LEEWAY};
use crate::guard::rejection::{Protocol, RejectionHook, Responder};
use crate::guard::resource_metadata::ProtectedResource;
use crate::guard::revocation::RevocationStore;
use crate::guard::settings::Shared;
use crate::guard::source::{TokenSource, TokenSources};
use crate::guard::verify::{HeaderCache, Issuers, RequiredClaim, ResourceId, TokenVerifier};
use crate::primitives::algorithm::Algorithm;
use crate::primitives::authorization::DEFAULT_MAX_TOKEN_LEN;
use crate::primitives::error::{AuthError, ConfigError};

/// Default capacity of the verified-token cache.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Default length above which a verified token is not cached (it is still verified):
/// with the default capacity the cache's tokens then take at most about 20 MiB.
pub const DEFAULT_MAX_CACHED_TOKEN_LEN: usize = 2 * 1024;

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
            .field("profile", &self.shared.profile)
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
    pub fn audit_counts(&self) -> crate::guard::observe::audit::AuditCounts {
        self.shared.audit.counts()
    }
}

/// Readiness ([`readiness`](crate::readiness)): what the key sources and the store report.
impl JwtAuth {
    /// Whether the layers of this configuration can answer now: every trusted issuer's key
    /// source holds usable keys, the revocation store can answer, every binding policy has its
    /// keys (a message signature's JWKS URL has loaded). See
    /// [`readiness`](crate::readiness).
    ///
    /// A JWKS source asked this inside a tokio runtime starts fetching if it has not yet.
    pub fn readiness(&self) -> ReadinessReport {
        let shared = &self.shared;
        let several = shared.verifier.issuers.only().is_none();
        // With several issuers, the reason names the (configured, never token-supplied) issuer.
        let keys = shared.verifier.issuers.iter().map(|issuer| match issuer.keys.readiness() {
            Readiness::NotReady(reason) if several => {
                let name = issuer.rules.issuers.first().map_or("an issuer", String::as_str);
                ("keys", Readiness::not_ready(format!("{name}: {reason}")))
            }
            readiness => ("keys", readiness),
        });
        let revocation = shared.revocation.as_ref().map(|store| ("revocation", store.readiness()));
        // A binding whose keys are remote (a message signature's JWKS), named by its policy.
        let bindings = shared.bindings.iter().map(|policy| match policy.readiness() {
            Readiness::NotReady(reason) => {
                ("bindings", Readiness::not_ready(format!("{}: {reason}", policy.name())))
            }
            Readiness::Ready => ("bindings", Readiness::Ready),
        });
        ReadinessReport::of(keys.chain(revocation).chain(bindings))
    }

    /// A service answering every request with [`readiness`](Self::readiness): 200 when the layer
    /// can answer, 503 otherwise, with the reasons as JSON. Mount it at `/ready`, outside the
    /// layer (`Router::route_service("/ready", auth.ready_service())`).
    pub fn ready_service(&self) -> ReadyService {
        let auth = self.clone();
        ReadyService::new(move || auth.readiness())
    }
}

/// Protected-resource metadata (RFC 9728, [`ProtectedResource`]).
impl JwtAuth {
    /// The protected-resource metadata configured with
    /// [`JwtAuthBuilder::protected_resource`](crate::JwtAuthBuilder::protected_resource), as
    /// completed from the configuration (issuers, token sources).
    pub fn resource_metadata(&self) -> Option<&ProtectedResource> {
        self.shared.resource_metadata.as_ref()
    }

    /// An axum `Router` that serves the [`resource_metadata`](Self::resource_metadata) at its
    /// well-known path; without metadata configured, a router with no routes.
    #[cfg(feature = "axum")]
    pub fn resource_metadata_router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.resource_metadata().map(ProtectedResource::router).unwrap_or_default()
    }
}

/// Rules applied to an issuer (see [`JwtAuthBuilder::every_issuer`]).
type IssuerRules = Box<dyn Fn(Issuer) -> Issuer + Send + Sync>;

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
    /// Rules given to every issuer at build (`every_issuer`).
    every_issuer: Vec<IssuerRules>,
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
    audit_hook: Option<crate::guard::observe::audit::AuditHook>,
    expose_error_details: bool,
    resource: Option<Result<ResourceId, ConfigError>>,
    protected_resource: Option<ProtectedResource>,
    dpop: Option<Dpop>,
    /// The FAPI 2.0 profile (`fapi2`), with its exceptions.
    fapi2: Option<Fapi2Profile>,
    #[cfg(feature = "introspection")]
    introspection: Option<crate::guard::keys::Introspector>,
    /// The recipient's keys for encrypted tokens; a key that failed to load is reported by `build`.
    #[cfg(feature = "jwe")]
    decryption_keys: Vec<Result<crate::guard::verify::jwe::DecryptionKey, ConfigError>>,
}

impl Default for JwtAuthBuilder {
    fn default() -> Self {
        JwtAuthBuilder {
            shorthand: Issuer::shorthand(),
            trusted: Vec::new(),
            every_issuer: Vec::new(),
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
            expose_error_details: false,
            resource: None,
            protected_resource: None,
            dpop: None,
            fapi2: None,
            #[cfg(feature = "introspection")]
            introspection: None,
            #[cfg(feature = "jwe")]
            decryption_keys: Vec::new(),
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

    /// Adds a decryption key for encrypted tokens (JWE, feature `jwe`): a compact JWE is
    /// decrypted with the key its `kid`, `alg` and `enc` select, then its nested signed JWT is
    /// verified with the issuers' keys, or (under a shared secret) its claims set is checked by
    /// the issuer's rules. Without decryption keys every encrypted token is refused.
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
    /// use tower_jwt_guard::JwtAuth;
    ///
    /// let secret = b"fedcba9876543210fedcba9876543210";
    /// let auth = JwtAuth::builder()
    ///     .hmac_secret(b"0123456789abcdef0123456789abcdef")
    ///     .issuer("https://auth.example.com")
    ///     .decryption_key(DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, secret)?)
    ///     .build()?;
    /// # let _ = auth;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    #[cfg(feature = "jwe")]
    pub fn decryption_key(mut self, key: crate::guard::verify::jwe::DecryptionKey) -> Self {
        self.decryption_keys.push(Ok(key));
        self
    }

    /// Adds a decryption key that failed or succeeded to load: a failure is reported by
    /// [`build`](Self::build).
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
    /// use tower_jwt_guard::JwtAuth;
    ///
    /// let err = JwtAuth::builder()
    ///     .hmac_secret([7u8; 32])
    ///     .try_decryption_key(DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, b"short"))
    ///     .build();
    /// assert!(err.is_err());
    /// ```
    #[cfg(feature = "jwe")]
    pub fn try_decryption_key(
        mut self,
        key: Result<crate::guard::verify::jwe::DecryptionKey, ConfigError>,
    ) -> Self {
        self.decryption_keys.push(key);
        self
    }

    /// Adds a key that failed or succeeded to load: a failure is reported by [`build`](Self::build).
    ///
    /// ```
    /// use tower_jwt_guard::Algorithm;
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

    /// Checks opaque access tokens at an introspection endpoint (RFC 7662, feature
    /// `introspection`): a token that is not a compact JWS (or every token, with
    /// [`IntrospectorBuilder::all_tokens`](crate::guard::keys::IntrospectorBuilder::all_tokens)) is
    /// introspected instead of verified, and its active answer meets the same rules as a JWT's
    /// claims. With an introspector, keys are optional: without any, every JWS is refused.
    #[cfg(feature = "introspection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
    pub fn introspection(mut self, introspector: crate::guard::keys::Introspector) -> Self {
        self.introspection = Some(introspector);
        self
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
    pub fn accept(self, kind: crate::guard::verify::TokenKind) -> Self {
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

    /// Applies `rules` to every issuer this layer trusts, at [`build`](Self::build): the
    /// builder's own (its one-issuer settings) when it has keys, and each issuer given to
    /// [`trust`](Self::trust), before or after this call. For rules that are the service's, not
    /// an issuer's: the claims every token must carry, the kinds of token it takes.
    ///
    /// ```
    /// use tower_jwt_guard::{ConfigError, Issuer, JwtAuth, RequiredClaim};
    ///
    /// let auth = JwtAuth::builder()
    ///     .trust(Issuer::new("https://a.example.com").hmac_secret([1u8; 32]).audience("api"))
    ///     .trust(Issuer::new("https://b.example.com").hmac_secret([2u8; 32]).audience("api"))
    ///     .every_issuer(|issuer| issuer.require([RequiredClaim::Sub, RequiredClaim::Jti]))
    ///     .build();
    /// assert!(auth.is_ok());
    ///
    /// // The same rules on the builder itself would apply to no keys: refused.
    /// let misplaced = JwtAuth::builder()
    ///     .trust(Issuer::new("https://a.example.com").hmac_secret([1u8; 32]))
    ///     .require([RequiredClaim::Jti])
    ///     .build();
    /// assert!(matches!(misplaced, Err(ConfigError::Invalid(_))));
    /// ```
    pub fn every_issuer(mut self, rules: impl Fn(Issuer) -> Issuer + Send + Sync + 'static) -> Self {
        self.every_issuer.push(Box::new(rules));
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
        self.resource = Some(ResourceId::parse(url.as_ref()));
        self
    }

    /// Publishes this protected-resource metadata (RFC 9728) and names its URL in every
    /// `WWW-Authenticate` challenge (`resource_metadata="…"`), from this layer and from the
    /// scope and MFA layers behind it. What the metadata leaves unset is taken from this
    /// configuration: the accepted issuers become `authorization_servers`, the token sources
    /// `bearer_methods_supported`, and a [`dpop`](Self::dpop) policy its algorithms
    /// (`dpop_signing_alg_values_supported`) and whether it is required
    /// (`dpop_bound_access_tokens_required`). Serve it with
    /// [`JwtAuth::resource_metadata_router`] (axum) or [`ProtectedResource::service`].
    /// With [`resource`](Self::resource) also set, both must name the same resource.
    /// A [rejection hook](Self::on_rejection) replaces the whole response, challenge included.
    ///
    #[cfg_attr(
        not(feature = "axum"),
        doc = "[`JwtAuth::resource_metadata_router`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/struct.JwtAuth.html#method.resource_metadata_router"
    )]
    pub fn protected_resource(mut self, metadata: ProtectedResource) -> Self {
        self.protected_resource = Some(metadata);
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

    /// When a token counts as multi-factor for [`RequireMfa`].
    ///
    #[cfg_attr(feature = "axum", doc = "[`RequireMfa`]: crate::RequireMfa")]
    #[cfg_attr(
        not(feature = "axum"),
        doc = "[`RequireMfa`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/struct.RequireMfa.html"
    )]
    pub fn mfa(mut self, policy: MfaPolicy) -> Self {
        self.mfa = policy;
        self
    }

    /// Adds a binding policy, checked on every request. DPoP is configured with
    /// [`dpop`](Self::dpop) instead (it reads the scheme the token came with, and its proof's
    /// replay is step 4): a [`Dpop`] given here is refused by [`build`](Self::build).
    pub fn binding(mut self, policy: impl BindingPolicy) -> Self {
        self.bindings.push(Arc::new(policy));
        self
    }

    /// Verifies DPoP proofs (RFC 9449) for tokens bound with `cnf.jkt`, and reads
    /// `Authorization: DPoP`: see [`Dpop`]. Without it, a DPoP-bound token is refused.
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        self.dpop = Some(dpop);
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
        F: Fn(&crate::guard::observe::audit::AuditEvent<'_>) + Send + Sync + 'static,
    {
        self.audit_hook = Some(Arc::new(hook));
        self
    }

    /// The FAPI 2.0 Security Profile (final, February 2025) for a resource server: sets its
    /// defaults (algorithms PS256, ES256 and EdDSA; leeway 10 s) and makes
    /// [`build`](Self::build) refuse, with [`ConfigError::Profile`] naming the [`Fapi2Rule`],
    /// every setting that breaks one of its rules (see [`Fapi2Rule`] and the README's
    /// "FAPI 2.0" table). Call it first: later settings replace its defaults, and are checked.
    /// Sender-constrained tokens are required: give [`dpop`](Self::dpop) (with
    /// `algorithms(FAPI2_ALGORITHMS)`) or a [`CertificateBound`](crate::CertificateBound)
    /// [`binding`](Self::binding); a bearer token is then refused (`BINDING_MISMATCH`, with the
    /// `DPoP` and `Bearer` challenges). `Debug` of the built [`JwtAuth`] lists each rule.
    ///
    /// ```
    /// use tower_jwt_guard::{ConfigError, Dpop, JwtAuth, VerificationKey, FAPI2_ALGORITHMS};
    ///
    /// let pem = "-----BEGIN PUBLIC KEY-----\n\
    ///     MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
    ///     -----END PUBLIC KEY-----\n";
    /// let dpop = || Dpop::allowed().public_url("https://api.example.com").algorithms(FAPI2_ALGORITHMS);
    /// let auth = JwtAuth::builder()
    ///     .fapi2()
    ///     .key(VerificationKey::from_pem(pem.as_bytes(), None)?)
    ///     .audience("api")
    ///     .dpop(dpop())
    ///     .build()?;
    /// assert!(format!("{auth:?}").contains("fapi2/sender-constrained"));
    ///
    /// // HS256 breaks the profile's algorithm rule.
    /// let hs256 = JwtAuth::builder().fapi2().hmac_secret([7u8; 32]).dpop(dpop()).build();
    /// assert!(matches!(hs256, Err(ConfigError::Profile { rule: "fapi2/algorithms", .. })));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn fapi2(mut self) -> Self {
        self.fapi2 = Some(Fapi2Profile::default());
        self.shorthand(|issuer| issuer.profile_defaults(FAPI2_LEEWAY, &FAPI2_ALGORITHMS))
    }

    /// Leaves one rule of the [`fapi2`](Self::fapi2) profile unenforced, for `reason` (not
    /// empty), which `Debug` of the built [`JwtAuth`] shows beside the rule. The one way out of
    /// the profile: an auditor sees each exception and why it was made.
    ///
    /// ```
    /// use tower_jwt_guard::{Fapi2Rule, JwtAuth};
    ///
    /// let auth = JwtAuth::builder()
    ///     .fapi2()
    ///     .hmac_secret([7u8; 32])
    ///     .algorithms([tower_jwt_guard::Algorithm::HS256])
    ///     .fapi2_exception(Fapi2Rule::Algorithms, "internal test issuer")
    ///     .fapi2_exception(Fapi2Rule::SenderConstrained, "internal test issuer")
    ///     .build()?;
    /// assert!(format!("{auth:?}").contains("EXCEPTED: internal test issuer"));
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn fapi2_exception(mut self, rule: Fapi2Rule, reason: impl Into<String>) -> Self {
        self.fapi2.get_or_insert_with(Fapi2Profile::default).except(rule, reason.into());
        self
    }

    /// Checks the settings and freezes them.
    pub fn build(mut self) -> Result<JwtAuth, ConfigError> {
        // The resource (RFC 8707) is this service's identity: every issuer's tokens must name it.
        if self.bindings.iter().any(|policy| policy.confirms().contains(&"jkt")) {
            return Err(ConfigError::Invalid(
                "DPoP (cnf.jkt) is configured with JwtAuthBuilder::dpop(..), not binding(..)",
            ));
        }
        let resource = self.resource.take().transpose()?;
        let issuers = match self.trusted_issuers(resource.as_ref()) {
            // Under the profile, a key of another algorithm breaks its algorithm rule.
            Err(ConfigError::AlgorithmNotAllowed(_))
                if self.fapi2.as_ref().is_some_and(|profile| profile.enforces(Fapi2Rule::Algorithms)) =>
            {
                return Err(ConfigError::Profile {
                    rule: Fapi2Rule::Algorithms.id(),
                    why: "only PS256, ES256 and EdDSA keys and algorithms are allowed",
                });
            }
            other => other?,
        };
        #[cfg(feature = "jwe")]
        let decryption = {
            let keys =
                std::mem::take(&mut self.decryption_keys).into_iter().collect::<Result<Vec<_>, _>>()?;
            let keys = crate::guard::verify::jwe::DecryptionKeys::new(keys);
            if keys.duplicate_kid().is_some() {
                return Err(ConfigError::Invalid("two decryption keys share a kid, alg and enc"));
            }
            // Several issuers, or one tenant pattern (an issuer per tenant): a shared secret
            // that any of them could be said to hold would speak for all of them.
            if issuers.only().is_none() && keys.has_unbound_claims_key() {
                return Err(ConfigError::Invalid(
                    "with several trusted issuers (or tenants), a decryption key that accepts claims \
                     sets must name its issuer (DecryptionKey::for_issuer) or require nested JWS",
                ));
            }
            keys
        };
        let verifier = TokenVerifier {
            algorithms: issuers.algorithms(),
            issuers,
            headers: HeaderCache::new(),
            #[cfg(feature = "jwe")]
            decryption,
        };
        let forgets_early = self.revocation.as_ref().and_then(|store| store.retention_margin());
        if forgets_early.is_some_and(|margin| margin.as_secs() < verifier.max_leeway()) {
            return Err(ConfigError::Invalid(
                "the revocation store forgets a revoked token before the leeway ends: \
                 give it an expiry margin of at least the leeway",
            ));
        }
        if let Some(dpop) = &self.dpop {
            dpop.validate()?;
        }
        if let Some(profile) = &self.fapi2 {
            profile.check(&crate::guard::profile::Settings {
                issuers: &verifier.issuers,
                sources: &self.sources,
                dpop: self.dpop.as_ref(),
                bindings: &self.bindings,
                #[cfg(feature = "introspection")]
                introspection_signed: self.introspection.as_ref().map(|i| i.settings().signed.is_some()),
                #[cfg(not(feature = "introspection"))]
                introspection_signed: None,
            })?;
            if profile.enforces(Fapi2Rule::SenderConstrained) {
                self.bindings.push(Arc::new(SenderConstrained));
            }
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
        if let (Some(metadata), Some(resource)) = (&self.protected_resource, &resource) {
            if metadata.id() != resource {
                return Err(ConfigError::Invalid(
                    "the protected-resource metadata and resource(..) name different resources",
                ));
            }
        }
        let decision_metrics = decision_metrics(&verifier);
        let resource_metadata = self
            .protected_resource
            .map(|metadata| metadata.complete(verifier.issuers(), &self.sources, self.dpop.as_ref()));
        let responder = Responder::new(realm, self.expose_error_details, self.hook)
            .with_resource_metadata(resource_metadata.as_ref().and_then(ProtectedResource::challenge_value))
            .with_dpop(self.dpop.as_ref().map(Dpop::challenge));
        let shared = Shared {
            sources: TokenSources::new(self.sources, self.max_token_len).with_dpop(self.dpop.is_some()),
            verifier,
            bindings: self.bindings,
            revocation: self.revocation,
            revocation_fail_open: self.revocation_fail_open,
            optional: self.optional,
            cache_capacity: self.cache_capacity,
            cache_max_token_len: self.cache_max_token_len,
            context: Arc::new(ContextPolicy { mfa: self.mfa, responder }),
            audit: crate::guard::observe::audit::Audit::new(self.audit_hook).with_metrics(decision_metrics),
            metrics: crate::guard::observe::metrics::GuardMetrics::default(),
            resource_metadata,
            dpop: self.dpop.map(Arc::new),
            profile: self.fapi2.map(|profile| Arc::new(profile) as Arc<dyn fmt::Debug + Send + Sync>),
            #[cfg(feature = "introspection")]
            introspection: self.introspection,
        };
        Ok(JwtAuth { shared: Arc::new(shared) })
    }

    /// The builder's own issuer and the trusted ones, frozen; the mixing rules of
    /// [`trust`](Self::trust).
    fn trusted_issuers(&mut self, resource: Option<&ResourceId>) -> Result<Issuers, ConfigError> {
        let mut issuers = Vec::with_capacity(self.trusted.len() + 1);
        let shorthand = std::mem::replace(&mut self.shorthand, Issuer::shorthand());
        // An introspection endpoint stands in for the keys of the builder's own issuer.
        #[cfg(feature = "introspection")]
        let introspected = self.introspection.as_ref().map(|introspector| introspector.issuer());
        #[cfg(not(feature = "introspection"))]
        let introspected = None;
        let every_issuer = std::mem::take(&mut self.every_issuer);
        let with_rules = |issuer: Issuer| every_issuer.iter().fold(issuer, |issuer, rules| rules(issuer));
        if self.trusted.is_empty() {
            issuers.push(with_rules(shorthand).trusted_with(introspected)?);
        } else if introspected.is_some() {
            // The builder's own issuer is the endpoint's (kept beside the trusted ones, first),
            // and it must have a name: an endpoint speaks for its issuer only.
            let own = with_rules(shorthand).trusted_with(introspected)?;
            if own.rules.issuers.is_empty() {
                return Err(ConfigError::Invalid(
                    "an introspection endpoint next to trust(..) must name its issuer: add issuer(..), \
                     or discover the endpoint from its issuer",
                ));
            }
            issuers.push(own);
        } else if shorthand.has_keys() {
            let own = with_rules(shorthand).trusted()?;
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
            issuers.push(with_rules(issuer).trusted()?);
        }
        for issuer in &mut issuers {
            issuer.rules.resource = resource.cloned();
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
        // The endpoint's issuer is the first: introspection answers are judged by it alone.
        Ok(Issuers::new(issuers).with_introspected(introspected.is_some()))
    }
}

/// The label values the decision metrics may take: the accepted kinds' names and the configured
/// issuers (the layer's and the kinds'), never a value read from a request.
fn decision_metrics(verifier: &TokenVerifier) -> crate::guard::observe::metrics::DecisionMetrics {
    let rules = || verifier.issuers.iter().map(|issuer| &issuer.rules);
    let kinds =
        rules().flat_map(|rules| rules.kinds.iter()).map(|kind| Arc::clone(kind.shared_name())).collect();
    let kind_issuers =
        rules().flat_map(|rules| rules.kinds.iter()).flat_map(|kind| kind.recipients().0).map(String::as_str);
    crate::guard::observe::metrics::DecisionMetrics::new(kinds, verifier.issuers().chain(kind_issuers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::observe::readiness::Readiness;
    use crate::guard::revocation::{RevocationCheck, RevocationStore};
    use crate::primitives::claims::TokenFacts;

    struct Down;

    impl RevocationStore for Down {
        fn check(&self, _token: &TokenFacts) -> RevocationCheck {
            RevocationCheck::Unavailable
        }

        fn readiness(&self) -> Readiness {
            Readiness::not_ready("subscription down")
        }
    }

    #[test]
    fn a_store_not_ready_makes_the_layer_not_ready() {
        let ready = JwtAuth::builder().hmac_secret([7u8; 32]).build().unwrap();
        assert!(ready.readiness().is_ready());
        let auth = JwtAuth::builder().hmac_secret([7u8; 32]).revocation(Down).build().unwrap();
        let report = auth.readiness();
        assert!(!report.is_ready());
        assert_eq!(report.reasons().collect::<Vec<_>>(), [("revocation", "subscription down")]);
        let response = report.to_response();
        assert_eq!(response.status(), 503);
        assert_eq!(
            report.to_json(),
            r#"{"ready":false,"reasons":[{"component":"revocation","reason":"subscription down"}]}"#
        );
    }
}
