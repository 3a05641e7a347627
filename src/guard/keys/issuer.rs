//! [`Issuer`]: the unit of trust. One issuer (`iss`), its own keys and its own rules.
//!
//! A token is verified only with the keys of the issuer it names (RFC 8725 §3.8), and only that
//! issuer's algorithms, audiences, leeway, required claims and token kinds apply to it. The
//! settings on [`JwtAuthBuilder`](crate::JwtAuthBuilder) itself (`key`, `audience`, ...) are the
//! shorthand for one issuer; [`JwtAuthBuilder::trust`](crate::JwtAuthBuilder::trust) adds more.
//! Both end as the same [`TrustedIssuer`], verified by the same code.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::primitives::algorithm::Algorithm;

use super::{Chain, KeySource, StaticKeys, VerificationKey};
use crate::guard::verify::TokenKind;
use crate::guard::verify::{AlgorithmSet, ClaimRules, RequiredClaim, TrustedIssuer};
use crate::primitives::error::ConfigError;

/// One trusted issuer: its name (the exact `iss` of its tokens), its keys and its rules.
///
/// Give each identity provider its own `Issuer` and hand them to
/// [`JwtAuthBuilder::trust`](crate::JwtAuthBuilder::trust): a token is then checked only with
/// the keys and rules of the issuer its `iss` names, and a token naming no trusted issuer is
/// refused (`INVALID_TOKEN`) before any key is looked up. A `kid` never crosses issuers.
///
/// The methods have the names and meaning of the one-issuer settings of
/// [`JwtAuthBuilder`](crate::JwtAuthBuilder); the defaults are the same (`exp` required,
/// leeway 30 s, `nbf` and future `iat` checked).
///
/// ```
/// use tower_jwt_guard::{Algorithm, Issuer, JwtAuth, VerificationKey};
///
/// let auth = JwtAuth::builder()
///     .trust(Issuer::new("https://internal.example.com").hmac_secret([1u8; 32]).audience("api"))
///     .trust(
///         Issuer::new("https://partner.example.com")
///             .key(VerificationKey::hmac(Algorithm::HS512, [2u8; 64])?.with_kid("p1"))
///             .audience("api")
///             .leeway(std::time::Duration::from_secs(5)),
///     )
///     .build()?;
/// # let _ = auth;
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
///
/// `Debug` never shows a key:
///
/// ```
/// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").hmac_secret([7u8; 32]);
/// let shown = format!("{issuer:?}");
/// assert!(shown.contains("https://a.example.com") && shown.contains("REDACTED"));
/// ```
#[must_use]
pub struct Issuer {
    keys: StaticKeys,
    key_source: Option<Arc<dyn KeySource>>,
    algorithms: Option<Vec<Algorithm>>,
    rules: ClaimRules,
    /// Whether a rule was set: on the builder's shorthand without keys, a setting that would
    /// apply to nothing.
    rules_set: bool,
    /// Made by [`Issuer::new`] (not the builder's shorthand).
    named: bool,
    /// Made by [`Issuer::tenants`]: the tenants' keys.
    #[cfg(feature = "jwks")]
    tenants: Option<super::TenantKeys>,
    error: Option<ConfigError>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = f.debug_struct("Issuer");
        shown
            .field("names", &self.rules.issuers)
            .field("keys", &self.keys)
            .field("key_source", &self.key_source.as_ref().map(|_| "custom"))
            .field("algorithms", &self.algorithms)
            .field("rules", &self.rules);
        #[cfg(feature = "jwks")]
        shown.field("tenants", &self.tenants);
        shown.finish_non_exhaustive()
    }
}

