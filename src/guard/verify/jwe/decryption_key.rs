//! [`DecryptionKey`]: the recipient's key for encrypted tokens, bound to exactly one `alg` /
//! `enc` pair, prepared once.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::algorithms::{ContentEncryption, KeyManagement};
use super::private_key::{Curve, PrivateKey};
use crate::primitives::error::ConfigError;

/// A key that decrypts encrypted tokens (JWE, RFC 7516) of exactly one key management
/// algorithm and one content encryption algorithm; a token naming another pair is refused.
///
/// What the content may be follows from the algorithm, fail closed:
/// - a **shared secret** (`dir`, `A128KW`, `A256KW`, `A128GCMKW`, `A256GCMKW`): only its holders
///   can encrypt, so an encrypted claims set is accepted (then checked by the issuer's claim
///   rules like any token's claims), and so is a nested signed token;
/// - a **private key** (`RSA-OAEP`, `RSA-OAEP-256`, `ECDH-ES`, `ECDH-ES+A128KW`,
///   `ECDH-ES+A256KW`): anyone holding the public key can encrypt, so the content must be a
///   nested signed JWT (`cty: "JWT"`), verified with the issuer's keys like any JWS.
///
/// [`require_nested_jws`](Self::require_nested_jws) changes that per key.
///
/// ```
/// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
///
/// // The JWT guide's example: A256KW / A256GCM under a 32-byte shared secret.
/// let key = DecryptionKey::secret(
///     KeyManagement::A256Kw,
///     ContentEncryption::A256Gcm,
///     b"0123456789abcdef0123456789abcdef",
/// )?
/// .with_kid("2026-11");
/// assert_eq!(key.algorithm(), KeyManagement::A256Kw);
/// assert!(!key.requires_nested_jws());
/// assert!(format!("{key:?}").contains("REDACTED"));
///
/// // The secret must have exactly the algorithm's key length.
/// assert!(DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, b"short").is_err());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
pub struct DecryptionKey {
    kid: Option<String>,
    alg: KeyManagement,
    enc: ContentEncryption,
    nested_jws_required: bool,
    issuer: Option<String>,
    pub(crate) material: Material,
}

/// The key itself.
pub(crate) enum Material {
    Secret(Vec<u8>),
    Private(PrivateKey),
}

impl fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .field("nested_jws_required", &self.nested_jws_required)
            .field("issuer", &self.issuer)
            .field("key", &"REDACTED")
            .finish()
    }
}

impl DecryptionKey {
    /// A shared secret for `dir` (the secret is the content key: as long as `enc`'s key),
    /// `A128KW` / `A128GCMKW` (16 bytes) or `A256KW` / `A256GCMKW` (32 bytes).
    pub fn secret(
        alg: KeyManagement,
        enc: ContentEncryption,
        secret: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let secret =
            alg.shared_secret(enc, secret.as_ref(), "this JWE algorithm needs a private key, not a secret")?;
        Ok(Self::new(alg, enc, Material::Secret(secret)))
    }

