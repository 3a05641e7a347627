//! [`EncryptionKey`]: the sender's side, for minting encrypted tokens (and for tests): a
//! shared secret, or the recipient's RSA / EC public key, bound to one `alg` / `enc` pair.

use std::fmt;

use aws_lc_rs::agreement::{self, ParsedPublicKey, UnparsedPublicKey};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, PublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::algorithms::{ContentEncryption, KeyManagement};
use super::private_key::{pem_block, Curve};
use crate::primitives::error::ConfigError;

/// A key that encrypts tokens (JWE compact serialization) for one recipient, with exactly one
/// key management algorithm and one content encryption algorithm.
///
/// ```
/// use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, EncryptionKey, KeyManagement};
///
/// let secret = b"fedcba9876543210fedcba9876543210";
/// let key = EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, secret)?;
/// let token = key.encrypt(br#"{"sub":"alice"}"#, false).expect("randomness");
/// assert_eq!(token.split('.').count(), 5);
/// assert!(format!("{key:?}").contains("REDACTED"));
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
pub struct EncryptionKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: KeyManagement,
    pub(crate) enc: ContentEncryption,
    pub(crate) recipient: Recipient,
}

/// The recipient's key.
pub(crate) enum Recipient {
    Secret(Vec<u8>),
    Rsa(OaepPublicEncryptingKey),
    Ec(ParsedPublicKey, Curve),
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .field("key", &"REDACTED")
            .finish()
    }
}

impl EncryptionKey {
    /// A shared secret for `dir`, `A128KW` / `A128GCMKW` (16 bytes) or `A256KW` / `A256GCMKW`
    /// (32 bytes): the same secret as the recipient's [`DecryptionKey::secret`](super::DecryptionKey::secret).
    pub fn secret(
        alg: KeyManagement,
        enc: ContentEncryption,
        secret: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let secret =
            alg.shared_secret(enc, secret.as_ref(), "this JWE algorithm needs a public key, not a secret")?;
        Ok(Self::new(alg, enc, Recipient::Secret(secret)))
    }

