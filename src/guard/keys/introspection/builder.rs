//! The settings of an [`Introspector`] and their defaults, and the builder that checks them.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use super::client::{Client, ClientAuth};
use super::discovery::Endpoint;
use super::flight::Introspector;
use super::settings::Settings;
use crate::primitives::error::ConfigError;

/// Settings of an [`Introspector`]; start with [`Introspector::builder`].
///
/// Its `Debug` shows the endpoint without credentials or query, and never the client secret:
///
/// ```
/// use tower_jwt_guard::keys::Introspector;
///
/// let builder = Introspector::builder("https://auth.example.com/introspect")
///     .client_secret_basic("api", "s3cr3t-value");
/// let shown = format!("{builder:?}");
/// assert!(shown.contains("https://auth.example.com/introspect"));
/// assert!(shown.contains("api") && !shown.contains("s3cr3t-value"));
/// ```
#[must_use]
pub struct IntrospectorBuilder {
    endpoint: Result<Endpoint, ConfigError>,
    pub(super) auth: Option<ClientAuth>,
    pub(super) settings: Settings,
    /// The decryption keys of encrypted answers (feature `jwe`).
    #[cfg(feature = "jwe")]
    decryption: Vec<crate::guard::verify::jwe::DecryptionKey>,
}

impl fmt::Debug for IntrospectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectorBuilder")
            .field(
                "endpoint",
                &self.endpoint.as_ref().map_or_else(|_| "(invalid)".into(), |e| format!("{e:?}")),
            )
            .field("auth", &self.auth)
            .field("settings", &self.settings)
            .finish()
    }
}

impl IntrospectorBuilder {
    pub(super) fn new(url: &str) -> Self {
        let endpoint = match Url::parse(url) {
            Ok(url) if !url.username().is_empty() || url.password().is_some() => Err(ConfigError::Invalid(
                "the introspection endpoint must not carry credentials: use client_secret_basic",
            )),
            Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(Endpoint::Fixed(url)),
            Ok(_) => Err(ConfigError::Invalid("the introspection endpoint must be an http(s) URL")),
            Err(_) => Err(ConfigError::Invalid("the introspection endpoint is not a URL")),
        };
        IntrospectorBuilder::with_endpoint(endpoint)
    }

    pub(super) fn discover(issuer: &str) -> Self {
        let endpoint = Endpoint::discover(issuer)
            .ok_or(ConfigError::Invalid("the issuer must be an http(s) URL without query or fragment"));
        IntrospectorBuilder::with_endpoint(endpoint)
    }

    /// The defaults around `endpoint` (or the reason it is not valid, reported by `build`).
    fn with_endpoint(endpoint: Result<Endpoint, ConfigError>) -> Self {
        IntrospectorBuilder {
            endpoint,
            auth: None,
            settings: Settings::default(),
            #[cfg(feature = "jwe")]
            decryption: Vec::new(),
        }
    }

    /// Authenticates this service to the endpoint with HTTP Basic (`client_secret_basic`,
    /// RFC 6749 §2.3.1: both parts form-encoded, then base64).
    pub fn client_secret_basic(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.auth = Some(ClientAuth::Basic { client_id: client_id.into(), secret: secret.into() });
        self
    }

    /// Authenticates this service with `client_id` and `client_secret` in the form body
    /// (`client_secret_post`).
    pub fn client_secret_post(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.auth = Some(ClientAuth::Post { client_id: client_id.into(), secret: secret.into() });
        self
    }

    /// Authenticates this service with a client assertion (`private_key_jwt`, RFC 7523 §2.2)
    /// signed by `key` (for example the crate's own [`SigningKey`](crate::issue::SigningKey)),
    /// a new one for each call, one minute long, for the authorization server: its issuer when
    /// the endpoint is [discovered](Introspector::discover), else the endpoint's URL.
    pub fn private_key_jwt(
        mut self,
        client_id: impl Into<String>,
        key: impl super::ClientAssertionKey,
    ) -> Self {
        self.auth =
            Some(ClientAuth::PrivateKeyJwt { client_id: client_id.into(), key: std::sync::Arc::new(key) });
        self
    }