    /// A private key in PEM form for `RSA-OAEP` / `RSA-OAEP-256` (RSA, 2048 to 8192 bits:
    /// `PRIVATE KEY` or `RSA PRIVATE KEY`) or `ECDH-ES*` (P-256, P-384 or X25519: `PRIVATE KEY`
    /// or `EC PRIVATE KEY`).
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
    ///
    /// let pem = "-----BEGIN PRIVATE KEY-----\n\
    ///     MC4CAQAwBQYDK2VuBCIEIHBgDzpI3rcXy4U27S9LyyNCVoGzRuRldAK3Lsv38Sxb\n\
    ///     -----END PRIVATE KEY-----\n";
    /// let key = DecryptionKey::from_pem(KeyManagement::EcdhEsA256Kw, ContentEncryption::A256Gcm, pem.as_bytes())?;
    /// // A public-key algorithm: anyone can encrypt to it, so only a nested signed JWT passes.
    /// assert!(key.requires_nested_jws());
    /// // An X25519 key is no RSA key.
    /// assert!(DecryptionKey::from_pem(KeyManagement::RsaOaep256, ContentEncryption::A256Gcm, pem.as_bytes()).is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn from_pem(alg: KeyManagement, enc: ContentEncryption, pem: &[u8]) -> Result<Self, ConfigError> {
        Self::private(alg, enc, PrivateKey::from_pem(pem)?)
    }

    /// A key from a private JWK (RFC 7517) as JSON: `oct` (`k`), `RSA`, `EC` (P-256, P-384) or
    /// `OKP` (X25519). The key management algorithm is the JWK's `alg`, or `alg` when the JWK
    /// has none; when both are given they must agree. The JWK's `kid` is kept; a `use` other
    /// than `enc`, or `key_ops` without `decrypt` / `unwrapKey` / `deriveKey` / `deriveBits`, is
    /// refused. A `dir` key's JWK may name its content encryption as its `alg`
    /// (`"alg": "A128GCM"`, as RFC 7520 §5.6 does).
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
    ///
    /// let jwk = r#"{"kty":"oct","alg":"A128KW","kid":"k1","k":"GawgguFyGrWKav7AX4VKUg"}"#;
    /// let key = DecryptionKey::from_jwk(jwk, None, ContentEncryption::A128Gcm)?;
    /// assert_eq!((key.algorithm(), key.kid()), (KeyManagement::A128Kw, Some("k1")));
    /// assert!(DecryptionKey::from_jwk(jwk, Some(KeyManagement::A256Kw), ContentEncryption::A128Gcm).is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn from_jwk(
        jwk: &str,
        alg: Option<KeyManagement>,
        enc: ContentEncryption,
    ) -> Result<Self, ConfigError> {
        let jwk: serde_json::Value =
            serde_json::from_str(jwk).map_err(|_| ConfigError::InvalidKey("malformed JWK"))?;
        let text = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
        if text("use").is_some_and(|usage| usage != "enc") {
            return Err(ConfigError::InvalidKey("the JWK is not meant for encryption (use != enc)"));
        }
        // RFC 7517 §4.3: a JWK whose key_ops are given must allow decryption or unwrapping.
        if let Some(ops) = jwk.get("key_ops").and_then(serde_json::Value::as_array) {
            let allowed = ["decrypt", "unwrapKey", "deriveKey", "deriveBits"];
            if !ops.iter().any(|op| op.as_str().is_some_and(|op| allowed.contains(&op))) {
                return Err(ConfigError::InvalidKey("the JWK's key_ops allow no decryption"));
            }
        }
        let jwk_alg = match text("alg") {
            // A direct key may name its content encryption as its alg (RFC 7520 §5.6).
            Some(name) if name.parse::<ContentEncryption>() == Ok(enc) => Some(KeyManagement::Dir),
            Some(name) => Some(
                name.parse::<KeyManagement>()
                    .map_err(|_| ConfigError::InvalidKey("the JWK's alg is not a supported JWE algorithm"))?,
            ),
            None => None,
        };
        let alg = match (jwk_alg, alg) {
            (Some(a), Some(b)) if a != b => {
                return Err(ConfigError::InvalidKey("the JWK's alg is not the algorithm asked for"))
            }
            (a, b) => a.or(b).ok_or(ConfigError::InvalidKey("the JWK has no alg and none was given"))?,
        };
        let key = if text("kty") == Some("oct") {
            let secret = text("k")
                .and_then(|k| URL_SAFE_NO_PAD.decode(k).ok())
                .ok_or(ConfigError::InvalidKey("the oct JWK has no valid k"))?;
            Self::secret(alg, enc, secret)?
        } else {
            Self::private(alg, enc, PrivateKey::from_jwk(&jwk)?)?
        };
        Ok(match text("kid") {
            Some(kid) => key.with_kid(kid),
            None => key,
        })
    }

    fn private(alg: KeyManagement, enc: ContentEncryption, key: PrivateKey) -> Result<Self, ConfigError> {
        let fits = matches!(
            (&key, alg),
            (PrivateKey::Rsa(_), KeyManagement::RsaOaep | KeyManagement::RsaOaep256)
                | (
                    PrivateKey::Ec(_, Curve::P256 | Curve::P384 | Curve::X25519),
                    KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw,
                )
        );
        if !fits {
            return Err(ConfigError::InvalidKey("the private key does not fit the JWE algorithm"));
        }
        Ok(Self::new(alg, enc, Material::Private(key)))
    }

    fn new(alg: KeyManagement, enc: ContentEncryption, material: Material) -> Self {
        DecryptionKey {
            kid: None,
            alg,
            enc,
            nested_jws_required: !alg.is_shared_secret(),
            issuer: None,
            material,
        }
    }

    /// Names the key: tokens whose header `kid` is this value select it.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Whether the content must be a nested signed JWT (`cty: "JWT"`), verified with the
    /// issuer's keys. The default: `true` for the public-key algorithms (anyone can encrypt to a
    /// public key), `false` for the shared secrets.
    ///
    /// Setting `false` on an RSA-OAEP or ECDH-ES key trusts whoever holds the public key to
    /// state claims: only for a public key that is itself kept secret between two parties.
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
    ///
    /// let key = DecryptionKey::secret(KeyManagement::Dir, ContentEncryption::A128Gcm, [7u8; 16])?
    ///     .require_nested_jws(true);
    /// assert!(key.requires_nested_jws());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn require_nested_jws(mut self, required: bool) -> Self {
        self.nested_jws_required = required;
        self
    }

    /// Binds the claims sets this key decrypts to one issuer: their `iss` must be `issuer`
    /// (nested tokens are bound by their signature already). Required for a key that accepts
    /// claims sets when several issuers are trusted: a shared secret must not speak for all.
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
    /// use tower_jwt_guard::{Issuer, JwtAuth, VerificationKey};
    ///
    /// let issuer = |name: &str, byte: u8| -> Result<Issuer, tower_jwt_guard::ConfigError> {
    ///     Ok(Issuer::new(name).key(VerificationKey::hmac(tower_jwt_guard::Algorithm::HS256, [byte; 32])?))
    /// };
    /// let key = || DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [7u8; 32]);
    /// let two = || Ok::<_, tower_jwt_guard::ConfigError>(
    ///     JwtAuth::builder().trust(issuer("https://a.example", 1)?).trust(issuer("https://b.example", 2)?),
    /// );
    /// // Unbound, with two issuers: refused when the configuration is built.
    /// assert!(two()?.decryption_key(key()?).build().is_err());
    /// assert!(two()?.decryption_key(key()?.for_issuer("https://a.example")).build().is_ok());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn for_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The issuer the claims sets of this key are bound to, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one key management algorithm this key decrypts.
    pub fn algorithm(&self) -> KeyManagement {
        self.alg
    }

    /// The one content encryption algorithm this key decrypts.
    pub fn content_encryption(&self) -> ContentEncryption {
        self.enc
    }

    /// Whether only nested signed JWTs are accepted under this key.
    pub fn requires_nested_jws(&self) -> bool {
        self.nested_jws_required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_must_be_meant_for_decryption() {
        let jwk =
            |extra: &str| format!(r#"{{"kty":"oct","alg":"A128KW","k":"GawgguFyGrWKav7AX4VKUg"{extra}}}"#);
        let enc = ContentEncryption::A128Gcm;
        assert!(DecryptionKey::from_jwk(&jwk(""), None, enc).is_ok());
        assert!(DecryptionKey::from_jwk(&jwk(r#","use":"enc","key_ops":["unwrapKey"]"#), None, enc).is_ok());
        assert!(DecryptionKey::from_jwk(&jwk(r#","use":"sig""#), None, enc).is_err());
        assert!(DecryptionKey::from_jwk(&jwk(r#","key_ops":["wrapKey","encrypt"]"#), None, enc).is_err());
        assert!(
            DecryptionKey::from_jwk(r#"{"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg"}"#, None, enc).is_err(),
            "no alg"
        );
        assert!(
            DecryptionKey::from_jwk(&jwk(""), None, ContentEncryption::A256Gcm).is_ok(),
            "A128KW wraps any enc"
        );
        assert!(DecryptionKey::from_jwk(&jwk(""), Some(KeyManagement::A256Kw), enc).is_err(), "alg mismatch");
    }

    #[test]
    fn secrets_have_the_algorithms_length_and_private_keys_their_algorithm() {
        let gcm = ContentEncryption::A256Gcm;
        assert!(DecryptionKey::secret(KeyManagement::Dir, gcm, [1u8; 32]).is_ok());
        assert!(
            DecryptionKey::secret(KeyManagement::Dir, ContentEncryption::A256CbcHs512, [1u8; 32]).is_err()
        );
        assert!(DecryptionKey::secret(KeyManagement::A128GcmKw, gcm, [1u8; 16]).is_ok());
        assert!(DecryptionKey::secret(KeyManagement::A128GcmKw, gcm, [1u8; 32]).is_err());
        assert!(DecryptionKey::secret(KeyManagement::RsaOaep, gcm, [1u8; 32]).is_err());
        assert!(DecryptionKey::secret(KeyManagement::Dir, gcm, [1u8; 32])
            .unwrap()
            .require_nested_jws(true)
            .requires_nested_jws());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key =
            DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [0xAB; 32]).unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("REDACTED") && printed.contains("A256Kw"), "{printed}");
        assert!(!printed.contains("171") && !printed.to_lowercase().contains("ab, "), "{printed}");
    }
}
