//! [`SigningKey`]: a private key (or HMAC secret) bound to exactly one algorithm.

use std::fmt;

use jsonwebtoken::{EncodingKey, Header};

use serde_json::{Map, Value};

use crate::guard::keys::VerificationKey;
use crate::primitives::algorithm::Algorithm;
use crate::primitives::error::ConfigError;

/// A private key (or HMAC secret) bound to exactly one algorithm, for signing.
///
/// ```
/// use tower_jwt_guard::{issue::SigningKey, Algorithm};
///
/// let key = SigningKey::hmac(Algorithm::HS256, [7u8; 32])?;
/// assert_eq!(key.algorithm(), Algorithm::HS256);
/// // Too short for HS256: refused when configured, not when used.
/// assert!(SigningKey::hmac(Algorithm::HS256, b"short").is_err());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    pub(super) key: EncodingKey,
    pub(super) algorithm: Algorithm,
    pub(super) kid: Option<String>,
}

impl SigningKey {
    /// An HMAC secret for `HS256`/`HS384`/`HS512`, at least as long as the hash output.
    pub fn hmac(algorithm: Algorithm, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        // The same length rule as for verification keys.
        VerificationKey::hmac(algorithm, secret.as_ref())?;
        Ok(SigningKey { key: EncodingKey::from_secret(secret.as_ref()), algorithm, kid: None })
    }

    /// A PEM private key (PKCS#8, or PKCS#1 for RSA) for an RSA, ECDSA or EdDSA algorithm.
    pub fn from_pem(algorithm: Algorithm, pem: &[u8]) -> Result<Self, ConfigError> {
        let parsed = match algorithm {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => return Err(ConfigError::KeyAlgorithmMismatch { algorithm }),
        };
        let key = parsed.map_err(|_| ConfigError::InvalidKey("not a PEM private key for this algorithm"))?;
        let key = SigningKey { key, algorithm, kid: None };
        key.probe()?;
        Ok(key)
    }

    /// A PKCS#8 DER private key (PKCS#1 for RSA) for an RSA, ECDSA or EdDSA algorithm.
    pub fn from_der(algorithm: Algorithm, der: &[u8]) -> Result<Self, ConfigError> {
        let key = match algorithm {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_der(der),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_der(der),
            Algorithm::EdDSA => EncodingKey::from_ed_der(der),
            _ => return Err(ConfigError::KeyAlgorithmMismatch { algorithm }),
        };
        let key = SigningKey { key, algorithm, kid: None };
        key.probe()?;
        Ok(key)
    }

    /// Names the key: minted tokens carry this `kid` in their header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The one algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Signs a throw-away message, so a key that cannot sign is found when configured.
    fn probe(&self) -> Result<(), ConfigError> {
        jsonwebtoken::encode(
            &Header::new(self.algorithm.to_jsonwebtoken()),
            &Value::Object(Map::new()),
            &self.key,
        )
        .map(drop)
        .map_err(|_| ConfigError::KeyAlgorithmMismatch { algorithm: self.algorithm })
    }
}

/// Signs the client assertions of `private_key_jwt` (introspection): `typ` `JWT`, this key's `kid`.
#[cfg(feature = "introspection")]
impl crate::guard::keys::introspection::ClientAssertionKey for SigningKey {
    fn sign_assertion(&self, claims: &Map<String, Value>) -> Option<String> {
        let mut header = Header::new(self.algorithm.to_jsonwebtoken());
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(&header, claims, &self.key).ok()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("key", &"REDACTED")
            .finish()
    }
}