impl Issuer {
    /// The issuer whose tokens carry exactly this `iss`. Give it keys ([`key`](Self::key),
    /// [`hmac_secret`](Self::hmac_secret) or [`key_source`](Self::key_source)).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://auth.example.com").hmac_secret([7u8; 32]);
    /// assert_eq!(issuer.name(), Some("https://auth.example.com"));
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let mut issuer = Issuer::shorthand();
        if name.is_empty() {
            issuer.error = Some(ConfigError::Invalid("a trusted issuer needs a non-empty name"));
        }
        issuer.rules.issuers.push(name);
        issuer.named = true;
        issuer
    }

    /// The issuer `name` with its keys found by OIDC discovery (feature `jwks`): the JWKS of
    /// `{name}/.well-known/openid-configuration`, with the default
    /// [`JwksKeys`](crate::guard::keys::JwksKeys) settings. For other settings, build the source with
    /// [`JwksKeys::discover`](crate::guard::keys::JwksKeys::discover) and give it to
    /// [`key_source`](Self::key_source). The algorithm allow-list must be given.
    ///
    /// ```
    /// use tower_jwt_guard::{Algorithm, Issuer};
    ///
    /// let issuer = Issuer::discover("https://idp.example.com")?.algorithms([Algorithm::RS256]).audience("api");
    /// assert_eq!(issuer.name(), Some("https://idp.example.com"));
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn discover(name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        let keys = super::JwksKeys::discover(name.clone()).build()?;
        Ok(Issuer::new(name).key_source(keys))
    }

    /// The issuers of every accepted tenant of a pattern such as
    /// `https://login.example.com/{tenant}/v2.0`, each with its keys found by OIDC discovery on
    /// its first token (feature `jwks`; see [`TenantKeys`](crate::guard::keys::TenantKeys) for the
    /// tenants accepted and the bounds). The rules set on this `Issuer` (algorithms, which must be
    /// given, audiences, leeway, token kinds, ...) apply to every tenant; a tenant's token is
    /// verified only with that tenant's keys, and its issuer
    /// ([`AuthContext::issuer`](crate::AuthContext::issuer), revocation) is its whole `iss`.
    /// Issuers named exactly are selected before any pattern.
    ///
    /// ```
    /// use tower_jwt_guard::keys::TenantKeys;
    /// use tower_jwt_guard::{Algorithm, ConfigError, Issuer, JwtAuth};
    ///
    /// let tenants = TenantKeys::builder("https://login.example.com/{tenant}/v2.0").allow(["contoso"]).build()?;
    /// let auth = JwtAuth::builder()
    ///     .trust(Issuer::tenants(tenants.clone()).algorithms([Algorithm::RS256]).audience("api"))
    ///     .trust(Issuer::new("https://internal.example.com").hmac_secret([1u8; 32]).audience("api"))
    ///     .build();
    /// assert!(auth.is_ok());
    ///
    /// // A JWKS holds asymmetric keys only: the allow-list must be given, and without HMAC.
    /// let implicit = JwtAuth::builder().trust(Issuer::tenants(tenants.clone())).build();
    /// assert!(implicit.is_err());
    /// let hmac = JwtAuth::builder().trust(Issuer::tenants(tenants).algorithms([Algorithm::HS256])).build();
    /// assert!(hmac.is_err());
    /// # Ok::<(), ConfigError>(())
    /// ```
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn tenants(tenants: super::TenantKeys) -> Self {
        let mut issuer = Issuer::shorthand();
        issuer.named = true;
        issuer.tenants = Some(tenants);
        issuer
    }

    /// The settings of [`JwtAuthBuilder`](crate::JwtAuthBuilder) for its own keys: no name yet.
    pub(crate) fn shorthand() -> Self {
        Issuer {
            keys: StaticKeys::default(),
            key_source: None,
            algorithms: None,
            rules: ClaimRules::default(),
            rules_set: false,
            named: false,
            #[cfg(feature = "jwks")]
            tenants: None,
            error: None,
        }
    }

    /// The issuer's name (its first, for the builder's shorthand with several); none for
    /// [`Issuer::tenants`].
    ///
    #[cfg_attr(
        not(feature = "jwks"),
        doc = "[`Issuer::tenants`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/keys/struct.Issuer.html#method.tenants"
    )]
    pub fn name(&self) -> Option<&str> {
        self.rules.issuers.first().map(String::as_str)
    }

    fn rule(mut self, set: impl FnOnce(&mut ClaimRules)) -> Self {
        set(&mut self.rules);
        self.rules_set = true;
        self
    }

    /// One more name for the same keys (the builder's `issuer(..)`).
    pub(crate) fn also_named(self, name: String) -> Self {
        self.rule(|rules| rules.issuers.push(name))
    }

    /// Adds a verification key (bound to its one algorithm).
    ///
    /// ```
    /// use tower_jwt_guard::{Algorithm, Issuer, VerificationKey};
    ///
    /// let issuer = Issuer::new("https://a.example.com").key(VerificationKey::hmac(Algorithm::HS256, [1u8; 32])?);
    /// # let _ = issuer;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn key(mut self, key: VerificationKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds a key that failed or succeeded to load: a failure is reported by
    /// [`JwtAuthBuilder::build`](crate::JwtAuthBuilder::build).
    ///
    /// ```
    /// use tower_jwt_guard::{Algorithm, ConfigError, Issuer, JwtAuth, VerificationKey};
    ///
    /// let weak = Issuer::new("https://a.example.com").try_key(VerificationKey::hmac(Algorithm::HS256, b"short"));
    /// let err = JwtAuth::builder().trust(weak).build().unwrap_err();
    /// assert!(matches!(err, ConfigError::WeakSecret { .. }));
    /// ```
    pub fn try_key(mut self, key: Result<VerificationKey, ConfigError>) -> Self {
        match key {
            Ok(key) => self.key(key),
            Err(err) => {
                self.error.get_or_insert(err);
                self
            }
        }
    }

    /// Shorthand for an `HS256` secret (at least 32 bytes).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").hmac_secret([7u8; 32]);
    /// # let _ = issuer;
    /// ```
    pub fn hmac_secret(self, secret: impl AsRef<[u8]>) -> Self {
        self.try_key(VerificationKey::hmac(Algorithm::HS256, secret))
    }

    /// A key source (JWKS, or your own) consulted for this issuer's tokens, after any static keys.
    ///
    /// ```
    /// use tower_jwt_guard::keys::StaticKeys;
    /// use tower_jwt_guard::{Algorithm, Issuer, VerificationKey};
    ///
    /// let keys = StaticKeys::new([VerificationKey::hmac(Algorithm::HS256, [1u8; 32])?]);
    /// let issuer = Issuer::new("https://a.example.com").key_source(keys).algorithms([Algorithm::HS256]);
    /// # let _ = issuer;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn key_source(mut self, source: impl KeySource) -> Self {
        self.key_source = Some(Arc::new(source));
        self
    }

    /// The algorithm allow-list of this issuer. By default it is exactly the algorithms of its
    /// keys; with a key source whose algorithms are not known in advance (JWKS) it must be given.
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com")
    ///     .algorithms([tower_jwt_guard::Algorithm::RS256, tower_jwt_guard::Algorithm::ES256]);
    /// # let _ = issuer;
    /// ```
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self.rules_set = true;
        self
    }

    /// Accept this issuer's tokens for this audience (`aud`); may be called several times.
    /// Without any, a token that names an audience is refused, unless
    /// [`accept_any_audience`](Self::accept_any_audience).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").audience("api");
    /// # let _ = issuer;
    /// ```
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.rule(|rules| rules.audiences.push(audience.into()))
    }

    /// Accept this issuer's tokens whatever audience they name, when no
    /// [`audience`](Self::audience) is configured (RFC 8725 §3.9: only for services that share
    /// the issuer's tokens with every other service).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").accept_any_audience();
    /// # let _ = issuer;
    /// ```
    pub fn accept_any_audience(self) -> Self {
        self.rule(|rules| rules.accept_any_audience = true)
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` of this issuer's tokens (default 30 s).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").leeway(std::time::Duration::from_secs(5));
    /// # let _ = issuer;
    /// ```
    pub fn leeway(self, leeway: Duration) -> Self {
        self.rule(|rules| rules.leeway = leeway.as_secs())
    }

    /// The registered claims this issuer's tokens must carry (default: `exp`). Replaces the list.
    ///
    /// ```
    /// use tower_jwt_guard::{Issuer, RequiredClaim};
    /// let issuer = Issuer::new("https://a.example.com").require([RequiredClaim::Exp, RequiredClaim::Sub]);
    /// # let _ = issuer;
    /// ```
    pub fn require(self, claims: impl IntoIterator<Item = RequiredClaim>) -> Self {
        self.rule(|rules| rules.required = claims.into_iter().collect())
    }

    /// Whether `nbf` is checked (default: yes).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").validate_nbf(true);
    /// # let _ = issuer;
    /// ```
    pub fn validate_nbf(self, validate: bool) -> Self {
        self.rule(|rules| rules.validate_nbf = validate)
    }

    /// Whether a token issued in the future (`iat` beyond the leeway) is refused (default: yes).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").reject_future_iat(true);
    /// # let _ = issuer;
    /// ```
    pub fn reject_future_iat(self, reject: bool) -> Self {
        self.rule(|rules| rules.reject_future_iat = reject)
    }

    /// Refuse this issuer's tokens issued (`iat`) longer ago than `age` (`TOKEN_TOO_OLD`).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").max_token_age(std::time::Duration::from_secs(3600));
    /// # let _ = issuer;
    /// ```
    pub fn max_token_age(self, age: Duration) -> Self {
        self.rule(|rules| rules.max_age = Some(age.as_secs()))
    }

    /// Require this header `typ` on this issuer's tokens (for example `at+jwt`, RFC 9068).
    ///
    /// ```
    /// let issuer = tower_jwt_guard::Issuer::new("https://a.example.com").token_type("at+jwt");
    /// # let _ = issuer;
    /// ```
    pub fn token_type(self, typ: impl Into<String>) -> Self {
        self.rule(|rules| rules.token_type = Some(typ.into()))
    }

    /// Accept this issuer's tokens of this [`TokenKind`]; may be called several times. Once a
    /// kind is accepted, a token of this issuer passes only as exactly one of its kinds.
    ///
    /// ```
    /// use tower_jwt_guard::{Issuer, TokenKind};
    /// let issuer = Issuer::new("https://a.example.com").accept(TokenKind::new("user", "at+jwt").audience("api"));
    /// # let _ = issuer;
    /// ```
    pub fn accept(self, kind: TokenKind) -> Self {
        self.rule(|rules| rules.kinds.push(kind))
    }

    /// A profile's defaults (the FAPI 2.0 profile's leeway and algorithms): set like
    /// [`leeway`](Self::leeway) and [`algorithms`](Self::algorithms), but not counted as a rule
    /// set by the user (the builder's shorthand may stay without keys next to `trust(..)`).
    pub(crate) fn profile_defaults(mut self, leeway: Duration, algorithms: &[Algorithm]) -> Self {
        self.rules.leeway = leeway.as_secs();
        self.algorithms = Some(algorithms.to_vec());
        self
    }

    /// Whether keys were given (static or a source).
    pub(crate) fn has_keys(&self) -> bool {
        #[cfg(feature = "jwks")]
        if self.tenants.is_some() {
            return true;
        }
        !self.keys.is_empty() || self.key_source.is_some()
    }

    /// Whether a claim rule, an algorithm list or a name was set.
    pub(crate) fn has_rules(&self) -> bool {
        self.rules_set
    }

    /// Checks the settings and freezes them. An issuer with no name accepts any `iss` (the
    /// builder's shorthand without `issuer(..)`), unless its key source knows its issuer.
    pub(crate) fn trusted(self) -> Result<TrustedIssuer, ConfigError> {
        self.trusted_with(None)
    }

    /// As [`trusted`](Self::trusted); with `introspected`, the issuer also stands for an
    /// introspection endpoint (RFC 7662): it may then have no keys (no JWS verifies locally), and
    /// the endpoint's issuer, when it was found from its metadata, is accepted too unless names
    /// were given.
    pub(crate) fn trusted_with(
        self,
        introspected: Option<Option<&str>>,
    ) -> Result<TrustedIssuer, ConfigError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        #[cfg(feature = "jwks")]
        if let Some(tenants) = self.tenants {
            return Self::tenant_pattern(tenants, self.keys, self.key_source, self.algorithms, self.rules);
        }
        let named = self.named;
        let keyless = introspected.is_some() && self.keys.is_empty() && self.key_source.is_none();
        let algorithms = match self.allowed_algorithms() {
            Err(ConfigError::NoKeys) if keyless => AlgorithmSet::default(),
            other => other?,
        };
        if self.keys.duplicate_kid().is_some() {
            return Err(ConfigError::Invalid("two keys share a kid"));
        }
        let mut rules = self.rules;
        let keys: Arc<dyn KeySource> = match (self.keys.is_empty(), self.key_source) {
            (true, None) if keyless => Arc::new(StaticKeys::default()),
            (true, None) => return Err(ConfigError::NoKeys),
            (true, Some(source)) => source,
            (false, None) => Arc::new(self.keys),
            (false, Some(source)) => Arc::new(Chain::new(self.keys, source)),
        };
        let unnamed = rules.issuers.is_empty();
        // A source that knows its issuer (OIDC discovery) makes `iss` required, unless named here.
        if let Some(known) = keys.issuer() {
            if rules.issuers.is_empty() {
                rules.issuers.push(known.to_owned());
            } else if named && !rules.issuers.iter().any(|name| name == known) {
                // The builder's shorthand may give one discovered key set several names (Entra
                // ID's v1 and v2 issuers); a trusted Issuer is the issuer its source serves.
                return Err(ConfigError::Invalid(
                    "the issuer's key source was discovered for another issuer: name the Issuer as its source",
                ));
            }
        }
        // So does an introspection endpoint found from its issuer's metadata.
        if let Some(Some(endpoint_issuer)) = introspected {
            if unnamed && !rules.issuers.iter().any(|name| name == endpoint_issuer) {
                rules.issuers.push(endpoint_issuer.to_owned());
            }
        }
        rules.kinds.validate(&rules.issuers)?;
        Ok(TrustedIssuer {
            keys,
            algorithms,
            rules,
            #[cfg(feature = "jwks")]
            tenants: None,
        })
    }

    /// A tenant pattern, frozen: no keys of its own, an explicit allow-list without HMAC.
    #[cfg(feature = "jwks")]
    fn tenant_pattern(
        tenants: super::TenantKeys,
        keys: StaticKeys,
        key_source: Option<Arc<dyn KeySource>>,
        algorithms: Option<Vec<Algorithm>>,
        rules: ClaimRules,
    ) -> Result<TrustedIssuer, ConfigError> {
        if !keys.is_empty() || key_source.is_some() {
            return Err(ConfigError::Invalid(
                "a tenant pattern finds each tenant's keys by discovery: give it no keys",
            ));
        }
        let algorithms = algorithms.ok_or(ConfigError::Invalid(
            "a tenant pattern needs an explicit algorithm allow-list (algorithms(..))",
        ))?;
        let mut set = AlgorithmSet::default();
        for alg in algorithms {
            if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                return Err(ConfigError::KeyAlgorithmMismatch { algorithm: alg });
            }
            set.insert(alg);
        }
        if set.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }
        rules.kinds.validate(&rules.issuers)?;
        Ok(TrustedIssuer {
            keys: Arc::new(StaticKeys::default()),
            algorithms: set,
            rules,
            tenants: Some(tenants),
        })
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
