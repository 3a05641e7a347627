//! [`SignatureKey`]: a key that verifies HTTP message signatures, with its algorithm.

use std::fmt;

use std::sync::Arc;

use aws_lc_rs::signature::ParsedPublicKey;
use base64::Engine as _;
use serde::Deserialize;

use super::algorithm::SignatureAlgorithm;
use crate::primitives::error::ConfigError;

/// A verification key and the one algorithm it is used with (RFC 9421 §3.3.7: the algorithm
/// comes from the key, never from the message).
///
/// ```
/// use tower_jwt_guard::binding::{SignatureAlgorithm, SignatureKey};
///
/// // RFC 9421 Appendix B.1.4, test-key-ed25519.
/// let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}"#;
/// let key = SignatureKey::from_jwk(jwk)?;
/// assert_eq!(key.algorithm(), SignatureAlgorithm::Ed25519);
/// assert!(SignatureKey::from_jwk(r#"{"kty":"oct","k":"c2VjcmV0"}"#).is_err());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SignatureKey {
    algorithm: SignatureAlgorithm,
    material: Material,
    thumbprint: Option<String>,
    /// The RFC 7638 members of a key made from a JWK (what the thumbprint hashes).
    members: Option<String>,
}

#[derive(Clone)]
enum Material {
    /// An EC or Ed25519 public key, parsed once (not on every request).
    Parsed(Arc<ParsedPublicKey>),
    /// An RSA DER key, as aws-lc-rs reads it.
    Public(Vec<u8>),
    /// An RSA key from a JWK.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// A shared secret.
    Secret(Box<aws_lc_rs::hmac::Key>),
}

impl fmt::Debug for SignatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureKey")
            .field("algorithm", &self.algorithm)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    d: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    k: Option<serde::de::IgnoredAny>,
}

fn b64url(value: Option<&String>) -> Result<Vec<u8>, ConfigError> {
    let value = value.ok_or(ConfigError::InvalidKey("the JWK lacks a member"))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| ConfigError::InvalidKey("a JWK member is not base64url"))
}

/// An EC or Ed25519 key parsed (and checked) for `algorithm`.
fn parsed(algorithm: SignatureAlgorithm, bytes: &[u8]) -> Result<Material, ConfigError> {
    let verification =
        algorithm.verification().ok_or(ConfigError::InvalidKey("the algorithm takes no public key"))?;
    let key = ParsedPublicKey::new(verification, bytes)
        .map_err(|_| ConfigError::InvalidKey("the public key is not a valid key of its type"))?;
    Ok(Material::Parsed(Arc::new(key)))
}

impl SignatureKey {
    /// A public key from its JWK (RFC 7517): EC P-256 (`ecdsa-p256-sha256`), EC P-384
    /// (`ecdsa-p384-sha384`), OKP Ed25519 (`ed25519`), RSA (`rsa-pss-sha512`, or
    /// `rsa-v1_5-sha256` when the JWK's `alg` is `RS256`). A private or symmetric JWK is refused.
    pub fn from_jwk(jwk: &str) -> Result<Self, ConfigError> {
        let jwk: Jwk =
            serde_json::from_str(jwk).map_err(|_| ConfigError::InvalidKey("the JWK is not valid JSON"))?;
        SignatureKey::from_parsed_jwk(&jwk)
    }

    /// The same, from a JSON value (a member of a JWKS or a token's `cnf.jwk`).
    pub(crate) fn from_jwk_value(jwk: &serde_json::Value) -> Result<Self, ConfigError> {
        let jwk = Jwk::deserialize(jwk).map_err(|_| ConfigError::InvalidKey("the JWK is not valid"))?;
        SignatureKey::from_parsed_jwk(&jwk)
    }