    /// Longest time an active answer is served from the cache (default
    /// [`DEFAULT_CACHE_TTL`](super::DEFAULT_CACHE_TTL)); it is never served past the token's `exp`. This bounds how long a
    /// token revoked at the authorization server still passes here (a revocation through the
    /// layer's [`RevocationStore`](crate::guard::revocation::RevocationStore) applies at once). Zero
    /// disables the positive cache.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.settings.cache_ttl = ttl;
        self
    }

    /// How long an inactive answer is remembered (default [`DEFAULT_NEGATIVE_CACHE_TTL`](super::DEFAULT_NEGATIVE_CACHE_TTL); zero
    /// disables it).
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.settings.negative_cache_ttl = ttl;
        self
    }

    /// Answers each layer remembers (default [`DEFAULT_CACHE_CAPACITY`](super::DEFAULT_CACHE_CAPACITY); 0 disables the cache).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.settings.cache_capacity = capacity;
        self
    }

    /// Time limit of one call (default [`DEFAULT_TIMEOUT`](super::DEFAULT_TIMEOUT)): past it, the request is refused
    /// with 503 `AUTH_UNAVAILABLE`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Largest answer read (default [`DEFAULT_MAX_RESPONSE_SIZE`](super::DEFAULT_MAX_RESPONSE_SIZE)); a larger one is refused (503).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.settings.max_response_size = bytes;
        self
    }

    /// Most calls at once, one per distinct token (default [`DEFAULT_MAX_IN_FLIGHT`](super::DEFAULT_MAX_IN_FLIGHT)). Requests
    /// with the same token share one call; a request with yet another token beyond the cap is
    /// refused with 503 at once.
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.settings.max_in_flight = calls;
        self
    }

    /// Introspect every token, compact JWS included (default: only tokens that are not a JWS;
    /// a JWS is verified locally with the layer's keys). For authorization servers whose JWTs
    /// must be checked for revocation there; the layer then needs no keys.
    pub fn all_tokens(mut self, all: bool) -> Self {
        self.settings.all_tokens = all;
        self
    }

    /// Asks for signed answers (RFC 9701, `application/token-introspection+jwt`) and accepts
    /// only those: signed by one of `keys` (the authorization server's), with `iss` `issuer`,
    /// `aud` this client's id and an `iat` at most a minute old (10 s leeway). An unsigned
    /// answer is refused (503), as FAPI 2.0 Message Signing asks. For keys that rotate, take them
    /// from the authorization server's JWKS with [`signed_responses_from`](Self::signed_responses_from).
    ///
    /// ```
    /// use tower_jwt_guard::keys::Introspector;
    /// use tower_jwt_guard::VerificationKey;
    ///
    /// let pem = "-----BEGIN PUBLIC KEY-----\n\
    ///     MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
    ///     -----END PUBLIC KEY-----\n";
    /// let introspector = Introspector::builder("https://as.example.com/introspect")
    ///     .client_secret_basic("api", "secret")
    ///     .signed_responses("https://as.example.com", [VerificationKey::from_pem(pem.as_bytes(), None)?])
    ///     .build();
    /// assert!(introspector.is_ok());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn signed_responses(
        mut self,
        issuer: impl Into<String>,
        keys: impl IntoIterator<Item = crate::guard::keys::VerificationKey>,
    ) -> Self {
        let keys = crate::guard::keys::StaticKeys::new(keys);
        self.settings.signed = Some(signed(issuer.into(), std::sync::Arc::new(keys)));
        self
    }

    /// Like [`signed_responses`](Self::signed_responses), with the authorization server's keys
    /// from `keys`: typically its JWKS (`JwksKeys`, feature `jwks`,
    /// found by discovery from the issuer), so that a key rotation at the authorization server
    /// needs no restart here. The answer's key is found by its `kid` and `alg` as a token's is;
    /// while the source has no keys (its endpoint down), answers are refused (503).
    ///
    /// ```
    /// # #[cfg(feature = "jwks")] {
    /// use tower_jwt_guard::keys::{Introspector, JwksKeys};
    ///
    /// let jwks = JwksKeys::discover("https://as.example.com").build()?;
    /// let introspector = Introspector::discover("https://as.example.com")
    ///     .client_secret_basic("api", "secret")
    ///     .signed_responses_from("https://as.example.com", jwks)
    ///     .build();
    /// assert!(introspector.is_ok());
    /// # }
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn signed_responses_from(
        mut self,
        issuer: impl Into<String>,
        keys: impl crate::guard::keys::KeySource,
    ) -> Self {
        self.settings.signed = Some(signed(issuer.into(), std::sync::Arc::new(keys)));
        self
    }

    /// Decrypts the answers with `key` (feature `jwe`; call it again for more keys): each answer
    /// must then be encrypted (RFC 9701 §5), a JWE whose content is the signed answer (`cty`
    /// `JWT`), which is then checked as [`signed_responses`](Self::signed_responses) says (so
    /// that is required too). Register the matching public key and algorithms with the
    /// authorization server (`introspection_encrypted_response_alg` / `_enc`).
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
    /// use tower_jwt_guard::keys::Introspector;
    ///
    /// let key = DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [9u8; 32])?;
    /// // Encrypted answers are signed answers, encrypted: without signed_responses, no build.
    /// let unsigned = Introspector::builder("https://as.example.com/introspect")
    ///     .client_secret_basic("api", "secret")
    ///     .decryption_key(key)
    ///     .build();
    /// assert!(unsigned.is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    #[cfg(feature = "jwe")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwe")))]
    pub fn decryption_key(mut self, key: crate::guard::verify::jwe::DecryptionKey) -> Self {
        self.decryption.push(key);
        self
    }

    /// Checks the settings and prepares the HTTP client (rustls, no redirects).
    pub fn build(self) -> Result<Introspector, ConfigError> {
        let endpoint = self.endpoint?;
        let settings = self.settings;
        let auth = self.auth.ok_or(ConfigError::Invalid(
            "the introspector needs client credentials (client_secret_basic, client_secret_post or private_key_jwt)",
        ))?;
        if settings.timeout.is_zero() || settings.max_response_size == 0 || settings.max_in_flight == 0 {
            return Err(ConfigError::Invalid(
                "the introspection timeout, response size cap and in-flight cap must be positive",
            ));
        }
        let mut settings = settings;
        if let Some(signed) = &mut settings.signed {
            let hmac = |keys: &[crate::primitives::algorithm::Algorithm]| {
                keys.iter().any(|alg| alg.family() == jsonwebtoken::AlgorithmFamily::Hmac)
            };
            // Static keys are known now (none, or an HMAC key: refused); a JWKS's are not.
            let algorithms = signed.keys.algorithms();
            if signed.issuer.is_empty() || algorithms.as_ref().is_some_and(Vec::is_empty) {
                return Err(ConfigError::Invalid(
                    "signed introspection answers need the issuer and its keys",
                ));
            }
            if algorithms.as_deref().is_some_and(hmac) {
                return Err(ConfigError::Invalid(
                    "signed introspection answers are verified with public keys",
                ));
            }
            #[cfg(feature = "jwe")]
            if !self.decryption.is_empty() {
                let keys = crate::guard::verify::jwe::DecryptionKeys::new(self.decryption);
                if keys.duplicate_kid().is_some() {
                    return Err(ConfigError::Invalid(
                        "two introspection decryption keys share a kid, alg and enc",
                    ));
                }
                signed.decryption = Some(std::sync::Arc::new(keys));
            }
        } else {
            #[cfg(feature = "jwe")]
            if !self.decryption.is_empty() {
                return Err(ConfigError::Invalid(
                    "encrypted introspection answers are signed answers, encrypted: configure signed_responses too",
                ));
            }
        }
        let client = Client::new(endpoint, auth, &settings)
            .map_err(|_| ConfigError::Invalid("the HTTP client for introspection could not be set up"))?;
        Ok(Introspector::new(client, settings))
    }
}