    /// The recipient's public key in PEM form (`PUBLIC KEY`, SubjectPublicKeyInfo): RSA (2048
    /// to 8192 bits) for `RSA-OAEP*`, P-256 / P-384 / X25519 for `ECDH-ES*`.
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, EncryptionKey, KeyManagement};
    ///
    /// // RFC 7748 §6.1: Alice's X25519 public key.
    /// let pem = "-----BEGIN PUBLIC KEY-----\n\
    ///     MCowBQYDK2VuAyEAhSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n\
    ///     -----END PUBLIC KEY-----\n";
    /// let key = EncryptionKey::from_pem(KeyManagement::EcdhEs, ContentEncryption::A128Gcm, pem.as_bytes())?;
    /// assert_eq!(key.encrypt(b"a.b.c", true).expect("randomness").split('.').count(), 5);
    /// // A public key cannot serve a shared-secret algorithm.
    /// assert!(EncryptionKey::from_pem(KeyManagement::A256Kw, ContentEncryption::A128Gcm, pem.as_bytes()).is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn from_pem(alg: KeyManagement, enc: ContentEncryption, pem: &[u8]) -> Result<Self, ConfigError> {
        let (label, der) = pem_block(pem).ok_or(ConfigError::InvalidKey("not a PEM public key"))?;
        if label != "PUBLIC KEY" {
            return Err(ConfigError::InvalidKey("not a PEM public key (PUBLIC KEY)"));
        }
        let recipient = match alg {
            KeyManagement::RsaOaep | KeyManagement::RsaOaep256 => {
                let key = PublicEncryptingKey::from_der(&der)
                    .map_err(|_| ConfigError::InvalidKey("not an RSA public key of 2048 to 8192 bits"))?;
                Recipient::Rsa(
                    OaepPublicEncryptingKey::new(key)
                        .map_err(|_| ConfigError::InvalidKey("not an RSA public key"))?,
                )
            }
            KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw => {
                [Curve::P256, Curve::P384, Curve::X25519]
                    .into_iter()
                    .find_map(|curve| {
                        ParsedPublicKey::try_from(UnparsedPublicKey::new(curve.agreement(), &der))
                            .ok()
                            .map(|key| Recipient::Ec(key, curve))
                    })
                    .ok_or(ConfigError::InvalidKey("not a P-256, P-384 or X25519 public key"))?
            }
            _ => return Err(ConfigError::InvalidKey("this JWE algorithm needs a secret, not a public key")),
        };
        Ok(Self::new(alg, enc, recipient))
    }

    /// The recipient's public JWK (RFC 7517) as JSON: `RSA` (`n`, `e`), `EC` (P-256, P-384) or
    /// `OKP` (X25519). The algorithm is the JWK's `alg`, or `alg` when the JWK has none; both
    /// given must agree. The JWK's `kid` is kept and sent in the token's header; a `use` other than
    /// `enc` is refused.
    ///
    /// ```
    /// use tower_jwt_guard::jwe::{ContentEncryption, EncryptionKey, KeyManagement};
    ///
    /// // RFC 7518 Appendix C: Bob's P-256 key.
    /// let jwk = r#"{"kty":"EC","crv":"P-256","kid":"bob",
    ///     "x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
    ///     "y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"}"#;
    /// let key = EncryptionKey::from_jwk(jwk, Some(KeyManagement::EcdhEsA256Kw), ContentEncryption::A256Gcm)?;
    /// let token = key.encrypt(b"header.payload.signature", true).expect("randomness");
    /// assert_eq!(token.split('.').count(), 5);
    /// // A point moved off the curve is refused when the key is read.
    /// let off_curve = jwk.replace("e8ln", "e8lm");
    /// assert!(EncryptionKey::from_jwk(&off_curve, Some(KeyManagement::EcdhEsA256Kw), ContentEncryption::A256Gcm).is_err());
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
        let bytes = |name: &str| {
            text(name)
                .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
                .ok_or(ConfigError::InvalidKey("a JWK member is missing or not base64url"))
        };
        let jwk_alg = text("alg")
            .map(|name| {
                name.parse::<KeyManagement>()
                    .map_err(|_| ConfigError::InvalidKey("the JWK's alg is not a supported JWE algorithm"))
            })
            .transpose()?;
        let alg = match (jwk_alg, alg) {
            (Some(a), Some(b)) if a != b => {
                return Err(ConfigError::InvalidKey("the JWK's alg is not the algorithm asked for"))
            }
            (a, b) => a.or(b).ok_or(ConfigError::InvalidKey("the JWK has no alg and none was given"))?,
        };
        let key = match (text("kty"), alg) {
            (Some("oct"), _) => Self::secret(alg, enc, bytes("k")?)?,
            (Some("RSA"), KeyManagement::RsaOaep | KeyManagement::RsaOaep256) => {
                let components = PublicKeyComponents { n: bytes("n")?, e: bytes("e")? };
                let key: PublicEncryptingKey = components
                    .try_into()
                    .map_err(|_| ConfigError::InvalidKey("not an RSA public key of 2048 to 8192 bits"))?;
                let key = OaepPublicEncryptingKey::new(key)
                    .map_err(|_| ConfigError::InvalidKey("not an RSA public key"))?;
                Self::new(alg, enc, Recipient::Rsa(key))
            }
            (
                Some(kty @ ("EC" | "OKP")),
                KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw,
            ) => {
                let curve = match (kty, text("crv")) {
                    ("EC", Some("P-256")) => Curve::P256,
                    ("EC", Some("P-384")) => Curve::P384,
                    ("OKP", Some("X25519")) => Curve::X25519,
                    _ => {
                        return Err(ConfigError::InvalidKey("the JWK's curve is not P-256, P-384 or X25519"))
                    }
                };
                let point = match curve {
                    Curve::X25519 => bytes("x")?,
                    _ => [&[4u8][..], &bytes("x")?, &bytes("y")?].concat(),
                };
                let key = ParsedPublicKey::try_from(UnparsedPublicKey::new(curve.agreement(), &point))
                    .map_err(|_| ConfigError::InvalidKey("the JWK's point is not on its curve"))?;
                Self::new(alg, enc, Recipient::Ec(key, curve))
            }
            _ => return Err(ConfigError::InvalidKey("the JWK's type does not fit the JWE algorithm")),
        };
        Ok(match text("kid") {
            Some(kid) => key.with_kid(kid),
            None => key,
        })
    }

    fn new(alg: KeyManagement, enc: ContentEncryption, recipient: Recipient) -> Self {
        EncryptionKey { kid: None, alg, enc, recipient }
    }

    /// Names the key: its `kid` goes into each token's header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key management algorithm.
    pub fn algorithm(&self) -> KeyManagement {
        self.alg
    }

    /// The content encryption algorithm.
    pub fn content_encryption(&self) -> ContentEncryption {
        self.enc
    }
}

/// The ephemeral public key as a JWK, for the `epk` header member.
pub(crate) fn ephemeral_jwk(public: &agreement::PublicKey, curve: Curve) -> serde_json::Value {
    let bytes = public.as_ref();
    match curve {
        Curve::X25519 => {
            serde_json::json!({"kty": "OKP", "crv": "X25519", "x": URL_SAFE_NO_PAD.encode(bytes)})
        }
        _ => {
            let len = curve.coordinate_len();
            let (x, y) = bytes.get(1..).unwrap_or_default().split_at(len.min(bytes.len().saturating_sub(1)));
            serde_json::json!({"kty": "EC", "crv": curve.name(), "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
        }
    }
}