    fn from_parsed_jwk(jwk: &Jwk) -> Result<Self, ConfigError> {
        if jwk.d.is_some() || jwk.k.is_some() {
            return Err(ConfigError::InvalidKey("the JWK holds private or symmetric material"));
        }
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let (algorithm, material, thumbprint) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (x, y) = (b64url(jwk.x.as_ref())?, b64url(jwk.y.as_ref())?);
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let alg = if crv == "P-256" {
                    SignatureAlgorithm::EcdsaP256Sha256
                } else {
                    SignatureAlgorithm::EcdsaP384Sha384
                };
                let members =
                    format!(r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#, text(&jwk.x), text(&jwk.y));
                (alg, parsed(alg, &point)?, members)
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64url(jwk.x.as_ref())?;
                let members = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, text(&jwk.x));
                (SignatureAlgorithm::Ed25519, parsed(SignatureAlgorithm::Ed25519, &x)?, members)
            }
            ("RSA", _) => {
                let (n, e) = (b64url(jwk.n.as_ref())?, b64url(jwk.e.as_ref())?);
                let alg = match jwk.alg.as_deref() {
                    Some("RS256") => SignatureAlgorithm::RsaV15Sha256,
                    _ => SignatureAlgorithm::RsaPssSha512,
                };
                let members = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, text(&jwk.e), text(&jwk.n));
                (alg, Material::Rsa { n, e }, members)
            }
            _ => {
                return Err(ConfigError::InvalidKey(
                    "the JWK's key type is not supported for message signatures",
                ))
            }
        };
        let members = thumbprint;
        let thumbprint = crate::guard::binding::sha256_b64(members.as_bytes());
        Ok(SignatureKey { algorithm, material, thumbprint: Some(thumbprint), members: Some(members) })
    }

    /// A public key in PEM (`-----BEGIN PUBLIC KEY-----`, X.509 SubjectPublicKeyInfo) for
    /// `algorithm` (not `hmac-sha256`).
    ///
    /// ```
    /// use tower_jwt_guard::binding::{SignatureAlgorithm, SignatureKey};
    /// let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n";
    /// assert!(SignatureKey::public_key_pem(SignatureAlgorithm::Ed25519, pem).is_ok());
    /// assert!(SignatureKey::public_key_pem(SignatureAlgorithm::HmacSha256, pem).is_err());
    /// ```
    pub fn public_key_pem(algorithm: SignatureAlgorithm, pem: &str) -> Result<Self, ConfigError> {
        let body: String = pem.lines().filter(|line| !line.starts_with("-----")).map(str::trim).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| ConfigError::InvalidKey("the PEM key is not base64"))?;
        SignatureKey::public_key_der(algorithm, &der)
    }

    /// A public key in DER (X.509 SubjectPublicKeyInfo; for RSA also PKCS#1) for `algorithm`.
    pub fn public_key_der(algorithm: SignatureAlgorithm, der: &[u8]) -> Result<Self, ConfigError> {
        // The fixed-size SPKI prefixes: the key is what follows.
        let raw = match algorithm {
            SignatureAlgorithm::HmacSha256 => {
                return Err(ConfigError::InvalidKey("hmac-sha256 needs a shared key, not a public key"))
            }
            SignatureAlgorithm::Ed25519 if der.len() == 44 => der[12..].to_vec(),
            SignatureAlgorithm::EcdsaP256Sha256 if der.len() == 91 => der[26..].to_vec(),
            SignatureAlgorithm::EcdsaP384Sha384 if der.len() == 120 => der[23..].to_vec(),
            SignatureAlgorithm::Ed25519
            | SignatureAlgorithm::EcdsaP256Sha256
            | SignatureAlgorithm::EcdsaP384Sha384 => {
                return Err(ConfigError::InvalidKey("the public key does not fit the algorithm"))
            }
            _ => {
                return Ok(SignatureKey {
                    algorithm,
                    material: Material::Public(der.to_vec()),
                    thumbprint: None,
                    members: None,
                })
            }
        };
        Ok(SignatureKey { algorithm, material: parsed(algorithm, &raw)?, thumbprint: None, members: None })
    }

    /// A shared secret for `hmac-sha256` (at least 32 bytes).
    ///
    /// ```
    /// use tower_jwt_guard::binding::SignatureKey;
    /// assert!(SignatureKey::hmac_sha256([7u8; 32]).is_ok());
    /// assert!(SignatureKey::hmac_sha256([7u8; 16]).is_err());
    /// ```
    pub fn hmac_sha256(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        if secret.len() < 32 {
            return Err(ConfigError::Invalid("an hmac-sha256 key needs at least 32 bytes"));
        }
        Ok(SignatureKey {
            algorithm: SignatureAlgorithm::HmacSha256,
            material: Material::Secret(Box::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                secret,
            ))),
            thumbprint: None,
            members: None,
        })
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The RFC 7638 thumbprint of a key made from a JWK.
    pub fn thumbprint(&self) -> Option<&str> {
        self.thumbprint.as_deref()
    }

    /// The public JWK (its RFC 7638 members) of a key made from a JWK.
    pub(crate) fn public_jwk(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.members.as_deref()?).ok()
    }

    /// Whether `signature` is this key's signature of `base`.
    pub(crate) fn verify(&self, base: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Parsed(key) => key.verify_sig(base, signature).is_ok(),
            Material::Secret(key) => aws_lc_rs::hmac::verify(key, base, signature).is_ok(),
            Material::Public(bytes) => match self.algorithm.verification() {
                Some(alg) => {
                    aws_lc_rs::signature::UnparsedPublicKey::new(alg, bytes).verify(base, signature).is_ok()
                }
                None => false,
            },
            Material::Rsa { n, e } => {
                let params = match self.algorithm {
                    SignatureAlgorithm::RsaPssSha512 => &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA512,
                    SignatureAlgorithm::RsaV15Sha256 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                    _ => return false,
                };
                aws_lc_rs::signature::RsaPublicKeyComponents { n, e }.verify(params, base, signature).is_ok()
            }
        }
    }
}
