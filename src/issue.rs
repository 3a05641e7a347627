//! [`TokenIssuer`]: mints access tokens that this crate's layer accepts.
//!
//! The issuer adds the registered claims (`iss`, `sub`, `aud`, `iat`, `nbf`, `exp`, a random
//! `jti`) to your claims `C`. The same configuration that verifies is the natural source of the
//! issuer's settings: the same issuer, audience and token type.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock;
use crate::config::ConfigError;
use crate::keys::VerificationKey;

/// The default lifetime of an access token: 15 minutes.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

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
    key: EncodingKey,
    algorithm: Algorithm,
    kid: Option<String>,
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
        jsonwebtoken::encode(&Header::new(self.algorithm), &Value::Object(Map::new()), &self.key)
            .map(drop)
            .map_err(|_| ConfigError::KeyAlgorithmMismatch { algorithm: self.algorithm })
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

/// A freshly minted token and what the caller needs to hand it out.
#[derive(Clone)]
#[non_exhaustive]
pub struct MintedToken {
    /// The compact JWS.
    pub token: String,
    /// Its unique id (`jti`), for revocation.
    pub jti: String,
    /// Its lifetime in seconds (the OAuth `expires_in`).
    pub expires_in: u64,
    /// Its expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken")
            .field("token", &"REDACTED")
            .field("jti", &self.jti)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Why a token could not be minted.
#[derive(Debug)]
#[non_exhaustive]
pub enum IssueError {
    /// The claims did not serialise to a JSON object.
    ClaimsNotAnObject,
    /// Serialising or signing failed.
    Signing,
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssueError::ClaimsNotAnObject => f.write_str("the claims must serialise to a json object"),
            IssueError::Signing => f.write_str("the token could not be signed"),
        }
    }
}

impl std::error::Error for IssueError {}

/// Mints access tokens.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
/// use tower_jwt_guard::Algorithm;
///
/// #[derive(Serialize, Deserialize)]
/// struct Profile { role: String }
///
/// let secret = [42u8; 32];
/// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, secret)?)
///     .issuer("https://auth.example.com")
///     .audience("api")
///     .build();
/// let minted = issuer.mint("alice", &Profile { role: "admin".into() }).unwrap();
/// assert_eq!(minted.token.split('.').count(), 3);
/// assert_eq!(minted.expires_in, 15 * 60);
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct TokenIssuer {
    key: SigningKey,
    header: Header,
    issuer: Option<String>,
    audience: Vec<String>,
    ttl: Duration,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Builds a [`TokenIssuer`].
#[derive(Debug)]
pub struct TokenIssuerBuilder {
    key: SigningKey,
    issuer: Option<String>,
    audience: Vec<String>,
    ttl: Duration,
    token_type: Option<String>,
}

impl TokenIssuerBuilder {
    /// The `iss` of every token.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Adds an audience (`aud`); one audience is written as a string, several as an array.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience.push(audience.into());
        self
    }

    /// The lifetime of minted tokens (default 15 minutes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The header's `typ`, e.g. `at+jwt` (RFC 9068); default `JWT`.
    pub fn token_type(mut self, typ: impl Into<String>) -> Self {
        self.token_type = Some(typ.into());
        self
    }

    /// Freezes the settings.
    pub fn build(self) -> TokenIssuer {
        let mut header = Header::new(self.key.algorithm);
        header.kid = self.key.kid.clone();
        if let Some(typ) = self.token_type {
            header.typ = Some(typ);
        }
        TokenIssuer { key: self.key, header, issuer: self.issuer, audience: self.audience, ttl: self.ttl }
    }
}

impl TokenIssuer {
    /// Starts a builder around the signing key.
    pub fn builder(key: SigningKey) -> TokenIssuerBuilder {
        TokenIssuerBuilder {
            key,
            issuer: None,
            audience: Vec::new(),
            ttl: DEFAULT_TOKEN_TTL,
            token_type: None,
        }
    }

    /// The lifetime of the tokens this issuer mints.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Mints a token for `subject` carrying `claims` plus the registered claims.
    pub fn mint<C: Serialize + ?Sized>(&self, subject: &str, claims: &C) -> Result<MintedToken, IssueError> {
        self.mint_with(subject, claims, |_| {})
    }

    /// Like [`mint`](Self::mint), with a last look at the claim set before it is signed
    /// (to add `amr`, `auth_time`, binding claims, ...).
    pub fn mint_with<C, F>(&self, subject: &str, claims: &C, extra: F) -> Result<MintedToken, IssueError>
    where
        C: Serialize + ?Sized,
        F: FnOnce(&mut Map<String, Value>),
    {
        let Value::Object(mut set) = serde_json::to_value(claims).map_err(|_| IssueError::Signing)? else {
            return Err(IssueError::ClaimsNotAnObject);
        };
        let now = clock::now();
        let expires_at = now.saturating_add(self.ttl.as_secs());
        let jti = random_id();
        if let Some(iss) = &self.issuer {
            set.insert("iss".into(), iss.clone().into());
        }
        set.insert("sub".into(), subject.into());
        match self.audience.as_slice() {
            [] => {}
            [one] => {
                set.insert("aud".into(), one.clone().into());
            }
            many => {
                set.insert("aud".into(), many.to_vec().into());
            }
        }
        set.insert("iat".into(), now.into());
        set.insert("nbf".into(), now.into());
        set.insert("exp".into(), expires_at.into());
        set.insert("jti".into(), jti.clone().into());
        extra(&mut set);
        let token =
            jsonwebtoken::encode(&self.header, &set, &self.key.key).map_err(|_| IssueError::Signing)?;
        Ok(MintedToken { token, jti, expires_in: self.ttl.as_secs(), expires_at })
    }
}

/// 128 random bits, base64url: a `jti` nobody can guess or collide with.
pub(crate) fn random_id() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    // aws-lc's generator fails only when the operating system has no entropy source at all;
    // there is no safe fallback (a predictable jti would be worse than no token).
    aws_lc_rs::rand::fill(&mut bytes).expect("the operating system's random generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_claims_carry_registered_claims_over_user_claims() {
        let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap())
            .issuer("iss")
            .audience("a")
            .audience("b")
            .build();
        let user = serde_json::json!({"sub": "mallory", "role": "x"});
        let minted = issuer.mint("alice", &user).unwrap();
        let payload = minted.token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let json: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
        )
        .unwrap();
        assert_eq!(json["sub"], "alice");
        assert_eq!(json["role"], "x");
        assert_eq!(json["aud"], serde_json::json!(["a", "b"]));
        assert_eq!(json["jti"], minted.jti.as_str());
        assert_eq!(json["exp"].as_u64().unwrap() - json["iat"].as_u64().unwrap(), 900);
    }

    #[test]
    fn ids_are_distinct() {
        assert_ne!(random_id(), random_id());
    }

    #[test]
    fn claims_that_are_not_an_object_are_refused() {
        let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap()).build();
        assert!(matches!(issuer.mint("a", &5), Err(IssueError::ClaimsNotAnObject)));
    }
}