/// Signed answers of `issuer`, verified with `keys`; decryption keys are added at build.
fn signed(
    issuer: String,
    keys: std::sync::Arc<dyn crate::guard::keys::KeySource>,
) -> super::signed::SignedResponses {
    super::signed::SignedResponses {
        issuer,
        keys,
        #[cfg(feature = "jwe")]
        decryption: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::keys::VerificationKey;
    use crate::primitives::algorithm::Algorithm;

    fn builder() -> IntrospectorBuilder {
        IntrospectorBuilder::new("https://as.example.com/introspect").client_secret_basic("api", "secret")
    }

    #[test]
    fn signed_answers_need_public_keys_and_encrypted_ones_need_signed_ones() {
        let refused = |builder: IntrospectorBuilder| builder.build().err().map(|err| err.to_string());
        let none = refused(builder().signed_responses("https://as.example.com", []));
        assert!(none.is_some_and(|err| err.contains("its keys")));
        let hmac = VerificationKey::hmac(Algorithm::HS256, [7u8; 32]).unwrap();
        let hmac = refused(builder().signed_responses("https://as.example.com", [hmac]));
        assert!(hmac.is_some_and(|err| err.contains("public keys")));
        #[cfg(feature = "jwe")]
        {
            use crate::guard::verify::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
            let key = || {
                DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [9u8; 32])
                    .unwrap()
                    .with_kid("k")
            };
            let unsigned = refused(builder().decryption_key(key()));
            assert!(unsigned.is_some_and(|err| err.contains("signed_responses")));
            let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
            let signed = || {
                let key = VerificationKey::from_pem(pem.as_bytes(), None).unwrap();
                builder().signed_responses("https://as.example.com", [key])
            };
            assert!(signed().decryption_key(key()).build().is_ok());
            let twice = refused(signed().decryption_key(key()).decryption_key(key()));
            assert!(twice.is_some_and(|err| err.contains("share a kid")));
        }
    }
}
